package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// minRSABits is the smallest RSA modulus accepted as a verification key.
const minRSABits = 2048

// jwk is one entry of a JSON Web Key Set (RFC 7517), as far as verification needs it.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// verifyKey is a parsed public key with the JWK attributes that decide which tokens it may verify.
type verifyKey struct {
	kid string
	kty string
	alg string // empty: any algorithm of its type
	crv string
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keySet is an immutable snapshot of usable keys; it is replaced whole, never modified.
type keySet struct {
	byKid map[string][]*verifyKey
	all   []*verifyKey
}

// fits reports whether k may verify a token signed with alg.
func (k *verifyKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.kty == "RSA"
	case "ES256":
		return k.kty == "EC" && k.crv == "P-256"
	case "ES384":
		return k.kty == "EC" && k.crv == "P-384"
	case "ES512":
		return k.kty == "EC" && k.crv == "P-521"
	case "EdDSA":
		return k.kty == "OKP" && k.crv == "Ed25519"
	}
	return false
}

// find returns the key for a token's kid and alg. A token without kid is matched only when
// exactly one key fits its alg.
func (ks *keySet) find(kid, alg string) *verifyKey {
	if ks == nil {
		return nil
	}
	if kid != "" {
		for _, k := range ks.byKid[kid] {
			if k.fits(alg) {
				return k
			}
		}
		return nil
	}
	var found *verifyKey
	for _, k := range ks.all {
		if k.fits(alg) {
			if found != nil {
				return nil
			}
			found = k
		}
	}
	return found
}

// parseKeySet parses a JWKS document. Entries that cannot verify signatures (use: enc, small
// RSA keys, unknown types, an alg that does not fit the key, bad encodings) are skipped and
// described in skipped.
func parseKeySet(body []byte) (*keySet, []string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	ks := &keySet{byKid: map[string][]*verifyKey{}}
	var skipped []string
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		k, err := parseKey(&j)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, j.Kid, err))
			continue
		}
		ks.all = append(ks.all, k)
		ks.byKid[k.kid] = append(ks.byKid[k.kid], k)
	}
	return ks, skipped, nil
}

func parseKey(j *jwk) (*verifyKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", j.Use)
	}
	if len(j.KeyOps) > 0 && !contains(j.KeyOps, "verify") {
		return nil, errors.New("key_ops does not include verify")
	}
	if j.Alg != "" && !supportedAlgorithms[j.Alg] {
		return nil, fmt.Errorf("alg %q is not supported", j.Alg)
	}
	k := &verifyKey{kid: j.Kid, kty: j.Kty, alg: j.Alg, crv: j.Crv}
	switch j.Kty {
	case "RSA":
		pub, err := parseRSA(j)
		if err != nil {
			return nil, err
		}
		k.key = pub
	case "EC":
		pub, err := parseEC(j)
		if err != nil {
			return nil, err
		}
		k.key = pub
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("OKP curve %q is not supported", j.Crv)
		}
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 x")
		}
		k.key = ed25519.PublicKey(x)
	default:
		return nil, fmt.Errorf("kty %q is not supported", j.Kty)
	}
	// An alg the key cannot verify (ES256 on an RSA key, ES384 on a P-256 key) would make it
	// unusable while counted as usable.
	if k.alg != "" && !k.fits(k.alg) {
		return nil, fmt.Errorf("alg %q does not fit kty %q (crv %q)", j.Alg, j.Kty, j.Crv)
	}
	return k, nil
}

func parseRSA(j *jwk) (*rsa.PublicKey, error) {
	n, err := b64(j.N)
	if err != nil || len(n) == 0 {
		return nil, errors.New("bad RSA modulus")
	}
	e, err := b64(j.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("bad RSA exponent")
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("bad RSA exponent %d", exp)
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits is under %d", bits, minRSABits)
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

func parseEC(j *jwk) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	size := 0
	switch j.Crv {
	case "P-256":
		curve = elliptic.P256()
		size = 32
	case "P-384":
		curve = elliptic.P384()
		size = 48
	case "P-521":
		curve = elliptic.P521()
		size = 66
	default:
		return nil, fmt.Errorf("EC curve %q is not supported", j.Crv)
	}
	xb, err := b64(j.X)
	if err != nil || len(xb) != size {
		return nil, errors.New("bad EC x")
	}
	yb, err := b64(j.Y)
	if err != nil || len(yb) != size {
		return nil, errors.New("bad EC y")
	}
	x := new(big.Int).SetBytes(xb)
	y := new(big.Int).SetBytes(yb)
	if !curve.IsOnCurve(x, y) {
		return nil, errors.New("EC point is not on the curve")
	}
	return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
