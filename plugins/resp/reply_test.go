package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// parse reads one reply from in with the default limits and reports how many bytes it took.
func parse(in string, maxBytes int) (Value, int, error) {
	r := strings.NewReader(in)
	br := bufio.NewReaderSize(r, readBufferSize)
	v, err := readReply(br, maxBytes)
	return v, len(in) - r.Len() - br.Buffered(), err
}

// encode writes v back in RESP2, canonically.
func encode(b []byte, v Value) []byte {
	b = append(b, v.Type)
	switch v.Type {
	case TypeSimple, TypeError:
		b = append(b, v.Str...)
	case TypeInt:
		b = strconv.AppendInt(b, v.Int, 10)
	case TypeBulk:
		if v.Null {
			return append(b, "-1\r\n"...)
		}
		b = strconv.AppendInt(b, int64(len(v.Str)), 10)
		b = append(b, "\r\n"...)
		b = append(b, v.Str...)
	case TypeArray:
		if v.Null {
			return append(b, "-1\r\n"...)
		}
		b = strconv.AppendInt(b, int64(len(v.Array)), 10)
		b = append(b, "\r\n"...)
		for _, e := range v.Array {
			b = encode(b, e)
		}
		return b
	}
	return append(b, "\r\n"...)
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		want Value
	}{
		{desc: "simple", in: "+OK\r\n", want: Value{Type: TypeSimple, Str: "OK"}},
		{desc: "simple with spaces", in: "+a b c\r\n", want: Value{Type: TypeSimple, Str: "a b c"}},
		{desc: "error", in: "-ERR unknown command\r\n", want: Value{Type: TypeError, Str: "ERR unknown command"}},
		{desc: "zero", in: ":0\r\n", want: Value{Type: TypeInt}},
		{desc: "negative", in: ":-42\r\n", want: Value{Type: TypeInt, Int: -42}},
		{desc: "max int64", in: ":9223372036854775807\r\n", want: Value{Type: TypeInt, Int: 9223372036854775807}},
		{desc: "min int64", in: ":-9223372036854775808\r\n", want: Value{Type: TypeInt, Int: -9223372036854775808}},
		{desc: "bulk", in: "$5\r\nhello\r\n", want: Value{Type: TypeBulk, Str: "hello"}},
		{desc: "bulk with CRLF inside", in: "$4\r\n\r\n\r\n\r\n", want: Value{Type: TypeBulk, Str: "\r\n\r\n"}},
		{desc: "empty bulk", in: "$0\r\n\r\n", want: Value{Type: TypeBulk}},
		{desc: "nil bulk", in: "$-1\r\n", want: Value{Type: TypeBulk, Null: true}},
		{desc: "nil array", in: "*-1\r\n", want: Value{Type: TypeArray, Null: true}},
		{desc: "empty array", in: "*0\r\n", want: Value{Type: TypeArray, Array: []Value{}}},
		{desc: "mixed array", in: "*4\r\n:1\r\n$-1\r\n-E x\r\n*1\r\n+y\r\n",
			want: Value{Type: TypeArray, Array: []Value{{Type: TypeInt, Int: 1}, {Type: TypeBulk, Null: true},
				{Type: TypeError, Str: "E x"}, {Type: TypeArray, Array: []Value{{Type: TypeSimple, Str: "y"}}}}}},
		{desc: "bulk larger than the read buffer", in: "$5000\r\n" + strings.Repeat("z", 5000) + "\r\n",
			want: Value{Type: TypeBulk, Str: strings.Repeat("z", 5000)}},
		{desc: "nesting at MaxDepth", in: strings.Repeat("*1\r\n", MaxDepth) + ":7\r\n", want: nested(MaxDepth)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			// A second reply follows: the parser must stop exactly at the end of the first.
			v, n, err := parse(tt.in+"+NEXT\r\n", DefaultMaxReplyBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", v, tt.want)
			}
			if n != len(tt.in) {
				t.Fatalf("consumed %d bytes, want %d", n, len(tt.in))
			}
			if got := string(encode(nil, v)); got != tt.in {
				t.Fatalf("re-encoded %q, want %q", got, tt.in)
			}
		})
	}
}

