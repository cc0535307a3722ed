package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// TokenVerifier verifies a raw bearer token.
type TokenVerifier interface {
	Verify(token string) (*Claims, error)
}

// MiddlewareConfig configures Middleware.
type MiddlewareConfig struct {
	// Verifier checks tokens. Required unless Disabled is set.
	Verifier TokenVerifier
	// Disabled lets every request through as DevIdentity (development
	// only; the caller enforces that).
	Disabled bool
	// DevIdentity is the identity used when Disabled is set.
	DevIdentity *Claims
	// OnFailure, if set, is called for each refused request with the
	// reason (never the token), e.g. for logging.
	OnFailure func(r *http.Request, err error)
	// OnSuccess, if set, is called for each authenticated request (e.g.
	// to track when a client was last seen). It must not block.
	OnSuccess func(r *http.Request, c *Claims)
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
// request context (see ClaimsFrom). Failures answer 401 with an RFC 6750
// WWW-Authenticate header and a JSON body.
func Middleware(cfg MiddlewareConfig) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.Disabled {
				ctx := WithRemoteAddr(WithClaims(r.Context(), cfg.DevIdentity), ClientAddress(r))
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
			// The token is verified first: a valid one is served even from
			// a throttled address (clients behind one NAT share it, and a
			// 256-bit secret makes guessing hopeless); only failures meet
			// the throttle.
			token, err := BearerToken(r)
			var claims *Claims
			if err == nil {
				claims, err = cfg.Verifier.Verify(token)
			}
			if err != nil {
				// A request with no credentials at all is how clients
				// discover that auth is needed; it is not an attack and is
				// neither throttled nor counted.
				discovery := errors.Is(err, ErrTokenMissing) && len(r.Header.Values("Authorization")) == 0
				if Unavailable(err) {
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
			ctx := WithRemoteAddr(WithClaims(r.Context(), claims), ClientAddress(r))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// BearerToken extracts the token from the request's single Authorization
// header. The scheme is matched case-insensitively (RFC 6750). Tokens in
// the query string are refused: they leak into logs and browser history.
func BearerToken(r *http.Request) (string, error) {
	// Parsing the query costs allocations on every legacy-SSE message
	// (?sessionId=…): only parse one that could name access_token, even
	// percent-encoded.
	if q := r.URL.RawQuery; (strings.Contains(q, "access_token") || strings.Contains(q, "%")) && r.URL.Query().Has("access_token") {
		return "", Refuse(ErrTokenInvalid, "tokens in the query string are not accepted; send an Authorization header")
	}
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", ErrTokenMissing
	case 1:
	default:
		return "", Refuse(ErrTokenInvalid, "more than one Authorization header")
	}
	h := strings.TrimSpace(values[0])
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", Refuse(ErrTokenMissing, "use the Bearer scheme")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", Refuse(ErrTokenMissing, "empty Bearer token")
	}
	if len(token) > MaxTokenLen {
		return "", Refuse(ErrTokenInvalid, "token is larger than 8 KiB")
	}
	return token, nil
}

// ErrorBody is the JSON body of an authentication failure.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// WriteUnauthorized answers 401 with an RFC 6750 WWW-Authenticate
// challenge (naming the resource metadata when given) and a JSON body.
func WriteUnauthorized(w http.ResponseWriter, err error, resourceMetadata string) {
	desc := Message(err)
	code := "invalid_token"
	params := []string{}
	if resourceMetadata != "" {
		params = append(params, `resource_metadata="`+quoteSafe(resourceMetadata)+`"`)
	}
	if errors.Is(err, ErrTokenMissing) {
		// RFC 6750 3.1: a request without Bearer credentials gets no
		// error code.
		code = "unauthorized"
		params = append([]string{`realm="mcpauth"`}, params...)
	} else {
		params = append(params, `error="invalid_token"`)
	}
	params = append(params, `error_description="`+quoteSafe(desc)+`"`)
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: code, Description: desc})
}

// WriteUnavailable answers 503 with Retry-After for a request the server
// cannot judge right now (a stale revocation list).
func WriteUnavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: "temporarily_unavailable", Description: Message(err)})
}

// WriteInsufficientScope answers 403 for a valid token that lacks scope
// (RFC 6750 3.1 insufficient_scope).
func WriteInsufficientScope(w http.ResponseWriter, scope, resourceMetadata string) {
	params := []string{`error="insufficient_scope"`, `scope="` + quoteSafe(scope) + `"`}
	if resourceMetadata != "" {
		params = append(params, `resource_metadata="`+quoteSafe(resourceMetadata)+`"`)
	}
	desc := "The token lacks the " + scope + " scope"
	params = append(params, `error_description="`+quoteSafe(desc)+`"`)
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: "insufficient_scope", Description: desc})
}

// quoteSafe makes s safe inside a quoted-string header parameter.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return '\''
		}
		return r
	}, s)
}
