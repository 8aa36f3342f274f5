package ratelimit

import (
	"errors"
	"strconv"
)

// The scripts check and count every limit of a request in one call: KEYS holds one key per
// limit (all with the same {client} hash tag, so one slot), ARGV two values per limit. A
// request refused by any limit is counted by none. Time is Redis' own (TIME), never the
// gateway's. Each answers a status reply "allowed index remaining reset retry item retryms" (read with
// one line read, cheap under Yaegi): allowed (0|1), index of the most restrictive limit
// (1-based: lowest remaining, then longest reset), its remaining, its seconds until fully reset
// (ceil), seconds until a retry can pass (ceil, >= 1, 0 when allowed), the RateLimit header
// item of that limit (`"1s";r=<remaining>;t=<reset>`, so the hot path writes it without
// building it), and milliseconds until a retry can pass (ceil, >= 1, 0 when allowed; the
// gateway refuses the client in memory until then), whatever the number of limits:
// replyFields fields. After the two values per limit, ARGV holds the
// limits' window names (ARGV[2n+i]).
//
// redis.replicate_commands() lets Redis < 5 replicate writes made after TIME (a no-op since).

// Positions of the space-separated fields of a script's reply.
const (
	fieldAllowed   = iota // "1" allowed, "0" refused
	fieldIndex            // the most restrictive limit, 1-based: one digit
	fieldRemaining        // its remaining
	fieldReset            // its seconds until fully reset
	fieldRetry            // seconds until a retry can pass, 0 when allowed
	fieldItem             // its RateLimit header item
	fieldRetryMS          // milliseconds until a retry can pass, 0 when allowed
	replyFields           // the number of fields
)

// reply is a script's reply, parsed once (parseReply). ServeHTTP reads the fields of an
// allowed reply itself, without this.
type reply struct {
	allowed   bool
	index     int    // the most restrictive limit, 0-based
	remaining string // its remaining, decimal as in the reply (a header value)
	reset     string // its seconds until fully reset, likewise
	retry     int64  // seconds until a retry can pass, 0 when allowed
	retryMS   int64  // milliseconds until a retry can pass, 0 when allowed
}

// errUnexpectedReply is the failure of a script reply that cannot be read.
var errUnexpectedReply = errors.New("unexpected script reply")

// parseReply reads the status reply of a script, split at its spaces (f: ServeHTTP has split
// it already), or passes on the error of its command: the error is err, errUnexpectedReply
// when f is not a reply of these scripts, else nil.
func parseReply(f []string, err error) (reply, error) {
	if err != nil {
		return reply{}, err
	}
	if len(f) != replyFields || len(f[fieldIndex]) != 1 {
		return reply{}, errUnexpectedReply
	}
	retry, _ := strconv.ParseInt(f[fieldRetry], 10, 64)
	retryMS, _ := strconv.ParseInt(f[fieldRetryMS], 10, 64)
	return reply{
		allowed:   f[fieldAllowed] == "1",
		index:     int(f[fieldIndex][0]) - '1',
		remaining: f[fieldRemaining],
		reset:     f[fieldReset],
		retry:     retry,
		retryMS:   retryMS,
	}, nil
}

// refusal is the decision of a refusing reply.
func (r reply) refusal() decision {
	remaining, _ := strconv.ParseInt(r.remaining, 10, 64)
	reset, _ := strconv.ParseInt(r.reset, 10, 64)
	return decision{index: r.index, remaining: remaining, reset: reset, retry: r.retry}
}

// scriptTail picks the most restrictive limit (among the refusing ones when refused) and
// builds the reply. unit converts the script's time unit to seconds.
const scriptTail = `
local best = 0
for i = 1, n do
  if allowed == 1 or refused[i] then
    if best == 0 or rem[i] < rem[best] or (rem[i] == rem[best] and reset[i] > reset[best]) then
      best = i
    end
  end
end
local reset_s = math.ceil(reset[best] / unit)
if reset_s < 0 then reset_s = 0 end
local retry_s = 0
local retry_ms = 0
if allowed == 0 then
  retry_s = math.ceil(retry / unit)
  if retry_s < 1 then retry_s = 1 end
  retry_ms = math.ceil(retry * 1000 / unit)
  if retry_ms < 1 then retry_ms = 1 end
end
return redis.status_reply(string.format('%d %d %d %d %d "%s";r=%d;t=%d %d', allowed, best, rem[best], reset_s, retry_s,
  ARGV[2 * n + best], rem[best], reset_s, retry_ms))
`

