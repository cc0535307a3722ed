package bearer

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/mcpauth/mcpauth/auth"
)

// ErrorBody is the JSON body of an authentication failure.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// WriteUnauthorized answers 401 with an RFC 6750 WWW-Authenticate
// challenge (naming the resource metadata when given) and a JSON body.
func WriteUnauthorized(w http.ResponseWriter, err error, resourceMetadata string) {
	desc := auth.Message(err)
	code := "invalid_token"
	params := []string{}
	if resourceMetadata != "" {
		params = append(params, `resource_metadata="`+quoteSafe(resourceMetadata)+`"`)
	}
	if errors.Is(err, auth.ErrTokenMissing) {
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
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: "temporarily_unavailable", Description: auth.Message(err)})
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
