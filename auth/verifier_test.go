package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  VerifierConfig
	}{
		{"secret shorter than 32 bytes is refused", VerifierConfig{Secret: tokentest.Secret[:31], Issuer: tokentest.Issuer}},
		{"nil secret is refused", VerifierConfig{Issuer: tokentest.Issuer}},
		{"empty issuer is refused", VerifierConfig{Secret: tokentest.Secret}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.cfg)
			if err == nil || v != nil {
				t.Fatalf("NewVerifier = %v, %v; want nil, error", v, err)
			}
			tokentest.AssertNoLeak(t, "NewVerifier error", err.Error(), "")
		})
	}
}

// replacePayload swaps the payload segment of tok, keeping its signature.
func replacePayload(t *testing.T, tok string, claims jwt.MapClaims) string {
	t.Helper()
	p := strings.Split(tok, ".")
	return p[0] + "." + b64JSON(t, claims) + "." + p[2]
}

// tokenOfLength returns a correctly signed token whose length is in
// [lo, hi].
func tokenOfLength(t *testing.T, lo, hi int) string {
	t.Helper()
	// base64 grows the padding by 4/3; start a little below the target.
	for n := lo*3/4 - 300; n < hi; n++ {
		tok := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", n) }))
		if len(tok) >= lo && len(tok) <= hi {
			return tok
		}
		if len(tok) > hi {
			break
		}
	}
	t.Fatalf("could not build a token of length in [%d, %d]", lo, hi)
	return ""
}

