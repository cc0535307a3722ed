package auth

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of an mcpauth token: the registered JWT claims
// (iss, sub = client id, aud, iat, nbf, exp, jti) plus the space-separated
// scope claim.
type Claims struct {
	jwt.RegisteredClaims
	Scope Scopes `json:"scope,omitempty"`
}

// ClientID is the token's subject.
func (c *Claims) ClientID() string { return c.Subject }

// Expires returns the expiry time and whether the token has one.
func (c *Claims) Expires() (time.Time, bool) {
	if c.ExpiresAt == nil {
		return time.Time{}, false
	}
	return c.ExpiresAt.Time, true
}
