package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// The signing algorithms mcpauth signs and verifies with (RFC 7518 names;
// EdDSA is Ed25519).
const (
	HS256 = "HS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
	RS256 = "RS256"
)

// Algorithms are the algorithms a Key may have, HS256 first.
var Algorithms = []string{HS256, ES256, EdDSA, RS256}

// Asymmetric are the algorithms of keys that have a public half.
var Asymmetric = []string{ES256, EdDSA, RS256}

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// MinSecretLen is the shortest HMAC secret accepted, in bytes.
const MinSecretLen = 32

// Errors, testable with errors.Is; callers add which setting or file.
var (
	ErrUnsupportedAlg = errors.New("unsupported signing algorithm")
	ErrKeyMismatch    = errors.New("key does not match the algorithm")
	ErrWeakKey        = errors.New("key is too weak")
)

// Key is one signing or verifying key. Its algorithm is fixed when it is
// made; a verifier takes the algorithm from here, never from a token.
type Key struct {
	id, alg string
	// signing is the HMAC secret or the private key; nil for a key that
	// only verifies.
	signing any
	// verifying is the HMAC secret or the public key.
	verifying any
}

// ID is the key's kid.
func (k *Key) ID() string { return k.id }

// Alg is the key's algorithm, one of Algorithms.
func (k *Key) Alg() string { return k.alg }

// Symmetric reports whether the key is an HMAC secret (never published).
func (k *Key) Symmetric() bool { return k.alg == HS256 }

// CanSign reports whether the key holds its signing material.
func (k *Key) CanSign() bool { return k.signing != nil }

// Method is the golang-jwt signing method of the key's algorithm.
func (k *Key) Method() jwt.SigningMethod { return method(k.alg) }

// SigningKey is what golang-jwt signs with: the secret or the private
// key; nil for a verify-only key.
func (k *Key) SigningKey() any { return k.signing }

// VerifyingKey is what golang-jwt verifies with: the secret or the public
// key.
func (k *Key) VerifyingKey() any { return k.verifying }

// Public is the public key of an asymmetric key; nil for HMAC.
func (k *Key) Public() crypto.PublicKey {
	if k.Symmetric() {
		return nil
	}
	return k.verifying
}

// VerifyOnly is the key without its signing material.
func (k *Key) VerifyOnly() *Key {
	return &Key{id: k.id, alg: k.alg, verifying: k.verifying}
}

func method(alg string) jwt.SigningMethod {
	switch alg {
	case HS256:
		return jwt.SigningMethodHS256
	case ES256:
		return jwt.SigningMethodES256
	case EdDSA:
		return jwt.SigningMethodEdDSA
	case RS256:
		return jwt.SigningMethodRS256
	}
	return nil
}

// CheckAlg reports whether alg is one of Algorithms (spelled exactly).
func CheckAlg(alg string) error {
	if !slices.Contains(Algorithms, alg) {
		return fmt.Errorf("%w %q (one of HS256, ES256, EdDSA, RS256)", ErrUnsupportedAlg, alg)
	}
	return nil
}

// hmacKIDPrefix separates the HS256 kid's hash from every other use of
// SHA-256 over the secret.
const hmacKIDPrefix = "mcpauth/hs256-kid/v1\x00"

// HMACKeyID is the kid of an HS256 secret: "hs-" and the first 128 bits of
// SHA-256 over a fixed prefix and the secret, base64url. One-way, so
// publishing it in token headers reveals nothing usable about a secret of
// at least 32 random bytes (and for a guessable secret it adds nothing:
// every token's HMAC already lets anyone test guesses offline); stable,
// so every replica with the secret names it alike.
func HMACKeyID(secret []byte) string {
	h := sha256.New()
	h.Write([]byte(hmacKIDPrefix))
	h.Write(secret)
	return "hs-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// NewHMAC is the HS256 key of secret (copied), named by HMACKeyID.
func NewHMAC(secret []byte) (*Key, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("%w: an HMAC secret must be at least %d bytes", ErrWeakKey, MinSecretLen)
	}
	s := slices.Clone(secret)
	return &Key{id: HMACKeyID(s), alg: HS256, signing: s, verifying: s}, nil
}

// NewSigning is the key of a private key for alg, named by its
// thumbprint. The key's type must be alg's: a P-256 ECDSA key for ES256,
// Ed25519 for EdDSA, RSA of at least MinRSABits for RS256.
func NewSigning(alg string, priv crypto.Signer) (*Key, error) {
	if priv == nil {
		return nil, errors.New("no private key")
	}
	k, err := NewVerifying(alg, priv.Public())
	if err != nil {
		return nil, err
	}
	k.signing = priv
	return k, nil
}

// NewVerifying is a verify-only key of a public key for alg, named by its
// thumbprint; the same checks as NewSigning.
func NewVerifying(alg string, pub crypto.PublicKey) (*Key, error) {
	if err := CheckAlg(alg); err != nil {
		return nil, err
	}
	want, err := AlgOf(pub)
	if err != nil {
		return nil, err
	}
	if want != alg {
		return nil, fmt.Errorf("%w: %s needs %s, and this is %s", ErrKeyMismatch, alg, describeAlg(alg), describeKey(pub))
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	return &Key{id: kid, alg: alg, verifying: pub}, nil
}

// AlgOf is the algorithm mcpauth uses with a public key of this type; an
// error for a type or size it does not use.
func AlgOf(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: %s (ES256 needs P-256)", ErrKeyMismatch, describeKey(pub))
		}
		return ES256, nil
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: malformed Ed25519 key", ErrKeyMismatch)
		}
		return EdDSA, nil
	case *rsa.PublicKey:
		if p.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("%w: a %d-bit RSA key (RS256 needs at least %d bits)", ErrWeakKey, p.N.BitLen(), MinRSABits)
		}
		return RS256, nil
	}
	return "", fmt.Errorf("%w: %s is not a key type mcpauth signs with (ECDSA P-256, Ed25519, RSA)", ErrKeyMismatch, describeKey(pub))
}

func describeAlg(alg string) string {
	switch alg {
	case ES256:
		return "an ECDSA P-256 key"
	case EdDSA:
		return "an Ed25519 key"
	case RS256:
		return fmt.Sprintf("an RSA key (at least %d bits)", MinRSABits)
	}
	return "an HMAC secret"
}

func describeKey(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return "an ECDSA " + p.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	case *rsa.PublicKey:
		return fmt.Sprintf("a %d-bit RSA key", p.N.BitLen())
	}
	return fmt.Sprintf("a %T", pub)
}

// Thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of a
// public key: its kid.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
