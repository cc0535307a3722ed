package transport

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/quota"
)

// hostGuard is the DNS-rebinding defence for loopback listeners: a request
// that arrives on a loopback address must name a loopback host or one of
// allowedHosts (the public URL's host, for a reverse proxy on the same
// machine). mcp-go's own check knows no allowed hosts, so it is replaced
// by this one.
func hostGuard(allowedHosts []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if ok && local != nil && isLoopbackAddr(local) && !IsLoopback(r.Host) &&
			!slices.Contains(allowedHosts, strings.ToLower(r.Host)) {
			writeError(w, http.StatusForbidden, "host_not_allowed",
				"This server answers on loopback only for loopback hosts or the MCP_PUBLIC_URL host")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopbackAddr is IsLoopback(a.String()), without formatting and
// parsing the address of a TCP listener (every request asks).
func isLoopbackAddr(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok && t.Zone == "" {
		return t.IP.IsLoopback()
	}
	return IsLoopback(a.String())
}

// IsLoopback reports whether a host or host:port names a loopback
// address (or localhost).
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// requireJSON refuses POST bodies that are not application/json (415):
// cross-site "simple" requests (text/plain, forms) can be sent by any web
// page without a preflight, so they must never reach a handler. Bodies
// announced larger than maxBodyBytes get 413 before being read.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSONMediaType(ct) {
				writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
				return
			}
			if r.ContentLength > maxBodyBytes {
				writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request body is larger than 1 MiB")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// isJSONMediaType reports whether a Content-Type names application/json
// (any case, any parameters). requireJSON asks it only of values other
// than the plain "application/json" most clients send, which it accepts
// as mime.ParseMediaType would, without that function's allocations.
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// streamLimiter bounds the open event streams (SSE, Streamable HTTP GET
// and WebSocket connections) per subject, so one client cannot exhaust the server.
type streamLimiter struct{ open *quota.PerKey }

func newStreamLimiter(max int) *streamLimiter {
	return &streamLimiter{open: quota.New(max)}
}

// acquire reserves a stream for the caller; release must be called when
// it ends. ok is false when the caller is at the limit.
func (l *streamLimiter) acquire(r *http.Request) (release func(), ok bool) {
	c, _ := auth.ClaimsFrom(r.Context())
	if c == nil {
		return func() {}, true
	}
	return l.acquireSubject(c.Subject)
}

// acquireSubject is acquire for a subject known otherwise (a WebSocket
// connection bound by its first message's token).
func (l *streamLimiter) acquireSubject(subject string) (release func(), ok bool) {
	if l == nil {
		return func() {}, true
	}
	return l.open.Take(subject)
}
