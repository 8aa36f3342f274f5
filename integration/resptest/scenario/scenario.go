// Package scenario drives plugins/resp through the cases a plugin meets, and writes down what
// happened. resptest runs it compiled and under Yaegi v0.16.1 (as Traefik would run a
// plugin using resp) and requires both transcripts to be equal.
//
// This code is interpreted: it follows the plugin rules (one assignment per line, one
// condition per case, no range over int, no min/max, no errors.As to resp's types).
package scenario

import (
	"context"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pavilion-trust/gateway/plugins/resp"
)

// Run plays the scenario against the Redis at addr (whose data it may destroy) and returns
// the transcript, one line per step. A line starting with "FAIL" is an unexpected result.
func Run(addr string) []string {
	r := &recorder{}
	ctx := context.Background()

	_, err := resp.New(resp.Options{Address: "nohost", PoolSize: -1})
	r.add("New invalid", "", err)

	c, err := resp.New(resp.Options{Address: addr, PoolSize: 4, Timeout: 500 * time.Millisecond})
	if err != nil {
		r.add("New", "", err)
		return r.lines
	}
	defer c.Close()

	r.do(ctx, c, "FLUSHDB")
	r.do(ctx, c, "SET", "k", "v")
	r.do(ctx, c, "GET", "k")
	r.do(ctx, c, "GET", "missing")
	r.do(ctx, c, "SET", "bin", "a\r\nb")
	r.do(ctx, c, "GET", "bin")
	r.do(ctx, c, "INCR", "ctr")
	r.do(ctx, c, "INCR", "ctr")
	r.do(ctx, c, "INCRBY", "ctr", "-10")
	r.do(ctx, c, "RPUSH", "list", "a", "b", "c")
	r.do(ctx, c, "LRANGE", "list", "0", "-1")
	r.do(ctx, c, "LRANGE", "nolist", "0", "-1")
	r.do(ctx, c, "EVAL", `return {1, "two", {3, {false}}, redis.status_reply("FINE"), redis.error_reply("MYERR inner")}`, "0")

	// Error replies: a RedisError, found with a type assertion; the connection stays.
	_, err = c.Do(ctx, "INCR", "list")
	re, ok := err.(resp.RedisError)
	r.line("INCR list: RedisError=" + strconv.FormatBool(ok) + " prefix=" + re.Prefix())
	r.do(ctx, c, "NOSUCHCOMMAND", "x")

	// EVALSHA, NOSCRIPT and the fallback.
	script := resp.NewScript(`return {redis.call("INCRBY", KEYS[1], ARGV[1]), ARGV[2]}`)
	r.line("sha1 " + script.SHA1())
	r.do(ctx, c, "SCRIPT", "FLUSH")
	r.do(ctx, c, "SCRIPT", "EXISTS", script.SHA1())
	v, err := c.EvalSHA(ctx, script, []string{"evalsha"}, []string{"5", "tag"})
	r.add("EvalSHA after flush", format(v), err)
	r.do(ctx, c, "SCRIPT", "EXISTS", script.SHA1())
	v, err = c.EvalSHA(ctx, script, []string{"evalsha"}, []string{"7", "again"})
	r.add("EvalSHA cached", format(v), err)
	bad := resp.NewScript(`return redis.error_reply("LIMIT " .. ARGV[1])`)
	v, err = c.EvalSHA(ctx, bad, nil, []string{"over"})
	r.add("EvalSHA error reply", format(v), err)
	stats := c.Stats()
	r.line("stats after replies: dials=" + itoa(stats.Dials) + " discarded=" + itoa(stats.Discarded))

	// A timeout: the error says so, the connection is dropped, the next command works.
	fast, err := resp.New(resp.Options{Address: addr, Timeout: 100 * time.Millisecond})
	if err != nil {
		r.add("New fast", "", err)
		return r.lines
	}
	defer fast.Close()
	start := time.Now()
	_, err = fast.Do(ctx, "BLPOP", "nolist", "1")
	took := time.Since(start)
	r.line("timeout: deadline=" + strconv.FormatBool(errors.Is(err, os.ErrDeadlineExceeded)) +
		" prefix=" + strconv.FormatBool(err != nil && strings.HasPrefix(err.Error(), "resp: BLPOP: ")) +
		" ~100ms=" + strconv.FormatBool(took >= 90*time.Millisecond && took < 900*time.Millisecond))
	r.do(ctx, fast, "GET", "k")
	stats = fast.Stats()
	r.line("stats after timeout: open=" + strconv.Itoa(stats.Open) + " discarded=" + itoa(stats.Discarded) +
		" timeouts=" + itoa(stats.Timeouts))

	// 20 goroutines share a pool of 4: every INCR counted once, at most 4 connections.
	r.do(ctx, c, "DEL", "conc")
	var mu sync.Mutex
	var got []int
	var failures []string
	var wg sync.WaitGroup
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				v, err := c.Do(ctx, "INCR", "conc")
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					got = append(got, int(v.Int))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Ints(got)
	distinct := len(got) == 200
	for i := 0; i < len(got) && distinct; i++ {
		distinct = got[i] == i+1
	}
	r.line("concurrent: results=" + strconv.Itoa(len(got)) + " errors=" + strconv.Itoa(len(failures)) +
		" each 1..200 once=" + strconv.FormatBool(distinct))
	r.do(ctx, c, "GET", "conc")
	stats = c.Stats()
	if stats.Open > 4 || stats.Dials > 4 {
		r.line("FAIL pool bound: " + strconv.Itoa(stats.Open) + " open, " + itoa(stats.Dials) + " dials")
	} else {
		r.line("pool bound kept, waited for a connection: " + strconv.FormatBool(stats.Waits > 0))
	}

	// Close: later commands fail at once.
	r.add("Close", "", c.Close())
	_, err = c.Do(ctx, "PING")
	r.line("after Close: ErrClosed=" + strconv.FormatBool(errors.Is(err, resp.ErrClosed)))
	return r.lines
}

type recorder struct {
	lines []string
}

func (r *recorder) line(s string) {
	r.lines = append(r.lines, s)
}

// do runs one command and records its reply or error.
func (r *recorder) do(ctx context.Context, c *resp.Client, args ...string) {
	v, err := c.Do(ctx, args...)
	r.add(strings.Join(args, " "), format(v), err)
}

func (r *recorder) add(step, value string, err error) {
	if err == nil {
		r.line(step + " -> " + value)
		return
	}
	if _, ok := err.(resp.RedisError); ok {
		r.line(step + " -> " + value + " (RedisError)")
		return
	}
	r.line(step + " -> error: " + err.Error())
}

// format writes a Value on one line, e.g. *[:1 $"two" $nil].
func format(v resp.Value) string {
	switch v.Type {
	case resp.TypeSimple:
		return "+" + v.Str
	case resp.TypeError:
		return "-" + v.Str
	case resp.TypeInt:
		return ":" + strconv.FormatInt(v.Int, 10)
	case resp.TypeBulk:
		if v.Null {
			return "$nil"
		}
		return "$" + strconv.Quote(v.Str)
	case resp.TypeArray:
		if v.Null {
			return "*nil"
		}
		parts := make([]string, 0, len(v.Array))
		for _, e := range v.Array {
			parts = append(parts, format(e))
		}
		return "*[" + strings.Join(parts, " ") + "]"
	}
	return "?" + strconv.Itoa(int(v.Type))
}

func itoa(n int64) string {
	return strconv.FormatInt(n, 10)
}
