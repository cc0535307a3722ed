package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
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
		{"32 mixed characters are accepted", string(testSecret), false},
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

// Known gap (see report): the placeholders "secret", "changeme",
// "password" and "mysecret" can never be detected, because a secret must
// already be >= 32 bytes and the placeholder rule only fires when
// len(secret) < len(placeholder)+24 <= 32. These tests assert the
// documented intent and skip while the gap exists.
func TestCheckSecretRefusesRepeatedShortPlaceholders(t *testing.T) {
	for _, w := range []string{"password", "secret", "changeme", "mysecret"} {
		s := strings.Repeat(w, 32/len(w)+1)[:32]
		t.Run("placeholder "+w+" repeated to 32 bytes is refused", func(t *testing.T) {
			err := CheckSecret([]byte(s))
			if err == nil {
				t.Skipf("KNOWN BUG secret.go CheckSecret: %q is accepted; the %q entry of weakSecrets is unreachable", s, w)
			}
			if !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("CheckSecret = %v, want ErrWeakSecret", err)
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
