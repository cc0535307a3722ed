package bearer

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
)

// Fixtures for the middleware tests, as in package auth's: every clock is
// fixed, no test sleeps.

const (
	testIssuer     = "https://mcp.example.test"
	externalIssuer = "https://idp.example.test"
	testJTI        = "0123456789abcdef0123456789abcdef"
)

var (
	testSecret    = []byte("k3v9Qw7TzP1xR4mN8bY2cL6hJ0fD5sGa")
	foreignSecret = []byte("Zx8Wq2Lr5Tn9Pk3Mv7Bc1Hd6Fg4Js0Ya")
	// t0 is the fixed "now" of every test.
	t0 = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
)

// baseClaims are those of a token the test verifier accepts at t0.
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "my-app", "iat": t0.Unix(), "nbf": t0.Unix(),
		"exp": t0.Add(time.Hour).Unix(), "jti": testJTI, "scope": "read write",
	}
}

// claimsWith returns baseClaims modified by edit.
func claimsWith(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := baseClaims()
	edit(c)
	return c
}

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

// newTestVerifier builds a verifier for testSecret/testIssuer at t0,
// with edit applied to the config first.
func newTestVerifier(t testing.TB, edit func(*auth.VerifierConfig)) *auth.Verifier {
	t.Helper()
	cfg := auth.VerifierConfig{Secret: testSecret, Issuer: testIssuer, Now: func() time.Time { return t0 }}
	if edit != nil {
		edit(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// fakeExternal stands for auth/idp: it trusts externalIssuer and refuses
// every token with err.
type fakeExternal struct{ err error }

func (f *fakeExternal) Trusts(iss string) bool              { return iss == externalIssuer }
func (f *fakeExternal) Verify(string) (*auth.Claims, error) { return nil, f.err }

func externalToken(t *testing.T, edit func(jwt.MapClaims)) string {
	return signToken(t, jwt.SigningMethodHS256, claimsWith(func(c jwt.MapClaims) {
		c["iss"] = externalIssuer
		if edit != nil {
			edit(c)
		}
	}), foreignSecret)
}

// assertNoLeak fails when text contains the token, its signature or a
// secret.
func assertNoLeak(t *testing.T, where, text, token string) {
	t.Helper()
	if token != "" && strings.Contains(text, token) {
		t.Errorf("%s contains the token: %q", where, text)
	}
	if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[2]) >= 16 && strings.Contains(text, parts[2]) {
		t.Errorf("%s contains the token signature: %q", where, text)
	}
	for _, s := range [][]byte{testSecret, foreignSecret} {
		if strings.Contains(text, string(s)) {
			t.Errorf("%s contains a secret: %q", where, text)
		}
	}
}
