package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotAKey reports PEM input that holds no usable key.
var ErrNotAKey = errors.New("no usable key")

// maxPEMBytes bounds a key file: an RSA 8192-bit PKCS#8 key is about 6.5 KB.
const maxPEMBytes = 64 << 10

// ParsePrivatePEM reads the one private key in PEM data: PKCS#8
// ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY", after an optional "EC
// PARAMETERS" block as openssl writes it) or PKCS#1 ("RSA PRIVATE KEY").
// Encrypted keys are refused: mcpauth has no passphrase to open them.
func ParsePrivatePEM(data []byte) (crypto.Signer, error) {
	var found crypto.Signer
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "EC PARAMETERS" {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: more than one key block; keep one key per file", ErrNotAKey)
		}
		s, err := parsePrivateBlock(b)
		if err != nil {
			return nil, err
		}
		found = s
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no PEM private key block (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", ErrNotAKey)
	}
	return found, nil
}

func parsePrivateBlock(b *pem.Block) (crypto.Signer, error) {
	if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("%w: the key is encrypted; give an unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)", ErrNotAKey)
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("%w: a %q PEM block is not a private key", ErrNotAKey, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s block: %v", ErrNotAKey, b.Type, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T cannot sign", ErrNotAKey, k)
	}
	return s, nil
}

// ParsePublicPEM reads the one key in PEM data as a public key: a private
// key in any form ParsePrivatePEM reads, or a PKIX "PUBLIC KEY".
func ParsePublicPEM(data []byte) (crypto.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: no PEM block (expected PUBLIC KEY, or a private key)", ErrNotAKey)
	}
	if b.Type == "PUBLIC KEY" {
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PUBLIC KEY block: %v", ErrNotAKey, err)
		}
		return pub, nil
	}
	priv, err := ParsePrivatePEM(data)
	if err != nil {
		return nil, err
	}
	return priv.Public(), nil
}

// LoadSigningFile reads a PEM private key file as alg's signing key. The
// error names the file and, for a key of another type, what alg needs.
func LoadSigningFile(path, alg string) (*Key, error) {
	data, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	priv, err := ParsePrivatePEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, err := NewSigning(alg, priv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadVerifyingFile reads a PEM file (a private or a public key) as a
// verify-only key; its algorithm follows from its type (AlgOf).
func LoadVerifyingFile(path string) (*Key, error) {
	data, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	alg, err := AlgOf(pub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, err := NewVerifying(alg, pub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("%s: %w: larger than %d KiB", path, ErrNotAKey, maxPEMBytes>>10)
	}
	return data, nil
}

// PEM is the key's private half as PKCS#8 PEM ("PRIVATE KEY"); an error
// for HMAC and verify-only keys.
func (k *Key) PEM() ([]byte, error) {
	if k.Symmetric() || !k.CanSign() {
		return nil, errors.New("only an asymmetric signing key has a private key to write")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.signing)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
