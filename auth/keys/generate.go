package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
)

// GenerateRSABits is the size of generated RSA keys.
const GenerateRSABits = 3072

// Generate makes a fresh asymmetric signing key for alg (ES256, EdDSA or
// RS256). HMAC secrets are made elsewhere (mcpauth secret generate).
func Generate(alg string) (*Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, GenerateRSABits)
	default:
		return nil, fmt.Errorf("%w %q: generate one of ES256, EdDSA, RS256", ErrUnsupportedAlg, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return NewSigning(alg, priv)
}

// WriteNewFile writes the key's PKCS#8 PEM to path with mode 0600,
// refusing to replace a file that exists.
func (k *Key) WriteNewFile(path string) error {
	pemBytes, err := k.PEM()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
