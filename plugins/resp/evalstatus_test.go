package resp

import (
	"context"
	"strings"
	"testing"
)

func TestEvalStatus(t *testing.T) {
	srv := sharedRedis(t, "plain")
	c := newClient(t, Options{Address: srv.addr()})
	ctx := context.Background()
	echo := NewScript(`return redis.status_reply(KEYS[1] .. ' ' .. KEYS[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])`)
	p := echo.Prepare(2, []string{"a r g", ""})
	for _, tc := range []struct {
		desc string
		run  func() (string, error)
		want string
		err  string
	}{
		{desc: "status reply, keys and args encoded", want: "{k}:1 {k}:2 a r g ",
			run: func() (string, error) { return c.EvalStatus(ctx, p, []string{"{k}:1", "{k}:2"}) }},
		{desc: "NOSCRIPT: loaded and sent again", want: "{k}:x {k}:y a r g ",
			run: func() (string, error) {
				mustDo(t, c, "SCRIPT", "FLUSH")
				return c.EvalStatus(ctx, p, []string{"{k}:x", "{k}:y"})
			}},
		{desc: "error reply comes back as RedisError", err: "ERR",
			run: func() (string, error) {
				return c.EvalStatus(ctx, NewScript(`return redis.error_reply('ERR nope')`).Prepare(0, nil), nil)
			}},
		{desc: "a reply that is not a status is a protocol error", err: "did not answer a status reply",
			run: func() (string, error) {
				return c.EvalStatus(ctx, NewScript(`return {1, 2}`).Prepare(0, nil), nil)
			}},
		{desc: "wrong key count", err: "prepared for 2",
			run: func() (string, error) { return c.EvalStatus(ctx, p, []string{"one"}) }},
		{desc: "connection still in sync afterwards", want: "{k}:1 {k}:2 a r g ",
			run: func() (string, error) { return c.EvalStatus(ctx, p, []string{"{k}:1", "{k}:2"}) }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := tc.run()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if v := mustDo(t, c, "PING"); v.Str != "PONG" {
		t.Fatalf("PING after the cases: %+v", v)
	}
}
