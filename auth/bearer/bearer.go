// Package bearer is the HTTP edge of authentication: the Bearer
// middleware in front of the MCP transports, the answers every credential
// check writes (RFC 6750 401 and 403 challenges, 503 when the server cannot
// judge a token, 429 for a throttled address), the failure throttle they
// share (Guard) and the address a request is throttled and audited by.
// The words of each refusal are auth.Message's; tokens, keys, claims,
// verification and issuance are package auth's.
package bearer

import (
	"errors"
	"net/http"

	"github.com/mcpauth/mcpauth/auth"
)

// TokenVerifier verifies a raw bearer token.
type TokenVerifier interface {
	Verify(token string) (*auth.Claims, error)
}

// MiddlewareConfig configures Middleware.
type MiddlewareConfig struct {
	// Verifier checks tokens. Required unless Disabled is set.
	Verifier TokenVerifier
	// Disabled lets every request through as DevIdentity (development
	// only; the caller enforces that).
	Disabled bool
	// DevIdentity is the identity used when Disabled is set.
	DevIdentity *auth.Claims
	// OnFailure, if set, is called for each refused request with the
	// reason (never the token), e.g. for logging.
	OnFailure func(r *http.Request, err error)
	// OnSuccess, if set, is called for each authenticated request (e.g.
	// to track when a client was last seen). It must not block.
	OnSuccess func(r *http.Request, c *auth.Claims)
	// ResourceMetadata, when set, is the URL of this server's RFC 9728
	// protected-resource metadata, named in every challenge so clients
	// can discover how to authenticate.
	ResourceMetadata string
	// Throttle, when set, refuses (429) a failed Bearer attempt from a
	// source with too many recent failures, and counts each failure. The
	// token is verified first: a valid token is served whatever its
	// source's count, and requests without credentials are never counted.
	Throttle Throttle
}

// Middleware returns an HTTP middleware that requires a valid
// "Authorization: Bearer <jwt>" header and puts the verified claims in the
// request context (see auth.ClaimsFrom). Failures answer 401 with an RFC 6750
// WWW-Authenticate header and a JSON body.
func Middleware(cfg MiddlewareConfig) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.Disabled {
				ctx := auth.WithCaller(r.Context(), cfg.DevIdentity, ClientAddress(r))
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
			// The token is verified first: a valid one is served even from
			// a throttled address (clients behind one NAT share it, and a
			// 256-bit secret makes guessing hopeless); only failures meet
			// the throttle.
			token, err := auth.BearerToken(r)
			var claims *auth.Claims
			if err == nil {
				claims, err = cfg.Verifier.Verify(token)
			}
			if err != nil {
				// A request with no credentials at all is how clients
				// discover that auth is needed; it is not an attack and is
				// neither throttled nor counted.
				discovery := errors.Is(err, auth.ErrTokenMissing) && len(r.Header.Values("Authorization")) == 0
				if auth.Unavailable(err) {
					// The server's state, not the caller's fault: not
					// throttled, and answered 503 so clients retry.
					if cfg.OnFailure != nil {
						cfg.OnFailure(r, err)
					}
					WriteUnavailable(w, err)
					return
				}
				if !discovery {
					if secs, blocked := (Guard{Throttle: cfg.Throttle}).Failed(w, ClientAddress(r)); blocked {
						WriteTooManyRequests(w, secs)
						return
					}
				}
				if cfg.OnFailure != nil {
					cfg.OnFailure(r, err)
				}
				WriteUnauthorized(w, err, cfg.ResourceMetadata)
				return
			}
			if cfg.OnSuccess != nil {
				cfg.OnSuccess(r, claims)
			}
			ctx := auth.WithCaller(r.Context(), claims, ClientAddress(r))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
