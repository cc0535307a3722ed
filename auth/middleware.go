package auth

import (
	"net/http"
	"strings"
)

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
