package scenario

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pavilion-trust/gateway/plugins/resp"
)

// RunAuth checks AUTH and SELECT against a server with ACLs: user and password are valid,
// and user's rights allow CLIENT INFO.
func RunAuth(addr, user, password string) []string {
	r := &recorder{}
	ctx := context.Background()

	c, err := resp.New(resp.Options{Address: addr, Username: user, Password: password, DB: 3})
	if err != nil {
		r.add("New", "", err)
		return r.lines
	}
	defer c.Close()
	r.do(ctx, c, "SET", "authkey", "ok")
	v, err := c.Do(ctx, "CLIENT", "INFO")
	r.line("AUTH ok, CLIENT INFO db=3: " + strconv.FormatBool(err == nil && strings.Contains(v.Str, " db=3 ")) +
		" user=" + strconv.FormatBool(strings.Contains(v.Str, " user="+user+" ")))

	bad, err := resp.New(resp.Options{Address: addr, Username: user, Password: password + "-wrong"})
	if err != nil {
		r.add("New bad", "", err)
		return r.lines
	}
	defer bad.Close()
	_, err = bad.Do(ctx, "PING")
	r.line("bad password: " + errorStart(err, "resp: AUTH: WRONGPASS") +
		" shows password=" + strconv.FormatBool(err != nil && strings.Contains(err.Error(), password)))
	stats := bad.Stats()
	r.line("bad password: open=" + strconv.Itoa(stats.Open) + " dialErrors=" + itoa(stats.DialErrors))

	none, err := resp.New(resp.Options{Address: addr})
	if err != nil {
		r.add("New none", "", err)
		return r.lines
	}
	defer none.Close()
	_, err = none.Do(ctx, "GET", "authkey")
	re, ok := err.(resp.RedisError)
	r.line("no password: RedisError=" + strconv.FormatBool(ok) + " prefix=" + re.Prefix())
	return r.lines
}

// RunTLS checks TLS to a server whose certificate (for 127.0.0.1 and redis.test) is issued by
// the CA in caPEM.
func RunTLS(addr string, caPEM []byte) []string {
	r := &recorder{}
	ctx := context.Background()
	pool := x509.NewCertPool()
	r.line("CA parsed: " + strconv.FormatBool(pool.AppendCertsFromPEM(caPEM)))

	c, err := resp.New(resp.Options{Address: addr, TLS: true, TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		r.add("New", "", err)
		return r.lines
	}
	defer c.Close()
	r.do(ctx, c, "SET", "tlskey", "over tls")
	r.do(ctx, c, "GET", "tlskey")

	named, err := resp.New(resp.Options{Address: addr, TLS: true, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "redis.test"}})
	if err != nil {
		r.add("New named", "", err)
		return r.lines
	}
	defer named.Close()
	r.do(ctx, named, "PING")

	untrusted, err := resp.New(resp.Options{Address: addr, TLS: true})
	if err != nil {
		r.add("New untrusted", "", err)
		return r.lines
	}
	defer untrusted.Close()
	_, err = untrusted.Do(ctx, "PING")
	r.line("system roots: unknown authority=" + strconv.FormatBool(err != nil && strings.Contains(err.Error(), "unknown authority")))
	return r.lines
}

// RunRestart checks that a Client survives its server going away and coming back on the
// same address: stop and start do that.
func RunRestart(addr string, stop func(), start func() error) []string {
	r := &recorder{}
	ctx := context.Background()
	c, err := resp.New(resp.Options{Address: addr, PoolSize: 3, Timeout: time.Second})
	if err != nil {
		r.add("New", "", err)
		return r.lines
	}
	defer c.Close()

	// Three connections at once leave three idle connections.
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Do(ctx, "BLPOP", "nolist", "0.5") // long enough for the three to overlap, even interpreted
		}()
	}
	wg.Wait()
	stats := c.Stats()
	r.line("idle before restart: " + strconv.Itoa(stats.Idle))

	stop()
	if err := start(); err != nil {
		r.line("FAIL restart: " + err.Error())
		return r.lines
	}
	r.do(ctx, c, "PING")
	stats = c.Stats()
	r.line("after restart: retries=" + itoa(stats.Retries) + " open=" + strconv.Itoa(stats.Open) +
		" idle=" + strconv.Itoa(stats.Idle))

	stop()
	for i := 0; i < 2; i++ {
		begin := time.Now()
		_, err = c.Do(ctx, "PING")
		r.line("server down: refused=" + strconv.FormatBool(err != nil && strings.Contains(err.Error(), "connection refused")) +
			" fast=" + strconv.FormatBool(time.Since(begin) < 250*time.Millisecond))
	}
	if err := start(); err != nil {
		r.line("FAIL start: " + err.Error())
		return r.lines
	}
	r.do(ctx, c, "PING")
	return r.lines
}

// Loop sends n EVALSHA of a small counting script, as a rate limiter would, on one Client of
// PoolSize pool shared by workers goroutines. It returns the first error.
func Loop(addr string, n, workers int) error {
	c, err := resp.New(resp.Options{Address: addr, PoolSize: workers, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	script := resp.NewScript(`local n = redis.call("INCR", KEYS[1]) redis.call("PEXPIRE", KEYS[1], ARGV[1]) return {n, tonumber(ARGV[2]) - n}`)
	ctx := context.Background()
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	per := n / workers
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) { // w as a parameter: Yaegi may not give each iteration its own w
			defer wg.Done()
			keys := []string{"bench:" + strconv.Itoa(w)}
			args := []string{"1000", "1000000000"}
			for i := 0; i < per; i++ {
				_, err := c.EvalSHA(ctx, script, keys, args)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return first
}

// errorStart tells whether err's text starts with prefix, for transcripts that must not
// depend on the rest of a server's message.
func errorStart(err error, prefix string) string {
	if err == nil {
		return "no error"
	}
	if strings.HasPrefix(err.Error(), prefix) {
		return prefix
	}
	return "unexpected: " + err.Error()
}
