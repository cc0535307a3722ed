package idp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// algorithms are the only signing algorithms accepted; "none" and the
// HMAC algorithms never are (a provider's JWKS is public).
var algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// maxSubLen bounds the provider's sub claim.
const maxSubLen = 255

func (s *Set) parser(p *Provider) *jwt.Parser {
	aud := s.opts.Resources
	if p.Audience != "" {
		aud = []string{p.Audience}
	}
	return jwt.NewParser(
		jwt.WithValidMethods(algorithms),
		jwt.WithIssuer(p.Issuer),
		jwt.WithAudience(aud...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(s.opts.Leeway),
		jwt.WithTimeFunc(s.opts.Now),
		jwt.WithStrictDecoding(),
	)
}

// Verify checks a token of a trusted provider: an accepted algorithm
// that its key names, a key the provider publishes, no key-carrying
// headers, typ, iss exactly, aud, exp (required), nbf and iat with the
// leeway, and sub. The claims it returns have Subject "<provider>:<sub>",
// Issuer the provider's issuer, ID "<provider>:<jti>" (kept apart from
// this server's jtis in the revocation set) and the mapped scopes.
// Errors wrap auth's sentinels: ErrTokenExpired, ErrTokenNotYetValid,
// ErrIssuerUnavailable or ErrTokenInvalid.
func (s *Set) Verify(token string) (*auth.Claims, error) {
	iss := peekIssuer(token)
	t, ok := s.byIssuer[iss]
	if !ok {
		return nil, auth.Refuse(auth.ErrTokenInvalid, "issuer is not trusted")
	}
	mc := jwt.MapClaims{}
	var keyErr error // the keyfunc's own refusal, in our words
	_, err := t.parser.ParseWithClaims(token, mc, func(tok *jwt.Token) (any, error) {
		k, err := t.keyFunc(tok)
		keyErr = err
		return k, err
	})
	switch {
	case errors.Is(keyErr, errNoKeys):
		return nil, auth.Refuse(auth.ErrIssuerUnavailable, "%s", errNoKeys)
	case keyErr != nil:
		return nil, auth.Refuse(auth.ErrTokenInvalid, "%s", keyErr)
	case err != nil:
		return nil, classify(err)
	}
	return t.claims(token, mc)
}

// keyFunc checks the header and returns the provider's key for it. The
// algorithm must be the key's; the key never comes from the token.
func (t *trusted) keyFunc(tok *jwt.Token) (any, error) {
	for _, h := range []string{"jku", "x5u", "jwk", "x5c", "crit"} {
		if _, ok := tok.Header[h]; ok {
			return nil, fmt.Errorf("%w: the %q header is not accepted", errBadHeader, h)
		}
	}
	if err := t.checkTyp(tok.Header["typ"]); err != nil {
		return nil, err
	}
	kid, _ := tok.Header["kid"].(string)
	k, err := t.keys.key(context.Background(), kid)
	if err != nil {
		return nil, err
	}
	if alg, _ := tok.Header["alg"].(string); alg != k.alg {
		return nil, fmt.Errorf("%w: the key verifies %s, not %s", errBadHeader, k.alg, untrusted.Clip(alg, 16))
	}
	return k.pub, nil
}

var errBadHeader = errors.New("header refused")

// checkTyp accepts RFC 9068's at+jwt (or no typ); "JWT" only where the
// provider allows it.
func (t *trusted) checkTyp(v any) error {
	if v == nil {
		return nil
	}
	typ, _ := v.(string)
	switch strings.ToLower(typ) {
	case "at+jwt", "application/at+jwt":
		return nil
	case "jwt":
		if t.p.AllowTypJWT {
			return nil
		}
	}
	return fmt.Errorf(`%w: typ %q is not an access token's "at+jwt"`, errBadHeader, untrusted.Clip(typ, 32))
}

// claims builds mcpauth's claims from a verified token's.
func (t *trusted) claims(token string, mc jwt.MapClaims) (*auth.Claims, error) {
	sub, _ := mc["sub"].(string)
	if sub == "" || len(sub) > maxSubLen || !printable(sub) {
		return nil, auth.Refuse(auth.ErrTokenInvalid, "sub must be 1-%d printable ASCII characters", maxSubLen)
	}
	jti, _ := mc["jti"].(string)
	if jti == "" || len(jti) > maxSubLen || !printable(jti) {
		// No usable jti: the token's own digest keys it.
		sum := sha256.Sum256([]byte(token[strings.LastIndexByte(token, '.')+1:]))
		jti = "sha256-" + hex.EncodeToString(sum[:16])
	}
	c := &auth.Claims{Scope: t.scopes(mc)}
	c.Issuer, c.Subject, c.ID = t.p.Issuer, t.p.Name+":"+sub, t.p.Name+":"+jti
	c.Audience, _ = mc.GetAudience()
	c.ExpiresAt, _ = mc.GetExpirationTime()
	c.NotBefore, _ = mc.GetNotBefore()
	c.IssuedAt, _ = mc.GetIssuedAt()
	return c, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// classify maps a parse error to auth's sentinels with a reason safe to
// show the caller.
func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return auth.ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return auth.ErrTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenMalformed):
		return auth.Refuse(auth.ErrTokenInvalid, "malformed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return auth.Refuse(auth.ErrTokenInvalid, "signature does not verify with the identity provider's key, or the algorithm is not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return auth.Refuse(auth.ErrTokenInvalid, "the token was granted for another resource")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return auth.Refuse(auth.ErrTokenInvalid, "missing required claim")
	}
	return auth.Refuse(auth.ErrTokenInvalid, "invalid claims")
}

// peekIssuer reads iss without verifying anything: it picks the provider.
func peekIssuer(token string) string {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Iss
}