func nested(depth int) Value {
	v := Value{Type: TypeInt, Int: 7}
	for i := 0; i < depth; i++ {
		v = Value{Type: TypeArray, Array: []Value{v}}
	}
	return v
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		desc     string
		in       string
		maxBytes int   // 0: 1 MiB
		want     error // ErrProtocol or an io error
	}{
		{desc: "empty input", in: "", want: io.EOF},
		{desc: "empty line", in: "\r\n", want: ErrProtocol},
		{desc: "unknown type", in: "!3\r\nabc\r\n", want: ErrProtocol},
		{desc: "RESP3 map", in: "%1\r\n+a\r\n+b\r\n", want: ErrProtocol},
		{desc: "LF only", in: "+OK\n", want: ErrProtocol},
		{desc: "CR only", in: "+OK\r", want: io.ErrUnexpectedEOF},
		{desc: "CR inside a simple string", in: "+O\rK\r\n", want: ErrProtocol},
		{desc: "no terminator", in: "+OK", want: io.ErrUnexpectedEOF},
		{desc: "line longer than the buffer", in: "+" + strings.Repeat("a", 5000) + "\r\n", want: ErrProtocol},
		{desc: "integer with plus", in: ":+1\r\n", want: ErrProtocol},
		{desc: "integer with leading zero", in: ":01\r\n", want: ErrProtocol},
		{desc: "minus zero", in: ":-0\r\n", want: ErrProtocol},
		{desc: "empty integer", in: ":\r\n", want: ErrProtocol},
		{desc: "lone minus", in: ":-\r\n", want: ErrProtocol},
		{desc: "integer with space", in: ": 1\r\n", want: ErrProtocol},
		{desc: "integer overflow", in: ":9223372036854775808\r\n", want: ErrProtocol},
		{desc: "hex integer", in: ":0x10\r\n", want: ErrProtocol},
		{desc: "underscore integer", in: ":1_000\r\n", want: ErrProtocol},
		{desc: "bulk length -2", in: "$-2\r\n", want: ErrProtocol},
		{desc: "array length -2", in: "*-2\r\n", want: ErrProtocol},
		{desc: "bulk length -10", in: "$-10\r\nabc\r\n", want: ErrProtocol},
		{desc: "bulk length not a number", in: "$abc\r\n", want: ErrProtocol},
		{desc: "bulk length over int32", in: "$2147483648\r\n", want: ErrProtocol},
		{desc: "huge bulk length", in: "$9223372036854775807\r\n", want: ErrProtocol},
		{desc: "bulk over the limit", in: "$2000000\r\nabc", want: ErrProtocol},
		{desc: "bulk just over a small limit", in: "$60\r\n" + strings.Repeat("a", 60) + "\r\n", maxBytes: 64, want: ErrProtocol},
		{desc: "huge array length", in: "*2147483647\r\n", want: ErrProtocol},
		{desc: "array over the limit", in: "*400000\r\n", want: ErrProtocol},
		{desc: "array elements over a small limit", in: "*20\r\n" + strings.Repeat(":1\r\n", 20), maxBytes: 64, want: ErrProtocol},
		{desc: "bulk without CRLF after data", in: "$3\r\nabcX\r\n", want: ErrProtocol},
		{desc: "bulk with LF only after data", in: "$3\r\nabc\nX", want: ErrProtocol},
		{desc: "bulk shorter than its length", in: "$10\r\nabc\r\n", want: io.ErrUnexpectedEOF},
		{desc: "large bulk cut short", in: "$5000\r\n" + strings.Repeat("z", 4000), want: io.ErrUnexpectedEOF},
		{desc: "array cut short", in: "*3\r\n:1\r\n:2\r\n", want: io.ErrUnexpectedEOF},
		{desc: "array element malformed", in: "*2\r\n:1\r\n:x\r\n", want: ErrProtocol},
		{desc: "nesting beyond MaxDepth", in: strings.Repeat("*1\r\n", MaxDepth+1) + ":7\r\n", want: ErrProtocol},
		{desc: "deep nesting bomb", in: strings.Repeat("*1\r\n", 100000), want: ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			maxBytes := tt.maxBytes
			if maxBytes == 0 {
				maxBytes = DefaultMaxReplyBytes
			}
			v, _, err := parse(tt.in, maxBytes)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v (value %+v); want %v", err, v, tt.want)
			}
			if !reflect.DeepEqual(v, Value{}) {
				t.Fatalf("value %+v returned with an error", v)
			}
		})
	}
}

