package transport

import (
	"encoding/json"
	"net/http"
)

// ProtectedResourceMetadata is the RFC 9728 document describing this
// server as an OAuth protected resource.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	ResourceName           string   `json:"resource_name,omitempty"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ScopesSupported        []string `json:"scopes_supported"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// resourceMetadata is the URL of the protected-resource metadata, or ""
// when no public URL is configured.
func (h *HTTP) resourceMetadata() string {
	if h.cfg.PublicURL == "" {
		return ""
	}
	return h.cfg.PublicURL + "/.well-known/oauth-protected-resource"
}

func (h *HTTP) resourceMetadataParam() string {
	if u := h.resourceMetadata(); u != "" {
		return `, resource_metadata="` + u + `"`
	}
	return ""
}

// protectedResource serves the metadata at the root well-known path and
// the path-suffixed forms for each MCP endpoint (RFC 9728 section 3.1).
func (h *HTTP) protectedResource(resourcePath string) http.HandlerFunc {
	doc := ProtectedResourceMetadata{
		Resource:               h.cfg.PublicURL + resourcePath,
		ResourceName:           "mcpauth",
		BearerMethodsSupported: []string{"header"},
		ScopesSupported:        h.cfg.ScopesSupported,
	}
	if doc.ScopesSupported == nil {
		doc.ScopesSupported = []string{}
	}
	if h.cfg.OAuth != nil {
		doc.AuthorizationServers = []string{h.cfg.PublicURL}
	}
	// A client may sign in at a trusted identity provider directly.
	doc.AuthorizationServers = append(doc.AuthorizationServers, h.cfg.TrustedIssuers...)
	body, _ := json.MarshalIndent(doc, "", "  ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	}
}

// JWKSPath is where the public keys are published (RFC 8414's jwks_uri
// names it under the public URL).
const JWKSPath = "/.well-known/jwks.json"

// jwks serves the JWK Set. Five minutes of caching: long enough to spare
// the server, short enough that a verifier sees a key added for a
// rotation soon (and verifiers refetch on an unknown kid anyway).
func (h *HTTP) jwks(w http.ResponseWriter, _ *http.Request) {
	doc, err := h.cfg.JWKS()
	if err != nil {
		h.log.Error("cannot render the JWK Set", "err", err)
		http.Error(w, "the JWK Set is unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json") // what JWKS clients expect; RFC 7517 also allows application/jwk-set+json
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
}
