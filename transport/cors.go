package transport

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// corsAllowHeaders are the request headers browsers may send.
var corsAllowHeaders = strings.Join([]string{
	"Authorization", "Content-Type", "Accept", "Mcp-Session-Id", "Mcp-Protocol-Version",
	"Mcp-Method", "Mcp-Name", "Last-Event-ID", "X-API-Key", "X-Admin-Key",
}, ", ")

// corsExposeHeaders are the response headers browsers may read.
var corsExposeHeaders = "Mcp-Session-Id, WWW-Authenticate, Retry-After"

// originGuard enforces the Origin policy on every request: no Origin
// (non-browser clients) passes; an allowed Origin gets CORS headers and
// answered preflights; any other Origin gets 403 (this also stops DNS
// rebinding, whatever the Host header says). With loopbackSelf (no
// MCP_CORS_ORIGIN configured), a page served from the server's own
// loopback address also passes: its Origin names a loopback host and
// exactly the Host the request was sent to, which a rebinding page (its
// Origin names its own domain) or another local port cannot present.
func originGuard(allowed []string, loopbackSelf bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if !slices.Contains(allowed, origin) && !(loopbackSelf && sameLoopbackOrigin(origin, r.Host)) {
			writeError(w, http.StatusForbidden, "origin_not_allowed",
				"Requests from this Origin are not allowed; add it to MCP_CORS_ORIGIN to let a browser app connect")
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameLoopbackOrigin reports whether origin is http(s)://<host> for the
// request's own Host, and that host is loopback.
func sameLoopbackOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Host, host) && IsLoopback(u.Host)
}

// NormalizeOrigin checks a configured origin ("https://app.example.com")
// and returns it in the form browsers send. "*", "null", paths and
// non-http(s) schemes are refused: they would let any page in.
func NormalizeOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "*" || strings.EqualFold(s, "null") {
		return "", errOrigin(s, "wildcards and null are not allowed; list each origin")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errOrigin(s, "an origin is scheme://host[:port], e.g. https://app.example.com")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errOrigin(s, "an origin has no path, query, fragment or user info")
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

type originError struct{ origin, why string }

func (e originError) Error() string { return "invalid origin " + quoteOrigin(e.origin) + ": " + e.why }

func errOrigin(origin, why string) error { return originError{origin, why} }

func quoteOrigin(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}
