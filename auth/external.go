package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// Unavailable reports whether err is the server's temporary state
// (ErrRevocationStale, ErrIssuerUnavailable) rather than a bad token.
func Unavailable(err error) bool {
	return errors.Is(err, ErrRevocationStale) || errors.Is(err, ErrIssuerUnavailable)
}

// ExternalIssuers verifies the tokens of identity providers the operator
// trusts besides this server (package auth/idp). The Verifier consults it
// only for tokens whose unverified iss it Trusts; Verify must then check
// everything about the token (signature, issuer, audience, times) and
// return claims whose Subject can never be a local client id (auth/idp
// writes "<provider>:<sub>": ':' is not allowed in client ids) and whose
// ID cannot collide with a jti of this server's tokens.
type ExternalIssuers interface {
	Trusts(iss string) bool
	Verify(token string) (*Claims, error)
}

// slow verifies a token the fast path left: an external issuer's, or
// any other with the full path.
func (v *Verifier) slow(st *keyState, token string) (*Claims, error) {
	x := v.cfg.External
	if x == nil {
		return v.full(st, token)
	}
	iss, ok := peekIssuer(token)
	if !ok || iss == v.cfg.Issuer || !x.Trusts(iss) {
		return v.full(st, token)
	}
	claims, err := x.Verify(token)
	if err != nil {
		return nil, err
	}
	// The same one-meaning rules as this server's tokens (duplicate or
	// case-folded member names, registered claims' JSON types).
	if err := checkMembers(token); err != nil {
		return nil, Refuse(ErrTokenInvalid, "%s", err)
	}
	return claims, nil
}

// external reports whether verified claims came from an external issuer.
func (v *Verifier) external(c *Claims) bool {
	return v.cfg.External != nil && c.Issuer != v.cfg.Issuer && v.cfg.External.Trusts(c.Issuer)
}

// checkNamespace keeps "<provider>:<sub>" to trusted providers' callers:
// with providers configured, a token of this server's secret (a legacy
// script's, say: mcpauth never mints one) whose sub holds ':' is refused.
func (v *Verifier) checkNamespace(c *Claims) error {
	if v.cfg.External != nil && strings.IndexByte(c.Subject, ':') >= 0 && !v.external(c) {
		return Refuse(ErrTokenInvalid, "sub may not contain ':' (it names trusted identity providers' callers)")
	}
	return nil
}

// peekIssuer reads the iss claim of a token without verifying anything:
// it only chooses who verifies the token.
func peekIssuer(token string) (string, bool) {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil || c.Iss == "" {
		return "", false
	}
	return c.Iss, true
}
