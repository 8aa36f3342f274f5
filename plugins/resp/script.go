package resp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// Prepared is an EVALSHA command whose script, key count and arguments are fixed at setup;
// only the keys vary per call. It is the rate limiter's hot path: see EvalStatus.
type Prepared struct {
	script *Script
	head   []byte // "*<n>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n$<len>\r\n<numkeys>\r\n"
	tail   []byte // the encoded arguments
	nkeys  int
}

// Prepare encodes EVALSHA for nkeys keys and the fixed args.
func (s *Script) Prepare(nkeys int, args []string) *Prepared {
	numKeys := strconv.Itoa(nkeys)
	head := strconv.AppendInt([]byte{'*'}, int64(3+nkeys+len(args)), 10)
	head = append(head, s.head...)
	head = appendBulk(append(head, "\r\n"...), numKeys)
	var tail []byte
	for _, a := range args {
		tail = appendBulk(tail, a)
	}
	return &Prepared{script: s, head: head, tail: tail, nkeys: nkeys}
}

// EvalStatus runs a prepared script that answers with a status reply
// (redis.status_reply(text)) and returns the text. The common case, a status line from a
// pooled connection, costs one write and one line read, which matters under Yaegi where the
// general reply parser costs microseconds per element. Everything else (NOSCRIPT, error
// replies, broken connections) goes through the same handling as EvalSHA. The I/O deadline
// is Options.Timeout (a ctx deadline is not consulted on this path).
func (c *Client) EvalStatus(ctx context.Context, p *Prepared, keys []string) (string, error) {
	if len(keys) != p.nkeys {
		return "", fmt.Errorf("resp: EVALSHA: %d keys, prepared for %d", len(keys), p.nkeys)
	}
	return c.evalStatusCmd(ctx, p, p.appendCommand(keys))
}

// appendCommand encodes the command of p for keys (len(keys) == p.nkeys).
func (p *Prepared) appendCommand(keys []string) []byte {
	cmd := make([]byte, 0, len(p.head)+len(p.tail)+64*len(keys))
	cmd = append(cmd, p.head...)
	for _, k := range keys {
		cmd = appendBulk(cmd, k)
	}
	return append(cmd, p.tail...)
}

// evalStatusCmd is EvalStatus of an encoded command.
func (c *Client) evalStatusCmd(ctx context.Context, p *Prepared, cmd []byte) (string, error) {
	cn, err := c.get(ctx)
	if err != nil {
		return "", err
	}
	cn.noReply = true
	cn.nc.SetDeadline(time.Now().Add(c.opts.Timeout))
	_, err = cn.nc.Write(cmd)
	if err != nil {
		return c.evalStatusSlow(ctx, cn, p, cmd, nil, err)
	}
	line, err := cn.br.ReadSlice('\n')
	if err != nil || len(line) < 3 || line[0] != '+' || line[len(line)-2] != '\r' {
		return c.evalStatusSlow(ctx, cn, p, cmd, line, err)
	}
	status := string(line[1 : len(line)-2])
	c.put(cn)
	return status, nil
}

// evalStatusSlow finishes an EvalStatus that did not get a plain status line.
func (c *Client) evalStatusSlow(ctx context.Context, cn *conn, p *Prepared, cmd, line []byte, err error) (string, error) {
	if len(line) > 0 {
		cn.noReply = false
	}
	if err != nil {
		v, err2 := c.failed(ctx, cn, cmd, "EVALSHA", Value{}, err)
		return statusOf(v, err2)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' || line[0] != '-' {
		c.discard(cn, ErrProtocol)
		c.release()
		return "", fmt.Errorf("%w: EVALSHA: the script did not answer a status reply", ErrProtocol)
	}
	// An error reply is complete on its line: the connection stays usable.
	re := RedisError(string(line[1 : len(line)-2]))
	if c.readOnly(re) {
		c.discard(cn, re)
		c.release()
		return "", re
	}
	c.put(cn)
	if !strings.HasPrefix(string(re), "NOSCRIPT") {
		return "", re
	}
	if err := c.LoadScript(ctx, p.script); err != nil {
		return "", err
	}
	return statusOf(c.send(ctx, cmd, "EVALSHA"))
}

func statusOf(v Value, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if v.Type != TypeSimple {
		return "", fmt.Errorf("%w: EVALSHA: the script did not answer a status reply", ErrProtocol)
	}
	return v.Str, nil
}

// appendBulk appends s as a bulk string element: "$<len>\r\n<s>\r\n".
func appendBulk(b []byte, s string) []byte {
	b = strconv.AppendInt(append(b, '$'), int64(len(s)), 10)
	b = append(b, "\r\n"...)
	b = append(b, s...)
	return append(b, "\r\n"...)
}
