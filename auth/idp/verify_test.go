package idp

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
)

// Rule: a token of a trusted provider signed with any accepted algorithm
// verifies; the caller is "<provider>:<sub>", its iss stays the
// provider's, and its jti is namespaced the same way.
func TestVerifyAcceptsEachAlgorithmAndNamespacesTheCaller(t *testing.T) {
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodPS256, jwt.SigningMethodES256, jwt.SigningMethodEdDSA} {
		t.Run(m.Alg(), func(t *testing.T) {
			c := newClock()
			k := newSigner(t, "k1", m)
			tp := newTestProvider(t, k)
			s := newSet(t, c, Options{}, tp)
			got, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil))
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != "p0:alice" || got.Issuer != tp.srv.URL || got.ID != "p0:j1" || got.Scope.String() != "crm:read" {
				t.Fatalf("claims = %+v", got)
			}
			if exp, ok := got.Expires(); !ok || exp.Unix() != c.Now().Add(time.Hour).Unix() {
				t.Fatalf("exp = %v %v", exp, ok)
			}
		})
	}
}

// Rule: RFC 9068's checks hold: every token below is refused, each with
// the reason's sentinel, and none is mistaken for another provider's.
func TestVerifyRefusesWhatRFC9068Refuses(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodRS256)
	other := newSigner(t, "k1", jwt.SigningMethodRS256) // same kid, other key
	tp := newTestProvider(t, k)
	s := newSet(t, c, Options{}, tp)
	now := c.Now()
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
		tok := k.sign(t, tp.claimsFor(c, nil), nil)
		return h + "." + strings.Split(tok, ".")[1] + "."
	}
	hmac := func() string {
		// HS256 keyed with the public key's bytes: algorithm confusion.
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, tp.claimsFor(c, nil))
		tok.Header["kid"], tok.Header["typ"] = "k1", "at+jwt"
		str, _ := tok.SignedString([]byte(`{"kty":"RSA"}`))
		return str
	}
	for _, tc := range []struct {
		name  string
		token string
		want  error
		why   string
	}{
		{"wrong audience", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"aud": "https://other.example.com"}), nil), auth.ErrTokenInvalid, `another resource`},
		{"no audience", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"aud": nil}), nil), auth.ErrTokenInvalid, `missing required`},
		{"another issuer", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"iss": "https://evil.example.com"}), nil), auth.ErrTokenInvalid, `not trusted`},
		{"expired", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()}), nil), auth.ErrTokenExpired, `expired`},
		{"no exp", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"exp": nil}), nil), auth.ErrTokenInvalid, `missing required`},
		{"not yet valid", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}), nil), auth.ErrTokenNotYetValid, `not valid yet`},
		{"issued in the future", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), nil), auth.ErrTokenNotYetValid, `not valid yet`},
		{"no sub", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"sub": nil}), nil), auth.ErrTokenInvalid, `sub must`},
		{"sub with a space", k.sign(t, tp.claimsFor(c, jwt.MapClaims{"sub": "a b"}), nil), auth.ErrTokenInvalid, `sub must`},
		{"alg none", none(), auth.ErrTokenInvalid, `algorithm is not accepted`},
		{"HS256 with the public key", hmac(), auth.ErrTokenInvalid, `algorithm is not accepted`},
		{"key not in the JWKS", other.sign(t, tp.claimsFor(c, nil), nil), auth.ErrTokenInvalid, `signature does not verify`},
		{"unknown kid", k.sign(t, tp.claimsFor(c, nil), map[string]any{"kid": "k9"}), auth.ErrTokenInvalid, `not among`},
		{"alg other than the key's", signAs(t, k, jwt.SigningMethodPS256, tp.claimsFor(c, nil)), auth.ErrTokenInvalid, `verifies RS256`},
		{"jku header", k.sign(t, tp.claimsFor(c, nil), map[string]any{"jku": tp.srv.URL + "/jwks"}), auth.ErrTokenInvalid, `"jku"`},
		{"x5u header", k.sign(t, tp.claimsFor(c, nil), map[string]any{"x5u": tp.srv.URL + "/cert"}), auth.ErrTokenInvalid, `"x5u"`},
		{"jwk header", k.sign(t, tp.claimsFor(c, nil), map[string]any{"jwk": k.jwk()}), auth.ErrTokenInvalid, `"jwk"`},
		{"typ JWT (an ID token's)", k.sign(t, tp.claimsFor(c, nil), map[string]any{"typ": "JWT"}), auth.ErrTokenInvalid, `typ "JWT"`},
		{"not trusted at all", "a.b.c", auth.ErrTokenInvalid, `not trusted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.Verify(tc.token)
			if !errors.Is(err, tc.want) || c != nil || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Verify = %v, %v; want %v (%s)", c, err, tc.want, tc.why)
			}
		})
	}
}

// signAs signs with k's key under another method of the same key type.
func signAs(t *testing.T, k signer, m jwt.SigningMethod, claims jwt.MapClaims) string {
	k.method = m
	return k.sign(t, claims, nil)
}

// Rule: typ "JWT" is accepted only from a provider that allows it; no
// typ at all is accepted (the audience check still keeps ID tokens out).
func TestTypJWTNeedsTheProvidersConsent(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	tp := newTestProvider(t, k)
	s := newSetOf(t, c, Options{}, Provider{Name: "corp", Issuer: tp.srv.URL, AllowTypJWT: true})
	for _, typ := range []any{"JWT", nil, "application/at+jwt"} {
		if _, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), map[string]any{"typ": typ})); err != nil {
			t.Errorf("typ %v: %v", typ, err)
		}
	}
	if _, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), map[string]any{"typ": "dpop+jwt"})); err == nil {
		t.Error("typ dpop+jwt accepted")
	}
}

// Rule: a provider's own audience replaces the server's resources.
func TestAProvidersAudienceIsRequired(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	tp := newTestProvider(t, k)
	s := newSetOf(t, c, Options{}, Provider{Name: "corp", Issuer: tp.srv.URL, Audience: "api://mcp"})
	if _, err := s.Verify(k.sign(t, tp.claimsFor(c, jwt.MapClaims{"aud": []string{"x", "api://mcp"}}), nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil)); !errors.Is(err, auth.ErrTokenInvalid) {
		t.Fatalf("the resource URL was accepted in place of the provider's audience: %v", err)
	}
}

// Rule: without a usable jti the token's digest keys it, still under the
// provider's name.
func TestATokenWithoutJTIIsKeyedByItsDigest(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	tp := newTestProvider(t, k)
	s := newSet(t, c, Options{}, tp)
	got, err := s.Verify(k.sign(t, tp.claimsFor(c, jwt.MapClaims{"jti": nil}), nil))
	if err != nil || !strings.HasPrefix(got.ID, "p0:sha256-") {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}
