package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 behind crypto.SHA256 (RS256, PS256, ES256)
	_ "crypto/sha512" // SHA-384 and SHA-512 (RS/PS/ES 384 and 512)
	"math/big"
)

// The signature schemes of RFC 7518 section 3 the plugin verifies (HMAC and none never).
const (
	schemePKCS1 = iota + 1 // RSASSA-PKCS1-v1_5 (RS*)
	schemePSS              // RSASSA-PSS, MGF1 with the same hash (PS*)
	schemeECDSA            // ECDSA, signature R || S of fixed size (ES*)
	schemeEdDSA            // Ed25519 (EdDSA, RFC 8037)
)

// signatureMethod verifies the signature of one JWS algorithm with the standard library's
// crypto packages. The plugin once used golang-jwt's signing methods for this; they are the
// only part of it the plugin needed, and its 2,000 lines cost every interpreter that loads
// the plugin memory for their syntax trees.
type signatureMethod struct {
	scheme int
	hash   crypto.Hash // unused for EdDSA, which signs the message itself
	size   int         // ECDSA: bytes of R and of S (the curve's order, rounded up)
}

// signatureMethods are the methods by JWS alg; an alg missing here is never verified.
var signatureMethods = map[string]*signatureMethod{
	"RS256": {scheme: schemePKCS1, hash: crypto.SHA256},
	"RS384": {scheme: schemePKCS1, hash: crypto.SHA384},
	"RS512": {scheme: schemePKCS1, hash: crypto.SHA512},
	"PS256": {scheme: schemePSS, hash: crypto.SHA256},
	"PS384": {scheme: schemePSS, hash: crypto.SHA384},
	"PS512": {scheme: schemePSS, hash: crypto.SHA512},
	"ES256": {scheme: schemeECDSA, hash: crypto.SHA256, size: 32},
	"ES384": {scheme: schemeECDSA, hash: crypto.SHA384, size: 48},
	"ES512": {scheme: schemeECDSA, hash: crypto.SHA512, size: 66},
	"EdDSA": {scheme: schemeEdDSA},
}

// pssVerify accepts any salt length, as RFC 7518 section 3.5 does not fix it (the signer's
// is usually the hash size).
var pssVerify = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}

// verify reports whether sig is a valid signature of signed (the JWS signing input,
// header.payload) by key, a key of the type the method's scheme needs: *rsa.PublicKey,
// *ecdsa.PublicKey or ed25519.PublicKey (keys.go parses them; the key set lookup has
// already matched key and alg). A key of another type verifies nothing.
func (m *signatureMethod) verify(signed string, sig []byte, key any) bool {
	if m.scheme == schemeEdDSA {
		pub, ok := key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return false
		}
		return ed25519.Verify(pub, []byte(signed), sig)
	}
	h := m.hash.New()
	_, _ = h.Write([]byte(signed))
	digest := h.Sum(nil)
	if m.scheme == schemeECDSA {
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || len(sig) != 2*m.size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:m.size])
		s := new(big.Int).SetBytes(sig[m.size:])
		return ecdsa.Verify(pub, digest, r, s)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return false
	}
	if m.scheme == schemePSS {
		return rsa.VerifyPSS(pub, m.hash, digest, sig, pssVerify) == nil
	}
	return rsa.VerifyPKCS1v15(pub, m.hash, digest, sig) == nil
}
