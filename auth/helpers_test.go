package auth

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

// Fixtures for the auth tests beside internal/tokentest's (shared with
// auth/bearer's tests). Every clock is fixed: no test depends on the wall
// clock or sleeps.

const testAudience = "mcp-api"

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// b64JSON encodes v as a base64url (unpadded) JSON segment.
func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal segment: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeSegment decodes a base64url JSON segment into a generic map.
func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode segment: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal segment: %v", err)
	}
	return m
}

// newTestVerifier builds a verifier for tokentest.Secret and .Issuer at .T0,
// with edit applied to the config first.
func newTestVerifier(t testing.TB, edit func(*VerifierConfig)) *Verifier {
	t.Helper()
	cfg := VerifierConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer, Now: fixedClock(tokentest.T0)}
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}
