package bearer

import (
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/tokentest"
)

// Fixtures for the middleware tests beside internal/tokentest's (shared
// with package auth's tests): every clock is fixed, no test sleeps.

// newTestVerifier builds a verifier for tokentest.Secret and .Issuer at .T0,
// with edit applied to the config first.
func newTestVerifier(t testing.TB, edit func(*auth.VerifierConfig)) *auth.Verifier {
	t.Helper()
	cfg := auth.VerifierConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer, Now: func() time.Time { return tokentest.T0 }}
	if edit != nil {
		edit(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// fakeExternal stands for auth/idp: it trusts tokentest.ExternalIssuer and refuses
// every token with err.
type fakeExternal struct{ err error }

func (f *fakeExternal) Trusts(iss string) bool              { return iss == tokentest.ExternalIssuer }
func (f *fakeExternal) Verify(string) (*auth.Claims, error) { return nil, f.err }
