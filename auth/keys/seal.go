package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// MinKeyEncryptionSecretLen is the shortest key-encryption secret
// accepted, in bytes.
const MinKeyEncryptionSecretLen = 32

// sealVersion is the first byte of every sealed key: the format (and the
// derivation below) it was sealed with.
const sealVersion = 1

// hkdfInfo separates the sealing key from every other use of the secret.
const hkdfInfo = "mcpauth/key-encryption/v1"

// ErrUnseal is returned when sealed material does not open: another
// key-encryption secret, or a record that was altered or moved to
// another key's row.
var ErrUnseal = errors.New("the sealed key does not open with this key-encryption secret (wrong MCP_KEY_ENCRYPTION_SECRET, or the record was altered)")

// Sealer encrypts signing keys at rest, so the registry can share them
// with every replica without holding them in the clear: AES-256-GCM under
// a key derived with HKDF-SHA256 from the key-encryption secret. The kid
// and algorithm are authenticated with each key, so sealed material
// cannot be moved to another key's record.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer is the sealer of secret (at least
// MinKeyEncryptionSecretLen bytes).
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < MinKeyEncryptionSecretLen {
		return nil, fmt.Errorf("%w: a key-encryption secret must be at least %d bytes", ErrWeakKey, MinKeyEncryptionSecretLen)
	}
	k, err := hkdf.Key(sha256.New, secret, nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive the key-encryption key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

func sealAAD(kid, alg string) []byte {
	return []byte("mcpauth/sealed-key\x00" + kid + "\x00" + alg)
}

// Seal encrypts k's signing material (the HMAC secret, or the private
// key as PKCS#8): version byte, nonce, ciphertext.
func (s *Sealer) Seal(k *Key) ([]byte, error) {
	if !k.CanSign() {
		return nil, errors.New("seal: the key has no signing material")
	}
	var plain []byte
	if k.Symmetric() {
		plain = k.signing.([]byte)
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(k.signing)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		plain = der
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return s.aead.Seal(out, out[1:], plain, sealAAD(k.id, k.alg)), nil
}

// Open decrypts sealed material recorded for kid and alg and makes the
// key, checking that it is the key kid names.
func (s *Sealer) Open(kid, alg string, sealed []byte) (*Key, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("key %s: %w", kid, ErrUnseal)
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], sealAAD(kid, alg))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, ErrUnseal)
	}
	var k *Key
	if alg == HS256 {
		k, err = NewHMAC(plain)
	} else {
		var priv any
		if priv, err = x509.ParsePKCS8PrivateKey(plain); err == nil {
			signer, ok := priv.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("key %s: the sealed key is not a signing key", kid)
			}
			k, err = NewSigning(alg, signer)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, err)
	}
	if k.id != kid {
		return nil, fmt.Errorf("key %s: the sealed key is another key (%s)", kid, k.id)
	}
	return k, nil
}

// GenerateHMAC is a new HS256 key of 32 random bytes.
func GenerateHMAC() (*Key, error) {
	b := make([]byte, MinSecretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return NewHMAC(b)
}