func TestVerify(t *testing.T) {
	noneToken := func(t *testing.T) string {
		return tokentest.Sign(t, jwt.SigningMethodNone, tokentest.BaseClaims(), jwt.UnsafeAllowNoneSignatureType)
	}
	valid := func(t *testing.T) string { return tokentest.HS256(t, tokentest.BaseClaims()) }
	with := func(edit func(jwt.MapClaims)) func(t *testing.T) string {
		return func(t *testing.T) string { return tokentest.HS256(t, tokentest.ClaimsWith(edit)) }
	}
	withAud := func(c *VerifierConfig) { c.Audience = testAudience }

	tests := []struct {
		name    string
		cfg     func(*VerifierConfig)
		token   func(t *testing.T) string
		wantErr error // nil: must verify
		notErr  error // must not match this sentinel either
	}{
		{name: "valid HS256 token is accepted", token: valid},
		{name: "empty token is missing", token: func(*testing.T) string { return "" }, wantErr: ErrTokenMissing},
		{name: "token signed with another secret is invalid", token: func(t *testing.T) string {
			return tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.ForeignSecret)
		}, wantErr: ErrTokenInvalid},
		{name: "tampered payload with the original signature is invalid", token: func(t *testing.T) string {
			return replacePayload(t, valid(t), tokentest.ClaimsWith(func(c jwt.MapClaims) { c["scope"] = "admin" }))
		}, wantErr: ErrTokenInvalid},
		{name: "tampered signature is invalid", token: func(t *testing.T) string {
			tok := valid(t)
			last := tok[len(tok)-2]
			repl := byte('A')
			if last == 'A' {
				repl = 'B'
			}
			return tok[:len(tok)-2] + string(repl) + tok[len(tok)-1:]
		}, wantErr: ErrTokenInvalid},
		{name: "missing signature on a real header and payload is invalid", token: func(t *testing.T) string {
			p := strings.Split(valid(t), ".")
			return p[0] + "." + p[1] + "."
		}, wantErr: ErrTokenInvalid},
		{name: "literal a.b. is invalid", token: func(*testing.T) string { return "a.b." }, wantErr: ErrTokenInvalid},
		{name: "alg none is refused", token: noneToken, wantErr: ErrTokenInvalid},
		{name: "alg none with a forged signature is refused", token: func(t *testing.T) string {
			return noneToken(t) + "c2ln"
		}, wantErr: ErrTokenInvalid},
		{name: "HS384 signed with the same secret is refused", token: func(t *testing.T) string {
			return tokentest.Sign(t, jwt.SigningMethodHS384, tokentest.BaseClaims(), tokentest.Secret)
		}, wantErr: ErrTokenInvalid},
		{name: "HS512 signed with the same secret is refused", token: func(t *testing.T) string {
			return tokentest.Sign(t, jwt.SigningMethodHS512, tokentest.BaseClaims(), tokentest.Secret)
		}, wantErr: ErrTokenInvalid},
		{name: "HS256 signature under an HS512 header is refused", token: func(t *testing.T) string {
			p := strings.Split(valid(t), ".")
			return b64JSON(t, map[string]string{"alg": "HS512", "typ": "JWT"}) + "." + p[1] + "." + p[2]
		}, wantErr: ErrTokenInvalid},
		{name: "wrong issuer is invalid", token: with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), wantErr: ErrTokenInvalid},
		{name: "missing issuer is invalid", token: with(func(c jwt.MapClaims) { delete(c, "iss") }), wantErr: ErrTokenInvalid},
		{name: "issuer match is exact (trailing slash differs)", token: with(func(c jwt.MapClaims) { c["iss"] = tokentest.Issuer + "/" }), wantErr: ErrTokenInvalid},
		{name: "missing aud is invalid when an audience is configured", cfg: withAud, token: valid, wantErr: ErrTokenInvalid},
		{name: "wrong aud is invalid when an audience is configured", cfg: withAud,
			token: with(func(c jwt.MapClaims) { c["aud"] = "other-api" }), wantErr: ErrTokenInvalid},
		{name: "right aud string is accepted", cfg: withAud,
			token: with(func(c jwt.MapClaims) { c["aud"] = testAudience })},
		{name: "aud array containing the audience is accepted", cfg: withAud,
			token: with(func(c jwt.MapClaims) { c["aud"] = []string{"other-api", testAudience} })},
		{name: "aud is ignored when no audience is configured",
			token: with(func(c jwt.MapClaims) { c["aud"] = "other-api" })},
		{name: "expired beyond leeway is refused as expired",
			token: with(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-DefaultLeeway - time.Second).Unix() }), wantErr: ErrTokenExpired},
		{name: "expired exactly leeway ago is refused as expired",
			token: with(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-DefaultLeeway).Unix() }), wantErr: ErrTokenExpired},
		{name: "expired within leeway is accepted",
			token: with(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-DefaultLeeway + time.Second).Unix() })},
		{name: "custom leeway is honoured for expiry", cfg: func(c *VerifierConfig) { c.Leeway = 5 * time.Second },
			token: with(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-6 * time.Second).Unix() }), wantErr: ErrTokenExpired},
		{name: "expired token with a bad signature is invalid, not expired",
			token: func(t *testing.T) string {
				return tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-time.Hour).Unix() }), tokentest.ForeignSecret)
			}, wantErr: ErrTokenInvalid, notErr: ErrTokenExpired},
		{name: "nbf in the future beyond leeway is not yet valid",
			token: with(func(c jwt.MapClaims) { c["nbf"] = tokentest.T0.Add(DefaultLeeway + time.Second).Unix() }), wantErr: ErrTokenNotYetValid},
		{name: "nbf in the future within leeway is accepted",
			token: with(func(c jwt.MapClaims) { c["nbf"] = tokentest.T0.Add(DefaultLeeway - time.Second).Unix() })},
		{name: "iat in the future beyond leeway is not yet valid",
			token: with(func(c jwt.MapClaims) { c["iat"] = tokentest.T0.Add(time.Hour).Unix() }), wantErr: ErrTokenNotYetValid},
		{name: "missing exp is invalid when never-expiring tokens are not allowed",
			token: with(func(c jwt.MapClaims) { delete(c, "exp") }), wantErr: ErrTokenInvalid},
		{name: "missing exp is accepted when never-expiring tokens are allowed", cfg: func(c *VerifierConfig) { c.AllowNever = true },
			token: with(func(c jwt.MapClaims) { delete(c, "exp") })},
		{name: "expired token is still refused when never-expiring tokens are allowed", cfg: func(c *VerifierConfig) { c.AllowNever = true },
			token: with(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-time.Hour).Unix() }), wantErr: ErrTokenExpired},
		{name: "missing sub is invalid", token: with(func(c jwt.MapClaims) { delete(c, "sub") }), wantErr: ErrTokenInvalid},
		{name: "empty sub is invalid", token: with(func(c jwt.MapClaims) { c["sub"] = "" }), wantErr: ErrTokenInvalid},
		{name: "missing jti is invalid", token: with(func(c jwt.MapClaims) { delete(c, "jti") }), wantErr: ErrTokenInvalid},
		{name: "exp of the wrong type is invalid", token: with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), wantErr: ErrTokenInvalid},
		{name: "scope of the wrong type is invalid", token: with(func(c jwt.MapClaims) { c["scope"] = 7 }), wantErr: ErrTokenInvalid},
		{name: "signed token longer than MaxTokenLen is invalid", token: func(t *testing.T) string {
			return tokenOfLength(t, MaxTokenLen+1, MaxTokenLen+2)
		}, wantErr: ErrTokenInvalid},
		{name: "signed token of MaxTokenLen is accepted", token: func(t *testing.T) string {
			return tokenOfLength(t, MaxTokenLen-1, MaxTokenLen)
		}},
		{name: "huge garbage is invalid", token: func(*testing.T) string { return strings.Repeat("a.", 1<<20) }, wantErr: ErrTokenInvalid},
		{name: "one segment is invalid", token: func(*testing.T) string { return "abc" }, wantErr: ErrTokenInvalid},
		{name: "two segments are invalid", token: func(t *testing.T) string {
			p := strings.Split(valid(t), ".")
			return p[0] + "." + p[1]
		}, wantErr: ErrTokenInvalid},
		{name: "four segments are invalid", token: func(t *testing.T) string { return valid(t) + ".x" }, wantErr: ErrTokenInvalid},
		{name: "non-base64 segments are invalid", token: func(*testing.T) string { return "!!!.!!!.!!!" }, wantErr: ErrTokenInvalid},
		{name: "surrounding whitespace is not stripped by Verify", token: func(t *testing.T) string { return " " + valid(t) }, wantErr: ErrTokenInvalid},
		{name: "scope as a JSON array is accepted", token: with(func(c jwt.MapClaims) { c["scope"] = []string{"read", "write"} })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, tc.cfg)
			tok := tc.token(t)
			claims, err := v.Verify(tok)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want success", err)
				}
				if claims.ClientID() != "my-app" || claims.ID != tokentest.JTI || claims.Issuer != tokentest.Issuer {
					t.Fatalf("claims = %+v", claims)
				}
				if !slices.Equal(claims.Scope, Scopes{"read", "write"}) {
					t.Fatalf("Scope = %q, want [read write]", claims.Scope)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
			}
			if tc.notErr != nil && errors.Is(err, tc.notErr) {
				t.Fatalf("Verify error = %v, must not be %v", err, tc.notErr)
			}
			if claims != nil {
				t.Fatalf("Verify returned claims %+v with an error", claims)
			}
			// Exactly one sentinel, so clients see one consistent message.
			n := 0
			for _, s := range []error{ErrTokenMissing, ErrTokenExpired, ErrTokenNotYetValid, ErrTokenInvalid} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v matches %d sentinels, want 1", err, n)
			}
			tokentest.AssertNoLeak(t, "Verify error", err.Error(), tok)
			if len(err.Error()) > 200 {
				t.Fatalf("error message is %d bytes: %q", len(err.Error()), err)
			}
		})
	}
}

func TestVerifyAcceptsTokenWithoutNbfOrIat(t *testing.T) {
	v := newTestVerifier(t, nil)
	tok := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { delete(c, "nbf"); delete(c, "iat") }))
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify = %v; nbf and iat are optional", err)
	}
}

func TestVerifierRefusesClientsOutsideTheAllowedList(t *testing.T) {
	v := newTestVerifier(t, func(c *VerifierConfig) { c.AllowedClients = []string{"cursor", "vscode"} })
	if _, err := v.Verify(tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["sub"] = "cursor" }))); err != nil {
		t.Fatalf("allowed client refused: %v", err)
	}
	_, err := v.Verify(tokentest.HS256(t, tokentest.BaseClaims())) // sub my-app
	if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "allowed clients") {
		t.Fatalf("client outside the list: %v", err)
	}
}
