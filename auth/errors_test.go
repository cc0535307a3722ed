package auth

import (
	"errors"
	"fmt"
	"testing"
	"unicode"
)

func TestMessageChoosesTheDocumentsWordsForEachError(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{ErrTokenMissing, "Authentication required"},
		{ErrTokenExpired, "Token has expired"},
		{ErrTokenNotYetValid, "Token is not valid yet"},
		{ErrTokenRevoked, "Token has been revoked"},
		{ErrTokenInvalid, "Invalid token"},
		{ErrRevocationStale, "Revocation list is stale; the server cannot check tokens right now, retry shortly"},
		{ErrIssuerUnavailable, "The token's identity provider cannot be reached to check it; retry shortly"},
		{Refuse(ErrTokenInvalid, "missing %s claim", "sub"), "Invalid token: missing sub claim"},
		{Refuse(ErrTokenMissing, "use the Bearer scheme"), "Authentication required: use the Bearer scheme"},
		{fmt.Errorf("stdio session ended: %w", ErrTokenRevoked), "Token has been revoked"},
		{fmt.Errorf("upstream: %w", Refuse(ErrIssuerUnavailable, "no keys")), "The token's identity provider cannot be reached to check it; retry shortly: no keys"},
		{ErrUnknownScope, "unknown scope"},
		{nil, ""},
	}
	for _, c := range cases {
		if got := Message(c.err); got != c.want {
			t.Errorf("Message(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestRefusalsMatchTheirSentinelAndReadAsGoErrors(t *testing.T) {
	err := Refuse(ErrTokenInvalid, "wrong audience")
	if !errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) {
		t.Fatalf("errors.Is on %v does not match its sentinel alone", err)
	}
	if got := err.Error(); got != "invalid token: wrong audience" {
		t.Fatalf("Error() = %q", got)
	}
	for _, w := range clientWords {
		if r := []rune(w.err.Error())[0]; !unicode.IsLower(r) {
			t.Errorf("sentinel %q is not lower-case Go style", w.err)
		}
	}
}
