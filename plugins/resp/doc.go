// Package resp is a small Redis client: RESP2 over TCP or TLS, a bounded connection pool,
// AUTH and SELECT on new connections, EVALSHA with a NOSCRIPT fallback, and a strict reply
// parser with size limits. It uses the standard library only, so that it runs inside
// Traefik's Yaegi interpreter, where go-redis and redigo do not (integration/resptest proves
// both).
//
// Use:
//
//	c, err := resp.New(resp.Options{Address: "127.0.0.1:6379", Password: pw})
//	...
//	limit := resp.NewScript(luaSource) // once, at setup
//	v, err := c.EvalSHA(ctx, limit, []string{key}, []string{"100", "1000"})
//	if re, ok := err.(resp.RedisError); ok { ... } // an error reply (the script's, ...)
//	...
//	c.Close()
//
// Topologies (Options): one server (Address); Redis Sentinel (SentinelAddrs, MasterName:
// the primary is asked of the sentinels when a connection is opened, checked with ROLE, and
// asked again after READONLY or a refused connection); Redis Cluster (ClusterAddrs: New
// returns a client whose commands are routed by slot to a pool per primary, following MOVED
// and ASK; see cluster.go). Config is the user-facing form of the options, shared by the
// plugins (Config.Compile validates it and reads the TLS files).
//
// Errors: an error reply is a RedisError, returned unwrapped (test it with a type
// assertion: under Yaegi, errors.As to a type declared in interpreted code panics). Client
// errors are ErrClosed, ErrPoolTimeout, or wrap ErrProtocol, a net error (errors.Is
// os.ErrDeadlineExceeded for timeouts) or the ctx's error. Their messages name the command,
// never its arguments (keys, passwords); a RedisError is the server's text, which may quote
// them (ERR unknown command ..., with args beginning with: ...).
//
// Cost under Yaegi: interpreted code runs about a microsecond per statement or call, so the
// command path is kept short. Measured on the shared 2-core test machine, one goroutine:
// PING 90-200 µs, an EVALSHA with one key and two arguments returning two integers
// 150-250 µs (compiled: about 20 µs, mostly the round trip); integration/resptest's
// BenchmarkEvalSHA compares both. Each element of an array reply costs about 20 µs to
// parse: a script that returns one integer or one bulk string is cheaper to read than one
// returning a table.
//
// Yaegi v0.16.1 traps this package avoids (integration/yaegiguard checks the first two):
// `a, b = x, f()` (one assignment per line), several expressions in a `case` of a tagless
// switch, `for i := range n` (Yaegi panics "nil type"), the min and max builtins
// (undefined), errors.As to an interpreted type (panics), closures that capture a loop
// variable (Yaegi shares one variable across iterations, as Go did before 1.22), and
// standard library symbols newer than Go 1.22.
package resp
