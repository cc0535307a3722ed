package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

func TestCheckSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		weak   bool
	}{
		{"empty secret is refused", "", true},
		{"short secret is refused", "short", true},
		{"31 bytes is refused", "Zx8Wq2Lr5Tn9Pk3Mv7Bc1Hd6Fg4Js0Y", true},
		{"bare placeholder secret is refused (too short)", "secret", true},
		{"bare your-256-bit-secret is refused (too short)", "your-256-bit-secret", true},
		{"32 times the same letter is refused", strings.Repeat("a", 32), true},
		{"64 zeros are refused", strings.Repeat("0", 64), true},
		{"32 NUL bytes are refused", strings.Repeat("\x00", 32), true},
		{"your-256-bit-secret padded to 32 bytes is refused", "your-256-bit-secret-0123456789ab", true},
		{"your-256-bit-secret in upper case padded is refused", "YOUR-256-BIT-SECRET-0123456789AB", true},
		{"your-256-bit-secret with padding on both sides is refused", "xxxx-your-256-bit-secret-xxxxxxxxxxxxxxxxx", true},
		{"your-secret-key padded is refused", "your-secret-key-0123456789abcdefghij", true},
		{"your_jwt_secret padded is refused", "your_jwt_secret_0123456789abcdefgh", true},
		{"jwt-secret padded to 33 bytes is refused", "jwt-secret-0123456789abcdefghijkl", true},
		{"supersecret padded is refused", "supersecret-0123456789abcdefghijk", true},
		{"change-me padded to 32 bytes is refused", "change-me-0123456789abcdefghijkl", true},
		{"64 random hex characters are accepted", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", false},
		{"32 mixed characters are accepted", string(tokentest.Secret), false},
		{"placeholder inside a long random secret is accepted", "your-256-bit-secret" + "9f86d081884c7d659a2feaa0c55a", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSecret([]byte(tc.secret))
			if !tc.weak {
				if err != nil {
					t.Fatalf("CheckSecret(%d bytes) = %v, want nil", len(tc.secret), err)
				}
				return
			}
			if !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("CheckSecret(%q) = %v, want ErrWeakSecret", tc.secret, err)
			}
			// (Short inputs like "secret" are skipped: the sentinel
			// text "weak secret" contains them.)
			if len(tc.secret) >= 8 && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error contains the secret: %q", err)
			}
		})
	}
}

// The short placeholders ("secret", "password", …) cannot make a 32-byte
// secret on their own: repeated, the repetition rule refuses them. Inside
// a longer secret the placeholder rule does: what is left once they are
// removed must still be 24 characters. filler is random-looking, so the
// same secret with the placeholders replaced is accepted.
func TestCheckSecretRefusesShortPlaceholders(t *testing.T) {
	const filler = "0123456789abcdefghijklmnop"
	for _, w := range []string{"password", "secret", "changeme", "mysecret"} {
		t.Run(w+" repeated to 32 bytes is refused as a pattern", func(t *testing.T) {
			s := strings.Repeat(w, 32/len(w)+1)[:32]
			if err := CheckSecret([]byte(s)); !errors.Is(err, ErrWeakSecret) || !strings.Contains(err.Error(), "pattern repeated") {
				t.Fatalf("CheckSecret(%q) = %v, want ErrWeakSecret for a repeated pattern", s, err)
			}
		})
		t.Run(w+" twice around random characters is refused as a placeholder", func(t *testing.T) {
			s := w + filler[:32-2*len(w)] + w
			if err := CheckSecret([]byte(s)); !errors.Is(err, ErrWeakSecret) || !strings.Contains(err.Error(), "well-known placeholder") {
				t.Fatalf("CheckSecret(%q) = %v, want ErrWeakSecret for a placeholder", s, err)
			}
			other := "QRSTUVWXYZ!#$%&*"[:len(w)] // no placeholder, nothing repeated
			if s := other + filler[:32-2*len(w)] + strings.ToLower(other); CheckSecret([]byte(s)) != nil {
				t.Fatalf("CheckSecret(%q) = %v, want nil: the placeholder, not the shape, is refused", s, CheckSecret([]byte(s)))
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	a, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{a, b} {
		if !hex64.MatchString(s) {
			t.Errorf("GenerateSecret() = %q, want 64 lower-case hex chars", s)
		}
		if err := CheckSecret([]byte(s)); err != nil {
			t.Errorf("CheckSecret(GenerateSecret()) = %v, want nil", err)
		}
	}
	if a == b {
		t.Errorf("two GenerateSecret calls returned the same secret")
	}
}
