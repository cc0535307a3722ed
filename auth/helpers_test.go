package auth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Shared fixtures for the auth tests. Every clock is fixed: no test
// depends on the wall clock or sleeps.

const (
	testIssuer   = "https://mcp.example.test"
	testAudience = "mcp-api"
	testJTI      = "0123456789abcdef0123456789abcdef"
)

var (
	testSecret    = []byte("k3v9Qw7TzP1xR4mN8bY2cL6hJ0fD5sGa")
	foreignSecret = []byte("Zx8Wq2Lr5Tn9Pk3Mv7Bc1Hd6Fg4Js0Ya")
	// t0 is the fixed "now" of every test.
	t0 = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// baseClaims returns the claims of a token that the default test verifier
// accepts at t0.
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   testIssuer,
		"sub":   "my-app",
		"iat":   t0.Unix(),
		"nbf":   t0.Unix(),
		"exp":   t0.Add(time.Hour).Unix(),
		"jti":   testJTI,
		"scope": "read write",
	}
}

// claimsWith returns baseClaims modified by edit.
func claimsWith(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := baseClaims()
	if edit != nil {
		edit(c)
	}
	return c
}

// signToken signs claims with method and key.
func signToken(t *testing.T, method jwt.SigningMethod, claims jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign test token: %v", err)
	}
	return s
}

// hs256 signs claims with HS256 and the test secret.
func hs256(t *testing.T, claims jwt.Claims) string {
	t.Helper()
	return signToken(t, jwt.SigningMethodHS256, claims, testSecret)
}

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

// newTestVerifier builds a verifier for testSecret/testIssuer at t0,
// with edit applied to the config first.
func newTestVerifier(t testing.TB, edit func(*VerifierConfig)) *Verifier {
	t.Helper()
	cfg := VerifierConfig{Secret: testSecret, Issuer: testIssuer, Now: fixedClock(t0)}
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// assertNoLeak fails when text contains the token or a secret.
func assertNoLeak(t *testing.T, where, text, token string) {
	t.Helper()
	if token != "" && strings.Contains(text, token) {
		t.Errorf("%s contains the token: %q", where, text)
	}
	// A signature segment is secret-derived material: it must not leak
	// either (only checked when long enough to be meaningful).
	if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[2]) >= 16 && strings.Contains(text, parts[2]) {
		t.Errorf("%s contains the token signature: %q", where, text)
	}
	for _, s := range [][]byte{testSecret, foreignSecret} {
		if strings.Contains(text, string(s)) {
			t.Errorf("%s contains a secret: %q", where, text)
		}
	}
}