// slidingWindowScript: ARGV = requests, window (ms) per limit. Each key is a hash {w: index
// of the current window, c: its count, p: the previous window's count}; the estimate is
// p * (share of the previous window still inside the sliding window) + c.
const slidingWindowScript = `
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unit = 1000
local n = #KEYS
local allowed = 1
local retry = 0
local refused = {}
local idxs, curs, prevs, rem, reset = {}, {}, {}, {}, {}
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local win = tonumber(ARGV[2 * i])
  local idx = math.floor(now / win)
  local h = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local w = tonumber(h[1])
  local cur = 0
  local prev = 0
  if w == idx then
    cur = tonumber(h[2]) or 0
    prev = tonumber(h[3]) or 0
  elseif w == idx - 1 then
    prev = tonumber(h[2]) or 0
  end
  local elapsed = now - idx * win
  local est = prev * (win - elapsed) / win + cur
  idxs[i] = idx
  curs[i] = cur
  prevs[i] = prev
  if est + 1 <= limit then
    rem[i] = math.floor(limit - est - 1)
    reset[i] = (idx + 2) * win - now
  else
    allowed = 0
    refused[i] = true
    rem[i] = 0
    local wait
    if cur + 1 <= limit then
      wait = win - (limit - 1 - cur) * win / prev - elapsed
    else
      wait = (idx + 1) * win - now + win - (limit - 1) * win / cur
    end
    if wait > retry then retry = wait end
    if cur > 0 then
      reset[i] = (idx + 2) * win - now
    elseif prev > 0 then
      reset[i] = (idx + 1) * win - now
    else
      reset[i] = 0
    end
  end
end
if allowed == 1 then
  for i = 1, n do
    local win = tonumber(ARGV[2 * i])
    redis.call('HSET', KEYS[i], 'w', idxs[i], 'c', curs[i] + 1, 'p', prevs[i])
    redis.call('PEXPIRE', KEYS[i], 2 * win + 1000)
  end
end
` + scriptTail

// slidingLogScript: ARGV = requests, window (ms) per limit. Each key is a sorted set of the
// counted arrivals (score: Redis time in µs); the window is (now - window, now].
const slidingLogScript = `
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local member = t[1] .. '.' .. t[2] .. '.'
local unit = 1000000
local n = #KEYS
local allowed = 1
local retry = 0
local refused = {}
local counts, rem, reset = {}, {}, {}
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local wu = tonumber(ARGV[2 * i]) * 1000
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - wu)
  local count = redis.call('ZCARD', KEYS[i])
  counts[i] = count
  if count + 1 <= limit then
    rem[i] = limit - count - 1
    reset[i] = wu
  else
    allowed = 0
    refused[i] = true
    rem[i] = 0
    local r = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local wait = tonumber(r[2]) + wu - now
    if wait > retry then retry = wait end
    local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    reset[i] = tonumber(last[2]) + wu - now
  end
end
if allowed == 1 then
  for i = 1, n do
    redis.call('ZADD', KEYS[i], now, member .. counts[i])
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i]))
  end
end
` + scriptTail

// gcraScript: ARGV = requests (rate and burst), period (seconds) per limit. The arithmetic is
// github.com/go-redis/redis_rate/v10's allowN script, line for line, with cost 1 (derived
// from github.com/rwz/redis-gcra, MIT, Copyright (c) 2017 Pavel Pravosud), so that a single
// limit decides exactly as redis_rate.Limiter.Allow with Limit{Rate: requests, Burst:
// requests, Period: window}; several limits are only stored when all allow.
const gcraScript = `
redis.replicate_commands()
local jan_1_2017 = 1483228800
local t = redis.call('TIME')
local now = (t[1] - jan_1_2017) + (t[2] / 1000000)
local unit = 1
local n = #KEYS
local allowed = 1
local retry = 0
local refused = {}
local tats, rem, reset = {}, {}, {}
for i = 1, n do
  local burst = ARGV[2 * i - 1]
  local rate = ARGV[2 * i - 1]
  local period = ARGV[2 * i]
  local emission_interval = period / rate
  local increment = emission_interval * 1
  local burst_offset = emission_interval * burst
  local tat = redis.call('GET', KEYS[i])
  if not tat then
    tat = now
  else
    tat = tonumber(tat)
  end
  tat = math.max(tat, now)
  local new_tat = tat + increment
  local allow_at = new_tat - burst_offset
  local diff = now - allow_at
  local remaining = diff / emission_interval
  if remaining < 0 then
    allowed = 0
    refused[i] = true
    rem[i] = 0
    reset[i] = tat - now
    if -diff > retry then retry = -diff end
  else
    rem[i] = math.floor(remaining)
    reset[i] = new_tat - now
    tats[i] = new_tat
  end
end
if allowed == 1 then
  for i = 1, n do
    if reset[i] > 0 then
      redis.call('SET', KEYS[i], tats[i], 'EX', math.ceil(reset[i]))
    end
  end
end
` + scriptTail
