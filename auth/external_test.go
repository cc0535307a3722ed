package auth

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

// fakeExternal stands for auth/idp: it trusts tokentest.ExternalIssuer, verifies
// with tokentest.ForeignSecret and namespaces the caller as auth/idp does.
type fakeExternal struct {
	calls atomic.Int32
	err   error
}

func (f *fakeExternal) Trusts(iss string) bool { return iss == tokentest.ExternalIssuer }

func (f *fakeExternal) Verify(token string) (*Claims, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	c := new(Claims)
	if _, err := jwt.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return tokentest.ForeignSecret, nil },
		jwt.WithTimeFunc(fixedClock(tokentest.T0))); err != nil {
		return nil, ErrTokenInvalid
	}
	c.Subject, c.ID = "corp:"+c.Subject, "corp:"+c.ID
	return c, nil
}

// Rule: a token whose iss names a trusted provider is verified by it,
// once (then the cache answers), and MCP_ALLOWED_CLIENTS, which lists
// local client ids, does not lock its callers out.
func TestExternalTokensAreVerifiedByTheirProviderAndCached(t *testing.T) {
	x := &fakeExternal{}
	v := newTestVerifier(t, func(c *VerifierConfig) { c.External, c.AllowedClients = x, []string{"other-app"} })
	tok := tokentest.ExternalToken(t, nil)
	for range 3 {
		c, err := v.Verify(tok)
		if err != nil || c.Subject != "corp:my-app" || c.Issuer != tokentest.ExternalIssuer {
			t.Fatalf("Verify = %+v, %v", c, err)
		}
	}
	if n := x.calls.Load(); n != 1 {
		t.Fatalf("provider asked %d times", n)
	}
	// A local token of a client outside the list is still refused.
	if _, err := v.Verify(tokentest.HS256(t, tokentest.BaseClaims())); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("local token outside the allowed clients: %v", err)
	}
}

// Rule: only the trusted provider's tokens reach it: this server's own
// issuer and unknown issuers take the full path and its errors.
func TestOnlyTrustedIssuersReachTheProvider(t *testing.T) {
	x := &fakeExternal{}
	v := newTestVerifier(t, func(c *VerifierConfig) { c.External = x })
	if _, err := v.Verify(tokentest.HS256(t, tokentest.BaseClaims())); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["iss"] = "https://other.example.test" }))); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("unknown issuer: %v", err)
	}
	if n := x.calls.Load(); n != 0 {
		t.Fatalf("provider asked %d times", n)
	}
}

// Rule: the revocation set keys external tokens by their namespaced jti:
// revoking a local jti never refuses an external token that happens to
// carry the same jti, and the external one can be revoked by its own.
func TestExternalJTIsCannotCollideWithLocalOnes(t *testing.T) {
	rs := NewRevocationSet()
	v := newTestVerifier(t, func(c *VerifierConfig) { c.External, c.Revoked = &fakeExternal{}, rs })
	tok := tokentest.ExternalToken(t, nil)
	rs.Add(map[string]time.Time{tokentest.JTI: tokentest.T0.Add(time.Hour)}) // the local token with the same jti
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("external token refused by a local revocation: %v", err)
	}
	rs.Add(map[string]time.Time{"corp:" + tokentest.JTI: tokentest.T0.Add(time.Hour)})
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked external jti: %v", err)
	}
}

// Rule: external tokens get the same one-meaning checks as local ones
// (here: "EXP" beside "exp").
func TestExternalTokensGetTheMemberChecks(t *testing.T) {
	v := newTestVerifier(t, func(c *VerifierConfig) { c.External = &fakeExternal{} })
	tok := tokentest.ExternalToken(t, func(c jwt.MapClaims) { c["EXP"] = 1 })
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "lower case") {
		t.Fatalf("Verify = %v", err)
	}
}

// Rule: with providers configured, a token of this server's own secret
// cannot spell a provider's caller ("corp:alice"), whichever path
// verifies it.
func TestLocalTokensCannotTakeAProvidersNamespace(t *testing.T) {
	v := newTestVerifier(t, func(c *VerifierConfig) { c.External = &fakeExternal{} })
	for _, tok := range []string{
		tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["sub"] = "corp:alice" })),
		tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["sub"] = "corp:alice"; c["scope"] = []string{"a"} })),
	} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "':'") {
			t.Fatalf("Verify = %v", err)
		}
	}
	if _, err := newTestVerifier(t, nil).Verify(tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["sub"] = "corp:alice" }))); err != nil {
		t.Fatalf("without providers nothing changes: %v", err)
	}
}
