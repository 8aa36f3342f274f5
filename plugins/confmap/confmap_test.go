package confmap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type limit struct {
	Requests int
	Window   string
}

type sample struct {
	Name      string
	On        bool
	Count     int
	Ratio     float64
	Tags      []string
	Headers   map[string]string
	Limits    []limit
	Overrides map[string][]limit
	Inner     struct{ Address string }
	hidden    string
}

func defaults() sample {
	s := sample{Name: "default", On: true, Count: 7, Tags: []string{"a"}}
	s.Inner.Address = "127.0.0.1:6379"
	return s
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		desc string
		in   map[string]any
		want func(s *sample)
		err  string
	}{
		{desc: "absent keys keep defaults", in: map[string]any{}, want: func(s *sample) {}},
		{desc: "strings to typed fields, keys case-insensitive",
			in:   map[string]any{"NAME": "x", "on": "false", "count": "0x10", "ratio": "0.5"},
			want: func(s *sample) { s.Name = "x"; s.On = false; s.Count = 16; s.Ratio = 0.5 }},
		{desc: "comma string splits untrimmed, as Traefik does", in: map[string]any{"tags": "a, b"},
			want: func(s *sample) { s.Tags = []string{"a", " b"} }},
		{desc: "list replaces the default list", in: map[string]any{"tags": []any{"x", "y"}},
			want: func(s *sample) { s.Tags = []string{"x", "y"} }},
		{desc: "maps, lists of structs, nested maps of lists", in: map[string]any{
			"headers":   map[string]any{"sub": "X-Auth-Subject"},
			"limits":    []any{map[string]any{"requests": "100", "window": "1s"}},
			"overrides": map[string]any{"partner-a": []any{map[string]any{"requests": "1000", "window": "1s"}}},
			"inner":     map[string]any{"address": "redis:6379"},
		}, want: func(s *sample) {
			s.Headers = map[string]string{"sub": "X-Auth-Subject"}
			s.Limits = []limit{{100, "1s"}}
			s.Overrides = map[string][]limit{"partner-a": {{1000, "1s"}}}
			s.Inner.Address = "redis:6379"
		}},
		{desc: "a single map where a list is expected", in: map[string]any{"limits": map[string]any{"requests": "5", "window": "1m"}},
			want: func(s *sample) { s.Limits = []limit{{5, "1m"}} }},
		{desc: "unknown key is named", in: map[string]any{"nmae": "x"}, err: "nmae: unknown option"},
		{desc: "unexported fields are not options", in: map[string]any{"hidden": "x"}, err: "hidden: unknown option"},
		{desc: "bool yes refused", in: map[string]any{"on": "yes"}, err: `on: expected true or false, got "yes"`},
		{desc: "nested errors carry the path", in: map[string]any{"limits": []any{map[string]any{"requests": "many"}}},
			err: `limits[0].requests: expected a whole number, got "many"`},
		{desc: "every problem at once", in: map[string]any{"count": "x", "inner": map[string]any{"adress": "y"}},
			err: "count: expected a whole number"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := defaults()
			err := Decode(tc.in, reflect.ValueOf(&got))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDecodeReportsAll(t *testing.T) {
	s := defaults()
	err := Decode(map[string]any{"count": "x", "inner": map[string]any{"adress": "y"}}, reflect.ValueOf(&s))
	if err == nil || !strings.Contains(err.Error(), "count:") || !strings.Contains(err.Error(), "inner.adress: unknown option") {
		t.Fatalf("error %v", err)
	}
}

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		s              string
		token, control bool
	}{
		{"X-Auth-Client", true, false}, {"X Bad", false, false}, {"", false, false},
		{"a\r\nb", false, true}, {"del\x7f", false, true}, {"x_y.z~", true, false}, {"é", false, false},
	} {
		if IsToken(tc.s) != tc.token || HasControl(tc.s) != tc.control {
			t.Errorf("%q: IsToken %v HasControl %v", tc.s, IsToken(tc.s), HasControl(tc.s))
		}
	}
	if got := CleanList([]string{" a", "", " ", "b "}); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("CleanList %q", got)
	}
	var errs []error
	if d := ParseDuration(&errs, "leeway", "30s", "30s", 0, time.Minute); d != 30*time.Second || len(errs) != 0 {
		t.Errorf("30s: %v %v", d, errs)
	}
	ParseDuration(&errs, "leeway", "30", "30s", 0, time.Minute)
	ParseDuration(&errs, "leeway", "2m", "30s", 0, time.Minute)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), `leeway: invalid duration "30" (use e.g. "30s")`) ||
		!strings.Contains(errs[1].Error(), `leeway: "2m" is out of range`) {
		t.Errorf("errors %v", errs)
	}
}

