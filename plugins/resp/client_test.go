package resp

import (
	"context"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewValidation(t *testing.T) {
	tests := []struct {
		desc string
		opts Options
		want []string // substrings of the error; none: valid
	}{
		{desc: "minimal", opts: Options{Address: "127.0.0.1:6379"}},
		{desc: "everything", opts: Options{Address: "redis.internal:6380", Username: "u", Password: "p", DB: 3, TLS: true,
			DialTimeout: time.Second, Timeout: time.Second, PoolSize: 4, MaxReplyBytes: 4096}},
		{desc: "no address", opts: Options{}, want: []string{"address: required"}},
		{desc: "address without port", opts: Options{Address: "localhost"}, want: []string{`address: "localhost" is not host:port`}},
		{desc: "address without host", opts: Options{Address: ":6379"}, want: []string{`address: ":6379"`}},
		{desc: "username without password", opts: Options{Address: "h:1", Username: "u"}, want: []string{"username: set without password"}},
		{desc: "negative db", opts: Options{Address: "h:1", DB: -1}, want: []string{"db: must be 0 or more, got -1"}},
		{desc: "tlsConfig without tls", opts: Options{Address: "h:1", TLSConfig: testTLSConfig()}, want: []string{"tlsConfig: set while tls is false"}},
		{desc: "negative timeouts", opts: Options{Address: "h:1", DialTimeout: -1, Timeout: -time.Second},
			want: []string{"dialTimeout: must be positive, got -1ns", "timeout: must be positive, got -1s"}},
		{desc: "pool too large", opts: Options{Address: "h:1", PoolSize: 5000}, want: []string{"poolSize: must be between 1 and 1024, got 5000"}},
		{desc: "negative pool", opts: Options{Address: "h:1", PoolSize: -1}, want: []string{"poolSize"}},
		{desc: "tiny reply limit", opts: Options{Address: "h:1", MaxReplyBytes: 10}, want: []string{"maxReplyBytes: must be at least 64, got 10"}},
		{desc: "all problems at once", opts: Options{DB: -2, PoolSize: -3},
			want: []string{"address: required", "db:", "poolSize:"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := New(tt.opts)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if st := c.Stats(); st.Dials != 0 || st.Open != 0 {
					t.Fatalf("New dialed: %+v", st)
				}
				c.Close()
				return
			}
			if err == nil {
				t.Fatal("New accepted invalid options")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.opts.Password != "" && strings.Contains(err.Error(), tt.opts.Password) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := New(Options{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.opts
	if o.DialTimeout != 250*time.Millisecond || o.Timeout != 100*time.Millisecond || o.PoolSize != 16 || o.MaxReplyBytes != 1<<20 {
		t.Fatalf("defaults = %+v", o)
	}
	if c.opts.PoolSize != 16 {
		t.Fatalf("pool bound = %d, want 16", c.opts.PoolSize)
	}
}

func TestReplies(t *testing.T) {
	s := sharedRedis(t, "plain")
	c := newClient(t, Options{Address: s.addr()})
	mustDo(t, c, "FLUSHDB")
	mustDo(t, c, "SET", "str", "hello")
	mustDo(t, c, "SET", "bin", "a\r\nb\x00c$-1\r\n")
	mustDo(t, c, "SET", "empty", "")
	big := strings.Repeat("x", 100_000) // longer than the read buffer
	mustDo(t, c, "SET", "big", big)
	mustDo(t, c, "RPUSH", "list", "a", "b")

	tests := []struct {
		desc    string
		args    []string
		want    Value
		wantErr string // RedisError prefix
	}{
		{desc: "simple string", args: []string{"SET", "k", "v"}, want: Value{Type: TypeSimple, Str: "OK"}},
		{desc: "bulk", args: []string{"GET", "str"}, want: Value{Type: TypeBulk, Str: "hello"}},
		{desc: "binary bulk with CRLF inside", args: []string{"GET", "bin"}, want: Value{Type: TypeBulk, Str: "a\r\nb\x00c$-1\r\n"}},
		{desc: "empty bulk", args: []string{"GET", "empty"}, want: Value{Type: TypeBulk, Str: ""}},
		{desc: "large bulk", args: []string{"GET", "big"}, want: Value{Type: TypeBulk, Str: big}},
		{desc: "nil bulk", args: []string{"GET", "missing"}, want: Value{Type: TypeBulk, Null: true}},
		{desc: "integer", args: []string{"INCR", "counter"}, want: Value{Type: TypeInt, Int: 1}},
		{desc: "negative integer", args: []string{"DECRBY", "neg", "9223372036854775807"}, want: Value{Type: TypeInt, Int: -9223372036854775807}},
		{desc: "array", args: []string{"LRANGE", "list", "0", "-1"},
			want: Value{Type: TypeArray, Array: []Value{{Type: TypeBulk, Str: "a"}, {Type: TypeBulk, Str: "b"}}}},
		{desc: "empty array", args: []string{"LRANGE", "nolist", "0", "-1"}, want: Value{Type: TypeArray, Array: []Value{}}},
		{desc: "nil array", args: []string{"BLPOP", "nolist", "0.01"}, want: Value{Type: TypeArray, Null: true}},
		{desc: "EVAL nested table with every type",
			args: []string{"EVAL", `return {1, "two", {3, {false}}, redis.status_reply("FINE"), redis.error_reply("MYERR inner")}`, "0"},
			want: Value{Type: TypeArray, Array: []Value{
				{Type: TypeInt, Int: 1},
				{Type: TypeBulk, Str: "two"},
				{Type: TypeArray, Array: []Value{{Type: TypeInt, Int: 3}, {Type: TypeArray, Array: []Value{{Type: TypeBulk, Null: true}}}}},
				{Type: TypeSimple, Str: "FINE"},
				{Type: TypeError, Str: "MYERR inner"},
			}}},
		{desc: "EVAL with keys and args", args: []string{"EVAL", "return {KEYS[1], ARGV[1], ARGV[2]}", "1", "k1", "a1", ""},
			want: Value{Type: TypeArray, Array: []Value{{Type: TypeBulk, Str: "k1"}, {Type: TypeBulk, Str: "a1"}, {Type: TypeBulk, Str: ""}}}},
		{desc: "error reply: wrong type", args: []string{"INCR", "list"}, wantErr: "WRONGTYPE"},
		{desc: "error reply: unknown command", args: []string{"NOSUCHCOMMAND"}, wantErr: "ERR"},
		{desc: "error reply from a script", args: []string{"EVAL", `return redis.error_reply("LIMIT over")`, "0"}, wantErr: "LIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			v, err := c.Do(context.Background(), tt.args...)
			if tt.wantErr != "" {
				re, ok := err.(RedisError)
				if !ok || re.Prefix() != tt.wantErr {
					t.Fatalf("error = %#v; want a RedisError %s", err, tt.wantErr)
				}
				if v.Type != TypeError || v.Str != string(re) {
					t.Fatalf("value = %+v; want the error reply", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("reply = %+v\nwant    %+v", v, tt.want)
			}
		})
	}
	// Error replies leave the connection in the pool: one connection did all of this.
	if st := c.Stats(); st.Dials != 1 || st.Discarded != 0 || st.Open != 1 {
		t.Fatalf("stats = %+v; want one connection, never discarded", st)
	}
	if _, err := c.Do(context.Background()); err == nil {
		t.Fatal("Do with no args succeeded")
	}
}

func TestEvalSHA(t *testing.T) {
	s := sharedRedis(t, "plain")
	c := newClient(t, Options{Address: s.addr()})
	script := NewScript(`return {redis.call("INCRBY", KEYS[1], ARGV[1]), ARGV[2]}`)
	if script.SHA1() != mustDo(t, c, "SCRIPT", "LOAD", script.src).Str {
		t.Fatal("SHA1 differs from the server's")
	}
	mustDo(t, c, "DEL", "evalsha")

	for i, flush := range []bool{true, false, true} {
		if flush {
			mustDo(t, c, "SCRIPT", "FLUSH")
			if exists := mustDo(t, c, "SCRIPT", "EXISTS", script.SHA1()); exists.Array[0].Int != 0 {
				t.Fatal("script still cached after SCRIPT FLUSH")
			}
		}
		v, err := c.EvalSHA(context.Background(), script, []string{"evalsha"}, []string{"5", "tag"})
		if err != nil {
			t.Fatalf("EvalSHA #%d (flushed %v): %v", i, flush, err)
		}
		want := Value{Type: TypeArray, Array: []Value{{Type: TypeInt, Int: int64(5 * (i + 1))}, {Type: TypeBulk, Str: "tag"}}}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("EvalSHA #%d = %+v, want %+v", i, v, want)
		}
		if exists := mustDo(t, c, "SCRIPT", "EXISTS", script.SHA1()); exists.Array[0].Int != 1 {
			t.Fatal("script not cached after EvalSHA")
		}
	}

	// A script error is returned as is, and not retried.
	bad := NewScript(`return redis.error_reply("NOPE " .. ARGV[1])`)
	_, err := c.EvalSHA(context.Background(), bad, nil, []string{"x"})
	if re, ok := err.(RedisError); !ok || string(re) != "NOPE x" {
		t.Fatalf("EvalSHA error = %#v, want RedisError NOPE x", err)
	}
	if err := c.LoadScript(context.Background(), script); err != nil {
		t.Fatal(err)
	}
}

func TestAuth(t *testing.T) {
	s := sharedRedis(t, "auth")
	tests := []struct {
		desc     string
		user     string
		password string
		wantErr  string // substring; "" for success
		prefix   string // RedisError code inside
	}{
		{desc: "default user password", password: authPassword},
		{desc: "ACL user", user: "alice", password: alicePassword},
		{desc: "bad password", password: "wrong", wantErr: "resp: AUTH: WRONGPASS", prefix: "WRONGPASS"},
		{desc: "ACL user, bad password", user: "alice", password: authPassword, wantErr: "resp: AUTH: WRONGPASS", prefix: "WRONGPASS"},
		{desc: "unknown user", user: "bob", password: "x", wantErr: "resp: AUTH:", prefix: "WRONGPASS"},
		{desc: "no password", wantErr: "NOAUTH", prefix: "NOAUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c := newClient(t, Options{Address: s.addr(), Username: tt.user, Password: tt.password, DB: 2})
			v, err := c.Do(context.Background(), "PING")
			if tt.wantErr == "" {
				if err != nil || v.Str != "PONG" {
					t.Fatalf("PING = %+v, %v", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v; want %q", err, tt.wantErr)
			}
			if !isRedisError(err, tt.prefix) {
				t.Fatalf("error %v does not wrap a RedisError %s", err, tt.prefix)
			}
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Fatalf("error %q shows the password", err)
			}
			if st := c.Stats(); tt.password != "" && (st.Open != 0 || st.DialErrors != 1) {
				t.Fatalf("stats after failed AUTH = %+v", st)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	s := sharedRedis(t, "plain")
	c0 := newClient(t, Options{Address: s.addr()})
	c5 := newClient(t, Options{Address: s.addr(), DB: 5})
	mustDo(t, c0, "DEL", "dbkey")
	mustDo(t, c5, "SET", "dbkey", "in five")
	if v := mustDo(t, c0, "GET", "dbkey"); !v.Null {
		t.Fatalf("db 0 sees %+v", v)
	}
	if v := mustDo(t, c5, "GET", "dbkey"); v.Str != "in five" {
		t.Fatalf("db 5 sees %+v", v)
	}
	if v := mustDo(t, c0, "CLIENT", "LIST"); !strings.Contains(v.Str, " db=5 ") {
		t.Fatalf("no connection on db 5 in CLIENT LIST:\n%s", v.Str)
	}

	bad := newClient(t, Options{Address: s.addr(), DB: 1000})
	_, err := bad.Do(context.Background(), "PING")
	if err == nil || !strings.HasPrefix(err.Error(), "resp: SELECT: ERR") {
		t.Fatalf("error = %v; want a SELECT error", err)
	}
}

func TestPoolBound(t *testing.T) {
	s := newRedis(t, true)
	observer := newClient(t, Options{Address: s.addr(), PoolSize: 1})
	c := newClient(t, Options{Address: s.addr(), PoolSize: 2, Timeout: 3 * time.Second})

	var maxConns atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			conns, err := countConns(observer)
			if err != nil {
				t.Errorf("CLIENT LIST: %v", err)
				return
			}
			n := int64(conns)
			if n > maxConns.Load() {
				maxConns.Store(n)
			}
			if open := int64(c.Stats().Open); open > 2 {
				t.Errorf("Stats().Open = %d > PoolSize", open)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Do(context.Background(), "BLPOP", "pool-bound", "0.3")
			if err != nil || !v.Null {
				t.Errorf("BLPOP = %+v, %v", v, err)
			}
		}()
	}
	wg.Wait()
	checkQuiet(t, c)
	close(stop)
	<-watched
	elapsed := time.Since(start)

	if m := maxConns.Load(); m > 2 || m < 1 {
		t.Fatalf("server saw up to %d connections of a PoolSize 2 client", m)
	}
	if st := c.Stats(); st.Dials != 2 || st.Open != 2 || st.Idle != 2 || st.Waits < 8 {
		t.Fatalf("stats = %+v; want 2 dials, 2 open and idle, 8 waits at least", st)
	}
	// 10 blocking commands through 2 connections take 5 rounds.
	if elapsed < 1400*time.Millisecond {
		t.Fatalf("10 BLPOP 0.3 over 2 connections took %v: they did not queue", elapsed)
	}
}

func TestPoolWait(t *testing.T) {
	s := sharedRedis(t, "plain")

	t.Run("ErrPoolTimeout after Timeout", func(t *testing.T) {
		c := newClient(t, Options{Address: s.addr(), PoolSize: 1, Timeout: 150 * time.Millisecond})
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			go func() {
				_, err := c.Do(context.Background(), "BLPOP", "pool-wait", "1")
				errs <- err
			}()
		}
		var timeouts, poolTimeouts int
		for i := 0; i < 4; i++ {
			err := <-errs
			switch {
			case errors.Is(err, ErrPoolTimeout):
				poolTimeouts++
			case errors.Is(err, os.ErrDeadlineExceeded):
				timeouts++
			default:
				t.Errorf("error = %v", err)
			}
		}
		checkQuiet(t, c)
		st := c.Stats()
		if poolTimeouts == 0 || timeouts == 0 || int64(poolTimeouts) != st.PoolTimeouts || int64(timeouts) != st.Timeouts {
			t.Fatalf("%d pool timeouts, %d command timeouts, stats %+v", poolTimeouts, timeouts, st)
		}
		if st.Open != 0 || st.Dials != int64(timeouts) {
			t.Fatalf("stats = %+v; timed out connections must be closed", st)
		}
	})

	t.Run("ctx ends while waiting", func(t *testing.T) {
		c := newClient(t, Options{Address: s.addr(), PoolSize: 1, Timeout: 3 * time.Second})
		busy := make(chan error, 1)
		go func() {
			// Holds the only connection for 1 s: far longer than the ctx below.
			_, err := c.Do(context.Background(), "BLPOP", "pool-wait", "1")
			busy <- err
		}()
		waitFor(t, "the first command to hold the connection", func() bool { return c.Stats().Open == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Do(ctx, "PING")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 800*time.Millisecond {
			t.Fatalf("error = %v after %v; want the ctx deadline after ~50ms", err, time.Since(start))
		}
		if err := <-busy; err != nil {
			t.Fatal(err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if _, err := c.Do(ctx, "PING"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled ctx: error = %v", err)
		}
	})
}

func TestTimeout(t *testing.T) {
	s := newRedis(t, true)
	observer := newClient(t, Options{Address: s.addr(), PoolSize: 1, Timeout: 5 * time.Second})
	c := newClient(t, Options{Address: s.addr(), Timeout: 100 * time.Millisecond})
	mustDo(t, c, "SET", "k", "v")

	t.Run("DEBUG SLEEP", func(t *testing.T) {
		start := time.Now()
		_, err := c.Do(context.Background(), "DEBUG", "SLEEP", "2")
		elapsed := time.Since(start)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.HasPrefix(err.Error(), "resp: DEBUG: ") {
			t.Fatalf("error = %v; want a DEBUG timeout", err)
		}
		if elapsed < 90*time.Millisecond || elapsed > 1500*time.Millisecond { // not the 2 s sleep
			t.Fatalf("timed out after %v, want ~100ms", elapsed)
		}
		if st := c.Stats(); st.Open != 0 || st.Discarded != 1 || st.Timeouts != 1 {
			t.Fatalf("stats = %+v; the timed out connection must be closed", st)
		}
		// Once the server is awake, the next command gets its own reply (the late +OK of
		// DEBUG SLEEP went to the closed connection).
		waitFor(t, "the server to wake up", func() bool {
			_, err := observer.Do(context.Background(), "PING")
			return err == nil
		})
		if v := mustDo(t, c, "GET", "k"); v.Str != "v" {
			t.Fatalf("GET after timeout = %+v; out of step", v)
		}
		waitFor(t, "the server to drop the closed connection", func() bool { return serverConns(t, observer) == 1 })
	})

	t.Run("BLPOP, next command at once", func(t *testing.T) {
		_, err := c.Do(context.Background(), "BLPOP", "nolist", "0.5")
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("error = %v", err)
		}
		if v := mustDo(t, c, "GET", "k"); v.Str != "v" {
			t.Fatalf("GET after timeout = %+v", v)
		}
	})

	t.Run("ctx deadline sooner than Timeout", func(t *testing.T) {
		slow := newClient(t, Options{Address: s.addr(), Timeout: 3 * time.Second})
		mustDo(t, slow, "PING") // the connection is open: the deadline below is the command's, not the dial's
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := slow.Do(ctx, "BLPOP", "nolist", "2")
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > time.Second {
			t.Fatalf("error = %v after %v; want a timeout after ~30ms", err, time.Since(start))
		}
	})
}

func TestMaxReplyBytes(t *testing.T) {
	s := sharedRedis(t, "plain")
	c := newClient(t, Options{Address: s.addr(), MaxReplyBytes: 1024})
	mustDo(t, c, "SET", "large", strings.Repeat("y", 2000))
	mustDo(t, c, "DEL", "longlist")
	for i := 0; i < 300; i++ {
		mustDo(t, c, "RPUSH", "longlist", strconv.Itoa(i))
	}
	for _, args := range [][]string{{"GET", "large"}, {"LRANGE", "longlist", "0", "-1"}} {
		_, err := c.Do(context.Background(), args...)
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("%v: error = %v; want ErrProtocol", args, err)
		}
		if v := mustDo(t, c, "PING"); v.Str != "PONG" {
			t.Fatalf("PING after a refused reply = %+v", v)
		}
	}
	if st := c.Stats(); st.Discarded != 2 {
		t.Fatalf("stats = %+v; want the 2 connections with refused replies discarded", st)
	}
}

func TestServerRestart(t *testing.T) {
	s := newRedis(t, true)
	// A long dial timeout: "fail fast" below must not be a dial that timed out.
	c := newClient(t, Options{Address: s.addr(), PoolSize: 4, Timeout: time.Second, DialTimeout: 5 * time.Second})

	// Fill the pool with idle connections.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Do(context.Background(), "BLPOP", "nolist", "0.05"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st := c.Stats(); st.Idle == 0 {
		t.Fatalf("no idle connection: %+v", st)
	}

	t.Run("restart between commands: the stale connections are replaced", func(t *testing.T) {
		s.stop()
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		if v := mustDo(t, c, "PING"); v.Str != "PONG" {
			t.Fatalf("PING = %+v", v)
		}
		st := c.Stats()
		if st.Retries != 1 || st.Idle != 1 || st.Open != 1 {
			t.Fatalf("stats = %+v; want one retry, the stale idle connections gone", st)
		}
	})

	t.Run("server down: fail fast", func(t *testing.T) {
		s.stop()
		for i := 0; i < 3; i++ {
			start := time.Now()
			_, err := c.Do(context.Background(), "PING")
			if err == nil {
				t.Fatal("PING succeeded with the server down")
			}
			if time.Since(start) > 500*time.Millisecond {
				t.Fatalf("failing took %v", time.Since(start))
			}
			t.Logf("server down: %v", err)
		}
		if st := c.Stats(); st.Open != 0 {
			t.Fatalf("stats = %+v; nothing may stay open", st)
		}
	})

	t.Run("server back: same client works", func(t *testing.T) {
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		if v := mustDo(t, c, "PING"); v.Str != "PONG" {
			t.Fatalf("PING = %+v", v)
		}
	})
}

func TestClose(t *testing.T) {
	s := newRedis(t, true)
	observer := newClient(t, Options{Address: s.addr(), PoolSize: 1})
	c, err := New(Options{Address: s.addr(), PoolSize: 1, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	mustDo(t, c, "PING")
	busy := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), "BLPOP", "nolist", "0.3")
		busy <- err
	}()
	waitFor(t, "the connection to be in use", func() bool { return c.Stats().Idle == 0 })
	waiter := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), "PING")
		waiter <- err
	}()
	time.Sleep(20 * time.Millisecond)

	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiter; !errors.Is(err, ErrClosed) || time.Since(start) > 250*time.Millisecond {
		t.Fatalf("waiting command: %v after %v; want ErrClosed at once", err, time.Since(start))
	}
	if err := <-busy; err != nil {
		t.Fatalf("command in flight during Close: %v", err)
	}
	if _, err := c.Do(context.Background(), "PING"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if st := c.Stats(); st.Open != 0 || st.Idle != 0 {
		t.Fatalf("stats after Close = %+v", st)
	}
	waitFor(t, "the server to see no connection of the closed client", func() bool { return serverConns(t, observer) == 0 })
}

func TestNoLeaks(t *testing.T) {
	s := newRedis(t, true)
	observer := newClient(t, Options{Address: s.addr(), PoolSize: 1})
	before := runtime.NumGoroutine()

	c, err := New(Options{Address: s.addr(), PoolSize: 8, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	script := NewScript(`return redis.call("INCR", KEYS[1])`)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				switch i % 10 {
				case 0:
					c.Do(context.Background(), "BLPOP", "nolist", "0.3") // times out
				case 1:
					c.Do(context.Background(), "NOSUCHCOMMAND")
				default:
					if _, err := c.EvalSHA(context.Background(), script, []string{"leak"}, nil); err != nil &&
						!errors.Is(err, ErrPoolTimeout) && !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("EvalSHA: %v", err)
					}
				}
			}
		}(g)
	}
	wg.Wait()
	checkQuiet(t, c)
	if st := c.Stats(); st.Open > 8 || st.Dials-st.Discarded != int64(st.Open) {
		t.Fatalf("stats = %+v; open connections unaccounted for", st)
	}
	if n := serverConns(t, observer); n > 8 {
		t.Fatalf("server sees %d connections of a PoolSize 8 client", n)
	}
	c.Close()
	waitFor(t, "the server to see no connection", func() bool { return serverConns(t, observer) == 0 })
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestConcurrentIncr(t *testing.T) {
	s := sharedRedis(t, "plain")
	c := newClient(t, Options{Address: s.addr(), PoolSize: 4, Timeout: time.Second})
	mustDo(t, c, "DEL", "concurrent")
	var wg sync.WaitGroup
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := c.Do(context.Background(), "INCR", "concurrent"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkQuiet(t, c)
	if v := mustDo(t, c, "GET", "concurrent"); v.Str != "2000" {
		t.Fatalf("counter = %+v, want 2000", v)
	}
	if st := c.Stats(); st.Dials > 4 {
		t.Fatalf("stats = %+v", st)
	}
}
