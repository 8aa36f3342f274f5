package resp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file is the whole life of one rate-limit command after KeyedStatus (keyed.go) found no
// cached command or no idle connection, or got something other than a status line: a prepared
// EVALSHA whose script answers a status reply (redis.status_reply(text)), sent on a pooled
// connection, read as one line, and retried at most once (statusReply).

// Prepared is an EVALSHA command whose script, key count and arguments are fixed at setup;
// only the keys vary per call. It is the rate limiter's command: see EvalStatus and Keyed.
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

// appendCommand encodes the command of p for keys (len(keys) == p.nkeys).
func (p *Prepared) appendCommand(keys []string) []byte {
	cmd := make([]byte, 0, len(p.head)+len(p.tail)+64*len(keys))
	cmd = append(cmd, p.head...)
	for _, k := range keys {
		cmd = appendBulk(cmd, k)
	}
	return append(cmd, p.tail...)
}

// EvalStatus runs a prepared script that answers with a status reply and returns the text.
// The common case, a status line from a pooled connection, costs one write and one line read,
// which matters under Yaegi where the general reply parser costs microseconds per element.
// NOSCRIPT and a pooled connection the server had closed are retried once (statusReply). The
// I/O deadline is Options.Timeout (a ctx deadline is not consulted on this path).
func (c *Client) EvalStatus(ctx context.Context, p *Prepared, keys []string) (string, error) {
	if len(keys) != p.nkeys {
		return "", fmt.Errorf("resp: EVALSHA: %d keys, prepared for %d", len(keys), p.nkeys)
	}
	return c.runStatus(ctx, p, p.appendCommand(keys))
}

// runStatus sends cmd, an encoded command of p, on a pooled connection and returns the status
// text of its reply; statusReply reads the answer and retries once when it may.
func (c *Client) runStatus(ctx context.Context, p *Prepared, cmd []byte) (string, error) {
	cn, err := c.get(ctx)
	if err != nil {
		return "", err
	}
	line, err := cn.statusLine(cmd, time.Now().Add(c.opts.Timeout))
	return c.statusReply(ctx, cn, p, cmd, line, err, true)
}

// statusLine writes cmd and reads the first line of its reply, as bufio.Reader.ReadSlice
// returns it (valid until the next read on cn).
func (cn *conn) statusLine(cmd []byte, deadline time.Time) ([]byte, error) {
	cn.nc.SetDeadline(deadline)
	_, err := cn.nc.Write(cmd)
	if err != nil {
		return nil, err
	}
	return cn.br.ReadSlice('\n')
}

// statusReply ends one attempt of cmd on cn, which holds a pool slot: line is the first line
// of the reply as read (maybe partial), err the write's or the read's error. The connection
// goes back to the pool unless it broke or is out of sync (it is then closed and its slot
// freed). When retry is true the command may be sent once more:
//
//   - no reply at all, not a timeout, on a connection that had been idle in the pool: the
//     server closed it (a restart), and likely the other idle ones: they are dropped and the
//     command goes again on a new connection in the same slot (redial);
//   - NOSCRIPT, the server lost its scripts (a restart, SCRIPT FLUSH): SCRIPT LOAD, then the
//     command again on a pooled connection.
//
// The retry's own outcome is final (retry false): one command, at most two attempts.
func (c *Client) statusReply(ctx context.Context, cn *conn, p *Prepared, cmd, line []byte, err error, retry bool) (string, error) {
	n := len(line) - 2
	if err != nil {
		if !retry || !deadOnArrival(cn, len(line) == 0, err) {
			c.discard(cn, err)
			c.release()
			return "", fmt.Errorf("resp: EVALSHA: %w", err)
		}
		cn, err = c.redial(ctx, cn, err)
		if err != nil {
			return "", err
		}
		line, err = cn.statusLine(cmd, c.deadline(ctx))
		return c.statusReply(ctx, cn, p, cmd, line, err, false)
	}
	if n < 1 || line[n] != '\r' || (line[0] != '+' && line[0] != '-') {
		c.discard(cn, ErrProtocol)
		c.release()
		return "", fmt.Errorf("%w: EVALSHA: the script did not answer a status reply", ErrProtocol)
	}
	if line[0] == '+' {
		status := string(line[1:n])
		c.put(cn)
		return status, nil
	}
	// An error reply is complete on its line: the connection stays usable.
	re := RedisError(string(line[1:n]))
	if c.readOnly(re) {
		c.discard(cn, re)
		c.release()
		return "", re
	}
	c.put(cn)
	if !retry || !strings.HasPrefix(string(re), "NOSCRIPT") {
		return "", re
	}
	err = c.LoadScript(ctx, p.script)
	if err != nil {
		return "", err
	}
	cn, err = c.get(ctx)
	if err != nil {
		return "", err
	}
	line, err = cn.statusLine(cmd, c.deadline(ctx))
	return c.statusReply(ctx, cn, p, cmd, line, err, false)
}