func TestDurationOr(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{"", 2 * time.Second, ""},
		{"  ", 2 * time.Second, ""},
		{" 500ms", 500 * time.Millisecond, ""},
		{"5", 2 * time.Second, `timeout: invalid duration "5" (use e.g. "2s")`},
		{"2h", 2 * time.Second, `timeout: "2h" is out of range [1ms, 1m0s]`},
	} {
		var errs []error
		got := DurationOr(&errs, "timeout", tc.value, 2*time.Second, time.Millisecond, time.Minute)
		msg := ""
		if len(errs) > 0 {
			msg = errs[0].Error()
		}
		if got != tc.want || len(errs) > 1 || (tc.err == "") != (msg == "") || !strings.Contains(msg, tc.err) {
			t.Errorf("%q: %v %q, want %v %q", tc.value, got, msg, tc.want, tc.err)
		}
	}
}

func TestIsHTTPURL(t *testing.T) {
	for s, want := range map[string]bool{
		"http://a/":                        true,
		"https://kc.example:8443/realms/x": true,
		"HTTPS://kc.example/":              true, // url.Parse lowercases the scheme
		"ftp://a/":                         false,
		"http:///x":                        false,
		"kc.example/certs":                 false,
		"redis://r:6379":                   false,
		"http://[::1":                      false,
		"":                                 false,
	} {
		if IsHTTPURL(s) != want {
			t.Errorf("IsHTTPURL(%q) = %v", s, !want)
		}
	}
}

func TestNetworks(t *testing.T) {
	var errs []error
	got := Networks(&errs, "trustedProxies", []string{" 10.0.0.0/8", "", "192.0.2.7", "::1", "10.0.0.0/33", "proxy.local"})
	var names []string
	for _, n := range got {
		names = append(names, n.String())
	}
	if strings.Join(names, " ") != "10.0.0.0/8 192.0.2.7/32 ::1/128" {
		t.Errorf("networks %q", names)
	}
	if len(errs) != 2 || errs[0].Error() != `trustedProxies[3]: "10.0.0.0/33" is not a CIDR or an IP address` ||
		errs[1].Error() != `trustedProxies[4]: "proxy.local" is not a CIDR or an IP address` {
		t.Errorf("errors %v", errs)
	}
}

func TestCAFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyDER, _ := x509.MarshalECPrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))

	good := write("ca.pem", "comment before\n"+certPEM)
	pool, sum, err := CAFile(good)
	if err != nil || pool == nil || len(sum) != 64 {
		t.Fatalf("good bundle: %v %v %q", pool, err, sum)
	}
	_, sum2, err := CAFile(write("ca2.pem", certPEM+certPEM))
	if err != nil || sum2 == sum {
		t.Fatalf("another bundle: err %v, same sum %v", err, sum2 == sum)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pem"), "no such file or directory"},
		{write("empty.pem", ""), "holds no PEM certificate"},
		{write("key.pem", certPEM+keyPEM), "holds a private key"},
		{write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "certificate 1 does not parse"},
		{dir, "is a directory"},
	} {
		if _, _, err := CAFile(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: error %v, want %q and the path", tc.path, err, tc.want)
		}
	}
}
