package resp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Script is a Lua script known by its SHA-1, as EVALSHA wants it. Make it once (NewScript),
// at setup, not per command.
type Script struct {
	src  string
	sha  string
	head string // "\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>", the encoded words after the count
}

// NewScript returns the Script of src.
func NewScript(src string) *Script {
	sum := sha1.Sum([]byte(src))
	sha := hex.EncodeToString(sum[:])
	return &Script{src: src, sha: sha, head: "\r\n$7\r\nEVALSHA\r\n$40\r\n" + sha}
}

// SHA1 returns the script's SHA-1 in lowercase hex, as Redis names it.
func (s *Script) SHA1() string { return s.sha }

// EvalSHA runs the script: EVALSHA sha numkeys keys... args.... If the server does not know
// the script (NOSCRIPT: after a restart or SCRIPT FLUSH), it is loaded (SCRIPT LOAD) and
// EVALSHA is sent once more; each of these commands has its own Timeout.
func (c *Client) EvalSHA(ctx context.Context, s *Script, keys, args []string) (Value, error) {
	if c.cluster != nil {
		return c.cluster.evalSHA(ctx, s, keys, args)
	}
	cmd := s.appendEvalSHA(make([]byte, 0, 128), keys, args)

	v, err := c.send(ctx, cmd, "EVALSHA")
	re, ok := err.(RedisError)
	if !ok || !strings.HasPrefix(string(re), "NOSCRIPT") {
		return v, err
	}
	if err := c.LoadScript(ctx, s); err != nil {
		return Value{}, err
	}
	return c.send(ctx, cmd, "EVALSHA")
}

// LoadScript loads the script into the server's script cache (SCRIPT LOAD), e.g. to fail
// early at startup; EvalSHA does it when needed.
func (c *Client) LoadScript(ctx context.Context, s *Script) error {
	v, err := c.Do(ctx, "SCRIPT", "LOAD", s.src)
	if err != nil {
		return err
	}
	if v.Str != s.sha {
		return fmt.Errorf("%w: SCRIPT LOAD answered %q, not the script's SHA-1", ErrProtocol, v.Str)
	}
	return nil
}

// appendEvalSHA appends the command EVALSHA sha numkeys keys... args..., encoded.
func (s *Script) appendEvalSHA(b []byte, keys, args []string) []byte {
	numKeys := strconv.Itoa(len(keys))
	b = strconv.AppendInt(append(b, '*'), int64(3+len(keys)+len(args)), 10)
	b = strconv.AppendInt(append(append(b, s.head...), "\r\n$"...), int64(len(numKeys)), 10)
	b = append(append(b, "\r\n"...), numKeys...)
	return append(appendArgs(appendArgs(b, keys), args), "\r\n"...)
}

// appendBulk appends s as a bulk string element: "$<len>\r\n<s>\r\n".
func appendBulk(b []byte, s string) []byte {
	b = strconv.AppendInt(append(b, '$'), int64(len(s)), 10)
	b = append(b, "\r\n"...)
	b = append(b, s...)
	return append(b, "\r\n"...)
}
