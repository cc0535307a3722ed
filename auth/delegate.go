package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// ErrDelegationNeedsKeyPair refuses to mint tokens for upstream servers
// with an HMAC secret: an upstream could only verify such a token by
// holding the secret that signs every one of mcpauth's tokens.
var ErrDelegationNeedsKeyPair = errors.New("tokens for upstream servers need an asymmetric signing key (MCP_SIGNING_ALG=ES256, EdDSA or RS256): " +
	"with HS256 the upstream would need the secret that signs every mcpauth token")

// Symmetric reports whether the Issuer signs with an HMAC secret (HS256),
// which cannot mint tokens for upstreams (Delegate).
func (i *Issuer) Symmetric() bool { return i.ring.Active().Symmetric() }

// maxDelegatedLifetime bounds a token minted for an upstream.
const maxDelegatedLifetime = time.Hour

// Delegate mints a short-lived access token for audience, an upstream
// server, in subject's name with scopes, expiring at exp (at most an hour
// away): what the gateway sends an upstream in place of the caller's own
// token (tools/upstream's Delegator). It is signed with the Issuer's key,
// which must be asymmetric so the upstream can verify it from the JWKS,
// and typed "at+jwt" (RFC 9068). It is not recorded: it never reaches a
// caller, and mcpauth refuses it (its audience is not mcpauth's). Each
// mint is audited (token.delegated).
func (i *Issuer) Delegate(ctx context.Context, subject string, scopes []string, audience string, exp time.Time) (string, error) {
	key := i.ring.Active()
	if key.Symmetric() {
		return "", ErrDelegationNeedsKeyPair
	}
	now := i.cfg.Now().Truncate(time.Second)
	switch {
	case subject == "":
		return "", errors.New("delegate: no subject")
	case audience == "":
		return "", errors.New("delegate: no audience")
	case !exp.After(now):
		return "", errors.New("delegate: the token would already have expired")
	case exp.Sub(now) > maxDelegatedLifetime:
		exp = now.Add(maxDelegatedLifetime)
	}
	sc := NormalizeScopes(scopes)
	if err := ValidateScopes(sc); err != nil {
		return "", fmt.Errorf("delegate: %w", err)
	}
	jti, err := newJTI()
	if err != nil {
		return "", err
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
		Scope: sc,
	}
	t := jwt.NewWithClaims(key.Method(), claims)
	t.Header["kid"] = key.ID()
	t.Header["typ"] = "at+jwt"
	signed, err := t.SignedString(key.SigningKey())
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	Audit(ctx, i.cfg.Logger, EventTokenDelegated, "client_id", untrusted.Clip(subject, 140), "jti", jti, "audience", untrusted.Clip(audience, 200),
		"scopes", sc.String(), "expires_at", exp.UTC().Format(time.RFC3339))
	return signed, nil
}
