// Package tokentest holds the token fixtures the tests of auth and
// auth/bearer share: the test issuer, secrets and clock, the claims of a
// token the test verifier accepts, signing, and the check that nothing
// secret leaked into a text. It imports no mcpauth package, so auth's
// own (internal) tests can use it.
package tokentest

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The test issuer, a trusted external issuer and a token id.
const (
	Issuer         = "https://mcp.example.test"
	ExternalIssuer = "https://idp.example.test"
	JTI            = "0123456789abcdef0123456789abcdef"
)

var (
	// Secret is the test verifier's HS256 secret; ForeignSecret another
	// one (another server's, or a trusted provider's in tests).
	Secret        = []byte("k3v9Qw7TzP1xR4mN8bY2cL6hJ0fD5sGa")
	ForeignSecret = []byte("Zx8Wq2Lr5Tn9Pk3Mv7Bc1Hd6Fg4Js0Ya")
	// T0 is the fixed "now" of every test.
	T0 = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
)

// BaseClaims are those of a token the test verifier accepts at T0.
func BaseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   Issuer,
		"sub":   "my-app",
		"iat":   T0.Unix(),
		"nbf":   T0.Unix(),
		"exp":   T0.Add(time.Hour).Unix(),
		"jti":   JTI,
		"scope": "read write",
	}
}

// ClaimsWith returns BaseClaims modified by edit (nil: unchanged).
func ClaimsWith(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := BaseClaims()
	if edit != nil {
		edit(c)
	}
	return c
}

// Sign signs claims with method and key.
func Sign(t testing.TB, method jwt.SigningMethod, claims jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign test token: %v", err)
	}
	return s
}

// HS256 signs claims with HS256 and Secret.
func HS256(t testing.TB, claims jwt.Claims) string {
	t.Helper()
	return Sign(t, jwt.SigningMethodHS256, claims, Secret)
}

// ExternalToken is a token of ExternalIssuer (BaseClaims edited by edit),
// signed with ForeignSecret.
func ExternalToken(t testing.TB, edit func(jwt.MapClaims)) string {
	t.Helper()
	return Sign(t, jwt.SigningMethodHS256, ClaimsWith(func(c jwt.MapClaims) {
		c["iss"] = ExternalIssuer
		if edit != nil {
			edit(c)
		}
	}), ForeignSecret)
}

// AssertNoLeak fails when text contains the token, its signature or a
// secret.
func AssertNoLeak(t testing.TB, where, text, token string) {
	t.Helper()
	if token != "" && strings.Contains(text, token) {
		t.Errorf("%s contains the token: %q", where, text)
	}
	// A signature segment is secret-derived material: it must not leak
	// either (only checked when long enough to be meaningful).
	if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[2]) >= 16 && strings.Contains(text, parts[2]) {
		t.Errorf("%s contains the token signature: %q", where, text)
	}
	for _, s := range [][]byte{Secret, ForeignSecret} {
		if strings.Contains(text, string(s)) {
			t.Errorf("%s contains a secret: %q", where, text)
		}
	}
}
