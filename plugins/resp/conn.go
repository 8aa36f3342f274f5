package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// conn is one connection; only the goroutine holding its pool slot uses it.
type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	maxBytes int
	reused   bool // has been in the idle pool
	addr     string
	noReply  bool // roundTrip: the last command failed before any byte of its reply arrived
}

// roundTrip writes one encoded command and reads its reply. An error reply is returned as
// the Value and a RedisError; any other error leaves the connection unusable.
func (cn *conn) roundTrip(cmd []byte, deadline time.Time) (Value, error) {
	cn.noReply = true
	if err := cn.nc.SetDeadline(deadline); err != nil {
		return Value{}, err
	}
	if _, err := cn.nc.Write(cmd); err != nil {
		return Value{}, err
	}
	return cn.readReply()
}

func (cn *conn) readReply() (Value, error) {
	if _, err := cn.br.Peek(1); err != nil {
		return Value{}, err
	}
	cn.noReply = false
	v, err := (&parser{br: cn.br, left: cn.maxBytes}).value(0)
	if err == nil && v.Type == TypeError {
		return v, RedisError(v.Str)
	}
	return v, err
}

func (cn *conn) close() error {
	return cn.nc.Close()
}

// dial opens a connection, authenticates and selects the DB. It counts in Stats.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	cn, err := c.open(ctx)
	c.mu.Lock()
	if err != nil {
		c.stats.DialErrors++
	} else {
		c.stats.Dials++
		c.stats.Open++
		if c.sentinel != nil {
			c.sentConns[cn] = true
		}
	}
	c.mu.Unlock()
	return cn, err
}

func (c *Client) open(ctx context.Context) (*conn, error) {
	addr := c.opts.Address
	if c.sentinel != nil {
		a, err := c.sentinel.primary(ctx)
		if err != nil {
			return nil, err
		}
		addr = a
	}
	nc, err := c.dialAddr(ctx, addr)
	if err != nil {
		if c.sentinel != nil {
			c.sentinel.forget(addr)
		}
		return nil, fmt.Errorf("resp: %w", err)
	}

	cn := &conn{nc: nc, br: bufio.NewReaderSize(nc, readBufferSize), maxBytes: c.opts.MaxReplyBytes, addr: addr}
	err = c.handshake(ctx, cn)
	if err == nil && c.sentinel != nil {
		err = c.checkRole(ctx, cn)
		if err != nil {
			c.sentinel.forget(addr)
		} else if !c.sentinel.isCurrent(addr) {
			err = errors.New("resp: the primary changed while connecting")
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return cn, nil
}

// dialAddr opens a TCP (or TLS) connection to addr.
func (c *Client) dialAddr(ctx context.Context, addr string) (net.Conn, error) {
	if c.tlsDialer != nil {
		return c.tlsDialer.DialContext(ctx, "tcp", addr)
	}
	return c.dialer.DialContext(ctx, "tcp", addr)
}

// handshake sends AUTH and SELECT, as needed, in one round trip.
func (c *Client) handshake(ctx context.Context, cn *conn) error {
	var cmds [][]string
	if c.opts.Password != "" {
		if c.opts.Username != "" {
			cmds = append(cmds, []string{"AUTH", c.opts.Username, c.opts.Password})
		} else {
			cmds = append(cmds, []string{"AUTH", c.opts.Password})
		}
	}
	if c.opts.DB != 0 {
		cmds = append(cmds, []string{"SELECT", strconv.Itoa(c.opts.DB)})
	}
	if len(cmds) == 0 {
		return nil
	}

	if err := cn.nc.SetDeadline(c.deadline(ctx)); err != nil {
		return fmt.Errorf("resp: %w", err)
	}
	var buf []byte
	for _, cmd := range cmds {
		buf = appendCommand(buf, cmd)
	}
	if _, err := cn.nc.Write(buf); err != nil {
		return fmt.Errorf("resp: %s: %w", cmds[0][0], err)
	}
	// Read every reply, so that the first error is the one reported.
	var first error
	for _, cmd := range cmds {
		_, err := cn.readReply()
		if err != nil && first == nil {
			first = fmt.Errorf("resp: %s: %w", cmd[0], err)
		}
		if _, ok := err.(RedisError); !ok && err != nil {
			break
		}
	}
	return first
}
