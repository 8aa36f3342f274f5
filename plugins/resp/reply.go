package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Reply types: the first byte of each RESP2 reply.
const (
	TypeSimple byte = '+' // simple string: Str
	TypeError  byte = '-' // error: Str (top level: returned as RedisError too)
	TypeInt    byte = ':' // integer: Int
	TypeBulk   byte = '$' // bulk string: Str, or Null for $-1
	TypeArray  byte = '*' // array: Array, or Null for *-1
)

// Value is one reply. Errors nested in an array stay Values of TypeError.
type Value struct {
	Type  byte
	Str   string
	Int   int64
	Array []Value
	Null  bool
}

// RedisError is an error reply from the server, e.g. "NOSCRIPT No matching script" or
// "WRONGPASS invalid username-password pair". Do and EvalSHA return it unwrapped: test it
// with a type assertion (err.(resp.RedisError)); under Yaegi, errors.As to it panics.
type RedisError string

func (e RedisError) Error() string { return string(e) }

// Prefix returns the error's first word, its code: "ERR", "NOSCRIPT", "WRONGTYPE"...
func (e RedisError) Prefix() string {
	s := string(e)
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i]
		}
	}
	return s
}

// ErrProtocol is wrapped by every error about a malformed or oversized reply.
var ErrProtocol = errors.New("resp: protocol error")

var (
	errEmptyLine   = fmt.Errorf("%w: empty line", ErrProtocol)
	errLineTooLong = fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, MaxLineBytes)
	errNoCR        = fmt.Errorf("%w: line not ended by CRLF", ErrProtocol)
	errCRInLine    = fmt.Errorf("%w: CR inside a line", ErrProtocol)
	errBadType     = fmt.Errorf("%w: unknown reply type", ErrProtocol)
	errBadInt      = fmt.Errorf("%w: malformed integer", ErrProtocol)
	errBadLength   = fmt.Errorf("%w: malformed length", ErrProtocol)
	errBulkCRLF    = fmt.Errorf("%w: bulk string not ended by CRLF", ErrProtocol)
	errTooLarge    = fmt.Errorf("%w: reply larger than the limit (maxReplyBytes)", ErrProtocol)
	errTooDeep     = fmt.Errorf("%w: arrays nested deeper than %d", ErrProtocol, MaxDepth)
)

// maxLength bounds a bulk string or array length, as Redis does (512 MB strings).
const maxLength = 1<<31 - 1

// parser reads one reply; left is how many more bytes the reply may take.
//
// It is written for Yaegi: few statements and calls per line of the reply, the checks of
// the common path merged into one condition and the error details worked out off that path.
type parser struct {
	br   *bufio.Reader
	left int
}

// readReply reads one reply from br, of at most maxBytes bytes in all. Errors are either
// br's I/O errors (io.ErrUnexpectedEOF for a reply cut short) or wrap ErrProtocol; after
// any error the stream is out of step and must be dropped.
func readReply(br *bufio.Reader, maxBytes int) (Value, error) {
	p := &parser{br: br, left: maxBytes}
	return p.value(0)
}

// value reads one value; depth is the number of arrays around it.
func (p *parser) value(depth int) (Value, error) {
	b, err := p.br.ReadSlice('\n')
	n := len(b)
	p.left -= n
	if err != nil || n < 3 || b[n-2] != '\r' || p.left < 0 {
		return Value{}, p.lineError(b, err, depth)
	}
	switch b[0] {
	case TypeInt:
		i, ok := parseInt(b[1 : n-2])
		if !ok {
			return Value{}, errBadInt
		}
		return Value{Type: TypeInt, Int: i}, nil
	case TypeBulk:
		size, ok := parseInt(b[1 : n-2])
		if !ok || size < -1 || size > maxLength {
			return Value{}, errBadLength
		}
		if size < 0 {
			return Value{Type: TypeBulk, Null: true}, nil
		}
		return p.bulk(int(size))
	case TypeSimple, TypeError:
		if bytes.IndexByte(b[:n-2], '\r') >= 0 {
			return Value{}, errCRInLine
		}
		return Value{Type: b[0], Str: string(b[1 : n-2])}, nil
	case TypeArray:
		size, ok := parseInt(b[1 : n-2])
		if !ok || size < -1 || size > maxLength {
			return Value{}, errBadLength
		}
		if size < 0 {
			return Value{Type: TypeArray, Null: true}, nil
		}
		return p.array(int(size), depth+1)
	}
	return Value{}, errBadType
}

// lineError tells what is wrong with a line that value refused.
func (p *parser) lineError(b []byte, err error, depth int) error {
	if err == bufio.ErrBufferFull {
		return errLineTooLong
	}
	if err == io.EOF && (len(b) > 0 || depth > 0) {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if p.left < 0 {
		return errTooLarge
	}
	if len(b) == 2 && b[0] == '\r' {
		return errEmptyLine
	}
	return errNoCR
}

func (p *parser) bulk(size int) (Value, error) {
	need := size + 2
	p.left -= need
	if p.left < 0 {
		return Value{}, errTooLarge
	}
	if need <= p.br.Size() {
		b, err := p.br.Peek(need)
		if err != nil {
			return Value{}, unexpectedEOF(err)
		}
		if b[size] != '\r' || b[size+1] != '\n' {
			return Value{}, errBulkCRLF
		}
		s := string(b[:size])
		p.br.Discard(need) // cannot fail: Peek has them
		return Value{Type: TypeBulk, Str: s}, nil
	}
	b := make([]byte, need)
	if _, err := io.ReadFull(p.br, b); err != nil {
		return Value{}, unexpectedEOF(err)
	}
	if b[size] != '\r' || b[size+1] != '\n' {
		return Value{}, errBulkCRLF
	}
	return Value{Type: TypeBulk, Str: string(b[:size])}, nil
}

func (p *parser) array(size, depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, errTooDeep
	}
	// Each element takes 3 bytes at least ("+\r\n"): refuse counts the budget cannot hold
	// before allocating anything.
	if size > p.left/3 {
		return Value{}, errTooLarge
	}
	capacity := size
	if capacity > 64 {
		capacity = 64
	}
	arr := make([]Value, 0, capacity)
	for i := 0; i < size; i++ {
		v, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		arr = append(arr, v)
	}
	return Value{Type: TypeArray, Array: arr}, nil
}

// parseInt parses a canonical decimal int64: optional '-', no '+', no leading zeros, no -0
// (what formatting the number gives back).
func parseInt(b []byte) (int64, bool) {
	s := string(b)
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(i, 10) != s {
		return 0, false
	}
	return i, true
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(b []byte, args []string) []byte {
	b = strconv.AppendInt(append(b, '*'), int64(len(args)), 10)
	return append(appendArgs(b, args), "\r\n"...)
}

// appendArgs appends each arg as "\r\n$<len>\r\n<arg>": the CRLF that ends the previous
// element comes first, the caller ends the last one.
func appendArgs(b []byte, args []string) []byte {
	for _, a := range args {
		b = append(append(strconv.AppendInt(append(b, "\r\n$"...), int64(len(a)), 10), "\r\n"...), a...)
	}
	return b
}
