package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// signer is one algorithm with a key pair of the type it needs.
type signer struct {
	alg   string
	priv  crypto.Signer
	pub   any // as keys.go stores it
	other any // another key of the same type
}

func signers(t testing.TB) []signer {
	t.Helper()
	rsaKey := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ecKey := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rk, rk2 := rsaKey(), rsaKey()
	var out []signer
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		out = append(out, signer{alg, rk, &rk.PublicKey, &rk2.PublicKey})
	}
	for _, c := range []struct {
		alg   string
		curve elliptic.Curve
	}{{"ES256", elliptic.P256()}, {"ES384", elliptic.P384()}, {"ES512", elliptic.P521()}} {
		k, k2 := ecKey(c.curve), ecKey(c.curve)
		out = append(out, signer{c.alg, k, &k.PublicKey, &k2.PublicKey})
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub2, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, signer{"EdDSA", priv, pub, pub2})
	if len(out) != len(supportedAlgorithms) {
		t.Fatalf("%d signers for %d supported algorithms", len(out), len(supportedAlgorithms))
	}
	return out
}

// keyKind is the kind of key an algorithm needs: RSA for RS* and PS*, the curve for the others.
func keyKind(alg string) string {
	if alg[0] == 'R' || alg[0] == 'P' {
		return "RSA"
	}
	return alg
}

// TestSignatureMethods checks every supported algorithm against golang-jwt, an independent
// implementation: what it signs verifies; tampered input, a tampered signature, another key,
// a key of another type and a signature of another encoding do not; and on every one of
// these inputs both implementations agree.
func TestSignatureMethods(t *testing.T) {
	all := signers(t)
	for _, s := range all {
		t.Run(s.alg, func(t *testing.T) {
			m := signatureMethods[s.alg]
			if m == nil {
				t.Fatalf("no signature method for %s", s.alg)
			}
			ref := jwt.GetSigningMethod(s.alg)
			input := "eyJhbGciOiJ4In0.eyJzdWIiOiJ1c2VyLTEifQ"
			sig, err := ref.Sign(input, s.priv)
			if err != nil {
				t.Fatal(err)
			}
			type probe struct {
				desc  string
				input string
				sig   []byte
				key   any
				want  bool
			}
			flip := func(b []byte, i int) []byte {
				c := append([]byte(nil), b...)
				c[i] ^= 0x01
				return c
			}
			probes := []probe{
				{"signed by golang-jwt", input, sig, s.pub, true},
				{"input changed", input + "x", sig, s.pub, false},
				{"input truncated", input[:len(input)-1], sig, s.pub, false},
				{"first signature byte flipped", input, flip(sig, 0), s.pub, false},
				{"middle signature byte flipped", input, flip(sig, len(sig)/2), s.pub, false},
				{"last signature byte flipped", input, flip(sig, len(sig)-1), s.pub, false},
				{"signature one byte short", input, sig[:len(sig)-1], s.pub, false},
				{"signature one byte long", input, append(append([]byte(nil), sig...), 0), s.pub, false},
				{"empty signature", input, nil, s.pub, false},
				{"another key of the same type", input, sig, s.other, false},
			}
			for _, o := range all {
				if keyKind(o.alg) != keyKind(s.alg) {
					probes = append(probes, probe{"the key of " + o.alg, input, sig, o.pub, false})
				}
			}
			if ec, ok := s.priv.(*ecdsa.PrivateKey); ok {
				h := m.hash.New()
				h.Write([]byte(input))
				der, err := ecdsa.SignASN1(rand.Reader, ec, h.Sum(nil))
				if err != nil {
					t.Fatal(err)
				}
				probes = append(probes, probe{"ASN.1 DER signature (not JWS's R || S)", input, der, s.pub, false})
			}
			if rk, ok := s.priv.(*rsa.PrivateKey); ok {
				h := m.hash.New()
				h.Write([]byte(input))
				digest := h.Sum(nil)
				if m.scheme == schemePSS {
					maxSalt, err := rsa.SignPSS(rand.Reader, rk, m.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
					if err != nil {
						t.Fatal(err)
					}
					probes = append(probes, probe{"PSS with the largest salt (any salt length verifies)", input, maxSalt, s.pub, true})
					pkcs, err := rsa.SignPKCS1v15(rand.Reader, rk, m.hash, digest)
					if err != nil {
						t.Fatal(err)
					}
					probes = append(probes, probe{"PKCS #1 v1.5 signature under PS", input, pkcs, s.pub, false})
				} else {
					pss, err := rsa.SignPSS(rand.Reader, rk, m.hash, digest, nil)
					if err != nil {
						t.Fatal(err)
					}
					probes = append(probes, probe{"PSS signature under RS", input, pss, s.pub, false})
				}
			}
			for _, p := range probes {
				got := m.verify(p.input, p.sig, p.key)
				if got != p.want {
					t.Errorf("%s: verify = %v, want %v", p.desc, got, p.want)
				}
				if refErr := ref.Verify(p.input, p.sig, p.key); (refErr == nil) != got {
					t.Errorf("%s: verify = %v but golang-jwt says %v", p.desc, got, refErr)
				}
			}
		})
	}
	for alg := range supportedAlgorithms {
		if signatureMethods[alg] == nil {
			t.Errorf("supported algorithm %s has no signature method", alg)
		}
	}
	for alg := range signatureMethods {
		if !supportedAlgorithms[alg] || strings.HasPrefix(alg, "HS") || strings.EqualFold(alg, "none") {
			t.Errorf("signature method %s is not a supported asymmetric algorithm", alg)
		}
	}
}
