package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MinSecretLen is the shortest accepted HS256 secret, in bytes.
const MinSecretLen = 32

// ErrWeakSecret reports a secret that must not be used.
var ErrWeakSecret = errors.New("weak secret")

// weakSecrets are well-known placeholder secrets that appear in tutorials.
var weakSecrets = []string{
	"secret", "changeme", "change-me", "your-256-bit-secret", "your-secret-key",
	"your_jwt_secret", "jwt-secret", "password", "mysecret", "supersecret",
}

// CheckSecret refuses secrets that are short, made of one repeated byte, or
// contain a well-known placeholder. The error never contains the secret.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("%w: must be at least %d bytes, got %d", ErrWeakSecret, MinSecretLen, len(secret))
	}
	if bytes.Count(secret, secret[:1]) == len(secret) {
		return fmt.Errorf("%w: one character repeated", ErrWeakSecret)
	}
	lower := strings.ToLower(string(secret))
	for _, w := range weakSecrets {
		if strings.Contains(lower, w) && len(lower) < len(w)+24 {
			return fmt.Errorf("%w: it is a well-known placeholder", ErrWeakSecret)
		}
	}
	return nil
}

// GenerateSecret returns 32 random bytes as 64 hex characters.
func GenerateSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
