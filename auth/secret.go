package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/mcpauth/mcpauth/auth/keys"
)

// MinSecretLen is the shortest accepted HS256 secret, in bytes.
const MinSecretLen = keys.MinSecretLen

// ErrWeakSecret reports a secret that must not be used.
var ErrWeakSecret = errors.New("weak secret")

// weakSecrets are well-known placeholder secrets that appear in tutorials,
// longest first so that removing them leaves no fragment of a longer one.
var weakSecrets = []string{
	"your-256-bit-secret", "your-secret-key", "your_jwt_secret", "supersecret",
	"jwt-secret", "change-me", "changeme", "password", "mysecret", "secret",
}

// minSecretEntropyChars is how many characters must remain once known
// placeholders are removed from a secret.
const minSecretEntropyChars = 24

// CheckSecret refuses secrets that are short, a short pattern repeated
// ("aaaa…", "abab…", "passwordpassword…"), made of very few distinct
// characters, or mostly a well-known placeholder. The error never contains
// the secret.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("%w: must be at least %d bytes, got %d", ErrWeakSecret, MinSecretLen, len(secret))
	}
	if p := period(secret); p <= len(secret)/2 {
		return fmt.Errorf("%w: a %d-character pattern repeated", ErrWeakSecret, p)
	}
	if distinct := distinctBytes(secret); distinct < 8 {
		return fmt.Errorf("%w: only %d distinct characters", ErrWeakSecret, distinct)
	}
	rest := strings.ToLower(string(secret))
	for _, w := range weakSecrets {
		rest = strings.ReplaceAll(rest, w, "")
	}
	if len(rest) < minSecretEntropyChars || distinctBytes([]byte(rest)) < 8 {
		return fmt.Errorf("%w: it is a well-known placeholder", ErrWeakSecret)
	}
	return nil
}

// period returns the length of the shortest pattern whose repetition
// (possibly truncated) makes up b.
func period(b []byte) int {
	for p := 1; p < len(b); p++ {
		if bytes.Equal(b[p:], b[:len(b)-p]) {
			return p
		}
	}
	return len(b)
}

// GenerateSecret returns 32 random bytes as 64 hex characters.
func GenerateSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}