// TestParseTruncated: every strict prefix of a valid reply is an error, never a value.
func TestParseTruncated(t *testing.T) {
	full := "*5\r\n:1\r\n$3\r\nabc\r\n$-1\r\n-ERR x\r\n*2\r\n+a\r\n*0\r\n"
	if _, _, err := parse(full, DefaultMaxReplyBytes); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(full); i++ {
		v, _, err := parse(full[:i], DefaultMaxReplyBytes)
		if err == nil {
			t.Fatalf("prefix %q parsed as %+v", full[:i], v)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrProtocol) {
			t.Fatalf("prefix %q: error %v", full[:i], err)
		}
	}
}

func TestAppendCommand(t *testing.T) {
	got := string(appendCommand([]byte("junk")[:0], []string{"SET", "k\r\n", ""}))
	want := "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// What we write parses back as the same array of bulk strings.
	v, _, err := parse(got, DefaultMaxReplyBytes)
	if err != nil || len(v.Array) != 3 || v.Array[1].Str != "k\r\n" {
		t.Fatalf("parsed back as %+v, %v", v, err)
	}
}

func TestRedisErrorPrefix(t *testing.T) {
	for in, want := range map[string]string{"NOSCRIPT No matching": "NOSCRIPT", "ERR": "ERR", "": ""} {
		if got := RedisError(in).Prefix(); got != want {
			t.Errorf("Prefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseReply: the parser never panics, consumes exactly one canonical reply when it
// succeeds (re-encoding gives back the bytes it read), respects the size limit, and fails
// only with an I/O error of the input or ErrProtocol.
func FuzzParseReply(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":-12\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
		"*2\r\n$1\r\na\r\n*1\r\n:5\r\n", "$0\r\n\r\n", ":01\r\n", "$-2\r\n", "*1\r\n*1\r\n*1\r\n+deep\r\n",
		"$70\r\n" + strings.Repeat("z", 70) + "\r\n", "+a\rb\r\n", "$4\r\nab\r\n\r\n", "*3\r\n:1\r\n:2\r\n:3\r\n",
	} {
		f.Add([]byte(seed))
	}
	// A small read buffer and limit: short inputs reach the long-line, large-bulk (read past
	// the buffer) and size-limit paths, and the minimizer stays fast.
	const bufSize, maxBytes = 64, 512
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		br := bufio.NewReaderSize(r, bufSize)
		v, err := readReply(br, maxBytes)
		consumed := len(data) - r.Len() - br.Buffered()
		if err != nil {
			if !errors.Is(err, ErrProtocol) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if consumed > maxBytes {
			t.Fatalf("consumed %d bytes, limit %d", consumed, maxBytes)
		}
		if enc := encode(nil, v); !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("reply %q re-encodes as %q", data[:consumed], enc)
		}
	})
}

func TestAppendEvalSHA(t *testing.T) {
	s := NewScript("return 1")
	for _, tt := range []struct{ keys, args []string }{
		{nil, nil},
		{[]string{"k"}, []string{"1", ""}},
		{[]string{"k1", "k\r\n2"}, nil},
		{make([]string, 12), []string{strings.Repeat("a", 300)}},
	} {
		want := appendCommand(nil, append(append([]string{"EVALSHA", s.SHA1(), strconv.Itoa(len(tt.keys))}, tt.keys...), tt.args...))
		if got := s.appendEvalSHA(nil, tt.keys, tt.args); !bytes.Equal(got, want) {
			t.Errorf("keys %q args %q:\ngot  %q\nwant %q", tt.keys, tt.args, got, want)
		}
	}
}
