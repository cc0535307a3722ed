package transport

import (
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
)

// introspection answers RFC 7662 token introspection at POST /introspect
// (form field "token"), for another service to honour mcpauth's
// revocations without holding the signing secret. The asker authenticates
// like the token API: the API key or an admin Bearer token. A token that
// is revoked, expired, not ours or malformed is {"active": false}, with no
// reason (RFC 7662 2.2); an active one carries its claims.
func (h *HTTP) introspection(cfg TokenAPIConfig) http.Handler {
	keySum := sha256.Sum256([]byte(cfg.APIKey))
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := h.adminCaller(w, r, keySum, cfg.Verifier, log, "introspect", func(status int, code, msg string) {
			writeError(w, status, code, msg)
		}); !ok {
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
			writeError(w, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/x-www-form-urlencoded (RFC 7662)")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "Cannot read the form body")
			return
		}
		if len(r.PostForm["token"]) != 1 || r.PostForm.Get("token") == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", `exactly one "token" form field is required`)
			return
		}
		claims, err := cfg.Verifier.Verify(r.PostForm.Get("token"))
		if auth.Unavailable(err) {
			bearer.WriteUnavailable(w, err) // no answer beats a wrong "active"
			return
		}
		writeIntrospection(w, claims, err == nil)
	})
}

// introspectionResponse is RFC 7662's answer.
type introspectionResponse struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	NotBefore int64    `json:"nbf,omitempty"`
	Expires   int64    `json:"exp,omitempty"`
	JTI       string   `json:"jti,omitempty"`
}

func writeIntrospection(w http.ResponseWriter, c *auth.Claims, active bool) {
	resp := introspectionResponse{Active: active}
	if active {
		resp = introspectionResponse{Active: true, Scope: c.Scope.String(), ClientID: c.Subject, Subject: c.Subject,
			TokenType: "Bearer", Issuer: c.Issuer, Audience: c.Audience, JTI: c.ID}
		if c.IssuedAt != nil {
			resp.IssuedAt = c.IssuedAt.Unix()
		}
		if c.NotBefore != nil {
			resp.NotBefore = c.NotBefore.Unix()
		}
		if c.ExpiresAt != nil {
			resp.Expires = c.ExpiresAt.Unix()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}
