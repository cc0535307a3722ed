package transport

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/idp"
	"github.com/mcpauth/mcpauth/internal/delivery"
)

// maxBodyBytes bounds every request body.
const maxBodyBytes = 1 << 20

// HTTPConfig configures the HTTP handler.
type HTTPConfig struct {
	// MCP is the server to expose.
	MCP *server.MCPServer
	// Auth is the Bearer middleware (bearer.Middleware) placed in front of
	// every MCP endpoint.
	Auth func(http.Handler) http.Handler
	// AuthEnabled is reported by /health.
	AuthEnabled bool
	// Version is reported by /health.
	Version string
	// Logger receives request-level warnings; never tokens.
	Logger *slog.Logger
	// KeepAlive is the SSE keep-alive interval; 15s when zero.
	KeepAlive time.Duration
	// SessionIdleTTL ends Streamable HTTP sessions idle for this long;
	// 30 minutes when zero.
	SessionIdleTTL time.Duration
	// Revoked, when set, is checked every ReapInterval: sessions opened
	// with a revoked token are ended (streams closed, id forgotten).
	Revoked auth.RevocationChecker
	// ReapInterval is how often sessions are checked against Revoked;
	// 500ms when zero.
	ReapInterval time.Duration
	// PublicURL is the server's external base URL (no trailing slash);
	// it names the protected resource and its metadata in challenges.
	PublicURL string
	// ScopesSupported is advertised in the protected-resource metadata.
	ScopesSupported []string
	// CORSOrigins are the browser origins allowed to call the server
	// (normalized; see NormalizeOrigin). Requests with any other Origin
	// get 403. The public URL's own origin is always allowed.
	CORSOrigins []string
	// Throttle limits failed authentications per client address (Bearer
	// and API key alike).
	Throttle bearer.Throttle
	// TokenAPI, when set with a non-empty API key, serves the HTTP token
	// endpoint.
	TokenAPI *TokenAPIConfig
	// AuthInfo is the auth configuration /health may show.
	AuthInfo AuthInfo
	// CountNotifications counts the notifications written to each
	// Streamable HTTP session's streams and gives requests the count
	// (internal/delivery), so a relay (the gateway) can answer once what
	// it queued for the caller is out.
	CountNotifications bool
	// SigningKey, when set, names the key that signs now (kid and
	// algorithm) for /health; a rotation changes it.
	SigningKey func() (kid, alg string)
	// Metrics, when set, is served at GET /metrics to admin tokens.
	Metrics *Metrics
	// OAuth, when set, is the built-in authorization server: its routes
	// are mounted and the resource metadata names it.
	OAuth interface{ Routes(mux *http.ServeMux) }
	// Timeouts bound slow clients; zero fields get Serve's defaults.
	Timeouts Timeouts
	// AllowedHosts are extra Host header values accepted on a loopback
	// listener (a reverse proxy on the same machine); the public URL's
	// host is always allowed.
	AllowedHosts []string
	// MaxStreamsPerClient bounds the open event streams (SSE,
	// Streamable HTTP GET) and WebSocket connections per client id; 0
	// means 32.
	MaxStreamsPerClient int
	// MaxSessionsPerClient bounds the Streamable HTTP sessions that
	// initialize opens per client id (until DELETE or idle expiry); 0
	// means 64. Further initialize requests get 429.
	MaxSessionsPerClient int
	// SSEWriteTimeout bounds each write to an event stream (legacy SSE,
	// Streamable HTTP GET) and how long a POST /message waits for room in
	// its stream's queue; a stream whose reader is stuck that long is
	// dropped. 15s when zero.
	SSEWriteTimeout time.Duration
	// Stateless serves 2025-11-25 Streamable HTTP clients without
	// Mcp-Session-Id, so any replica behind a load balancer can answer
	// any request (2026-07-28 clients are stateless anyway). Server-to-
	// client requests within a session are then unavailable.
	Stateless bool
	// ToolScope, when set, names the scope a tool requires ("" for none);
	// a tools/call without it is answered 403 insufficient_scope.
	ToolScope func(tool string) string
	// BasePath, when set ("/v1"), serves every endpoint under it
	// (/v1/mcp, /v1/sse, …), as operators' existing URLs (…/v1/sse)
	// expect; PublicURL then includes it. /health stays at the root too,
	// and the root well-known forms of RFC 9728 and RFC 8414
	// (/.well-known/<name>/v1/…) are served.
	BasePath string
	// TrustedIssuers are the identity providers whose tokens are accepted
	// besides this server's own: listed in the protected-resource
	// metadata's authorization_servers.
	TrustedIssuers []string
	// Upstreams, when set, reports the relayed MCP servers in /health.
	Upstreams func() []UpstreamHealth
	// RevocationHealth, when set, reports the revocation set's freshness
	// in /health.
	RevocationHealth func() RevocationHealth
	// TrustedIssuerHealth, when set, reports each trusted identity
	// provider's state for /health (auth/idp's Status).
	TrustedIssuerHealth func() []idp.Status
	// VerifyToken, when set (with AuthEnabled), verifies the token a
	// WebSocket message carries in params.auth.token (the production
	// setup document's form); it audits failures itself. Without it /ws
	// takes only the Authorization header.
	VerifyToken func(ctx context.Context, token string) (*auth.Claims, error)
	// WSAuthTimeout is how long a WebSocket connection upgraded without
	// a token may take to send a valid one; 10s when zero.
	WSAuthTimeout time.Duration
	// JWKS, when set, gives the JWK Set document served at
	// GET /.well-known/jwks.json: the public keys that verify this
	// server's tokens ({"keys":[]} with HS256 only). It is asked on
	// every request, so a rotation is published at once.
	JWKS func() ([]byte, error)
	// TrustedProxies are the reverse proxies (see ParseTrustedProxies)
	// whose X-Forwarded-For names the client that failure throttles and
	// audit records key on. Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
}

// HTTP serves Streamable HTTP at /mcp, legacy SSE at GET /sse + POST
// /message, MCP over WebSocket at GET /ws, and GET /health, all MCP endpoints behind the auth middleware.
type HTTP struct {
	// draining is set when shutdown starts; inflight counts requests
	// being served (event streams included until they are closed).
	draining atomic.Bool
	inflight atomic.Int64

	cfg        HTTPConfig
	throttle   bearer.Throttle
	handler    http.Handler
	sse        *sseServer
	streamable *server.StreamableHTTPServer
	sessions   *sessionTable
	streams    *streamLimiter
	log        *slog.Logger
	// wsBase ends every WebSocket connection when cancelled (Close);
	// wsPending counts connections not yet authenticated.
	wsBase    context.Context
	wsStop    context.CancelFunc
	wsPending *wsWaiting
}

// NewHTTP builds the handler.
func NewHTTP(cfg HTTPConfig) *HTTP {
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.SessionIdleTTL == 0 {
		cfg.SessionIdleTTL = 30 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReapInterval == 0 {
		cfg.ReapInterval = 500 * time.Millisecond
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.MaxStreamsPerClient == 0 {
		cfg.MaxStreamsPerClient = 32
	}
	if cfg.MaxSessionsPerClient == 0 {
		cfg.MaxSessionsPerClient = 64
	}
	h := &HTTP{sessions: newSessionTable(cfg.MaxSessionsPerClient), log: cfg.Logger, cfg: cfg, throttle: cfg.Throttle, streams: newStreamLimiter(cfg.MaxStreamsPerClient),
		wsPending: newWSWaiting()}
	h.wsBase, h.wsStop = context.WithCancel(context.Background())
	h.sse = newSSEServer(cfg.MCP, cfg.KeepAlive, h.sessions.sseSessionID, cfg.Logger)
	h.sse.writeTimeout, h.sse.metrics = cfg.SSEWriteTimeout, cfg.Metrics
	h.sse.messagePath = cfg.BasePath + "/message"
	sopts := []server.StreamableHTTPOption{
		server.WithEndpointPath("/mcp"),
		server.WithSessionIdManagerResolver(h.sessions),
		server.WithSessionIdleTTL(cfg.SessionIdleTTL),
		server.WithHeartbeatInterval(cfg.KeepAlive),
		server.WithStreamableHTTPLogger(cfg.Logger),
		server.WithDisableLocalhostProtection(true), // see hostGuard
	}
	if cfg.Stateless {
		sopts = append(sopts, server.WithStateLess(true)) // last wins over the resolver
	}
	h.streamable = server.NewStreamableHTTPServer(cfg.MCP, sopts...)

	mux := http.NewServeMux()
	healthz := health(cfg)
	mux.HandleFunc("GET /health", healthz)
	mux.HandleFunc("GET /api/v1/mcp/health", healthz)
	strict := func(next http.Handler) http.Handler {
		return strictJSONRPC(cfg.ToolScope, h.resourceMetadata(), cfg.Logger, next)
	}
	mux.Handle("/mcp", requireJSON(cfg.Auth(strict(h.bindStreamable(h.streamable)))))
	mux.Handle("GET /sse", cfg.Auth(h.openSSE(http.HandlerFunc(h.sse.serveStream))))
	mux.Handle("POST /message", requireJSON(cfg.Auth(strict(h.bindSSEMessage(http.HandlerFunc(h.sse.handleMessage))))))
	// The token guide checks a token by POSTing a JSON-RPC message to the
	// SSE URL: answered as one stateless request, in the response body.
	mux.Handle("POST /sse", requireJSON(cfg.Auth(strict(http.HandlerFunc(h.statelessMessage)))))
	mux.Handle("GET /ws", h.wsAuth(http.HandlerFunc(h.serveWS)))
	if cfg.PublicURL != "" {
		mux.HandleFunc("GET /.well-known/oauth-protected-resource", h.protectedResource(""))
		mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", h.protectedResource("/mcp"))
		mux.HandleFunc("GET /.well-known/oauth-protected-resource/sse", h.protectedResource("/sse"))
	}
	if cfg.JWKS != nil {
		mux.HandleFunc("GET /.well-known/jwks.json", h.jwks)
	}
	if cfg.OAuth != nil {
		cfg.OAuth.Routes(mux)
	} else {
		// Spec clients (mcp-remote) answer any 401 by trying to sign in,
		// and show what registration says: say why, not 404.
		mux.HandleFunc("POST /register", h.signInOff)
	}
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Auth(adminOnly(h.resourceMetadata(), cfg.Logger, cfg.Metrics.Handler())))
	}
	if cfg.TokenAPI != nil && (cfg.TokenAPI.APIKey != "" || cfg.TokenAPI.Verifier != nil) {
		mux.Handle("POST /introspect", h.introspection(*cfg.TokenAPI))
	}
	if cfg.TokenAPI != nil && cfg.TokenAPI.APIKey != "" {
		api := h.tokenAPI(*cfg.TokenAPI)
		mux.Handle("POST /api/v1/mcp/auth/token", api)
		mux.Handle("POST /api/auth/token", api)
	}
	origins := slices.Clone(cfg.CORSOrigins)
	hosts := make([]string, 0, len(cfg.AllowedHosts)+1)
	for _, ah := range cfg.AllowedHosts {
		hosts = append(hosts, strings.ToLower(ah))
	}
	if o, err := NormalizeOrigin(originOf(cfg.PublicURL)); err == nil {
		origins = append(origins, o)
		hosts = append(hosts, strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://"))
	}
	h.handler = clientAddress(cfg.TrustedProxies, hostGuard(hosts, originGuard(origins, len(cfg.CORSOrigins) == 0, limitBody(underBasePath(cfg.BasePath, mux)))))
	return h
}

// ServeHTTP implements http.Handler.
//
// While the server drains (Serve's shutdown), new requests get a clean
// 503 with Retry-After and Connection: close instead of a dropped
// connection, so a load balancer or client moves to another replica.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "The server is shutting down; retry on another replica or in a moment")
		return
	}
	h.inflight.Add(1)
	defer h.inflight.Add(-1)
	h.handler.ServeHTTP(w, r)
}

// Close ends every open SSE stream, WebSocket connection and Streamable
// HTTP session.
func (h *HTTP) Close(ctx context.Context) error {
	h.sse.closeAll()
	h.wsStop()
	return h.streamable.Shutdown(ctx)
}

// RunReaper ends sessions whose opening token has been revoked, and
// streams whose own token has been, checking every ReapInterval until ctx
// ends. Serve runs it.
func (h *HTTP) RunReaper(ctx context.Context) {
	if h.cfg.Revoked == nil {
		return
	}
	tick := time.NewTicker(h.cfg.ReapInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			h.reap()
		}
	}
}

// reap ends the sessions and streams of revoked tokens (RunReaper's tick).
// mcp-go is told too, as by a DELETE: it would otherwise keep each ended
// Streamable HTTP session registered, with its buffers, until its
// 30-minute idle sweep.
func (h *HTTP) reap() {
	ids, streams := h.sessions.closeRevoked(h.cfg.Revoked)
	for _, id := range ids {
		h.endInMCPGo(id)
	}
	if len(ids)+streams > 0 {
		h.log.Info("ended sessions and streams of revoked tokens", "sessions", len(ids), "streams", streams)
	}
}

// endInMCPGo ends session id in mcp-go's Streamable HTTP server the way a
// client's DELETE does (its session id manager, this table, has already
// forgotten it). For a legacy SSE session it only unregisters the session
// from the MCP server a moment before its ending stream would.
func (h *HTTP) endInMCPGo(id string) {
	r, err := http.NewRequest(http.MethodDelete, "/mcp", nil)
	if err != nil {
		return
	}
	r.Header.Set(server.HeaderKeySessionID, id)
	h.streamable.ServeHTTP(discardResponse{}, r)
}

// discardResponse is a ResponseWriter for requests made to mcp-go from
// inside the server, whose answers nobody reads.
type discardResponse struct{}

func (discardResponse) Header() http.Header         { return http.Header{} }
func (discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (discardResponse) WriteHeader(int)             {}

// OpenSessions reports how many sessions are bound (for tests and health).
func (h *HTTP) OpenSessions() int { return h.sessions.len() }

// openSSE binds the stream's session to its opener, forgets it when the
// stream ends, and ends the stream when the token expires or is revoked.
// A stream that takes its connection over outlives its handler: then its
// cleanup here waits for the stream's end (handoff).
func (h *HTTP) openSSE(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := h.takeStream(w, r)
		if !ok {
			return
		}
		// The stream's context ends with the request's, or, once the
		// stream has taken its connection over (handoff), when the
		// stream's own goroutine sees the client go; and at the token's
		// expiry.
		ctx, cancel := untilExpiry(context.WithoutCancel(r.Context()))
		unlink := context.AfterFunc(r.Context(), cancel)
		ctx, hf := withHandoff(ctx, unlink)
		st := &sseStream{cancel: cancel}
		ctx = context.WithValue(ctx, sseStreamKey{}, st)
		defer hf.done(func() {
			if st.remove != nil {
				st.remove()
			}
			if st.id != "" {
				h.sessions.close(st.id)
			}
			unlink()
			cancel()
			release()
		})
		next.ServeHTTP(w, r.WithContext(ctx))
		if hf.isTaken() {
			// A stream that outlives its handler stays in flight (as
			// ServeHTTP counts a handler) until the end of its body is
			// written, so a shutdown waits for it.
			h.inflight.Add(1)
			hf.onClose(func() { h.inflight.Add(-1) })
		}
	})
}

// takeStream takes one of the caller's stream slots for an event stream
// the request holds open; when the caller has none left, it counts the
// refusal and answers 429 too_many_streams.
func (h *HTTP) takeStream(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, ok = h.streams.acquire(r)
	if !ok {
		h.cfg.Metrics.Refused(limitStreamsPerClient)
		writeError(w, http.StatusTooManyRequests, "too_many_streams", "This client has too many open streams; close one first")
	}
	return release, ok
}

// bindSSEMessage lets a POST /message through only for the subject that
// opened the session.
func (h *HTTP) bindSSEMessage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := sessionParam(r)
		if id == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "Missing sessionId query parameter")
			return
		}
		if !h.checkOwner(w, r, id) {
			return
		}
		// A 2026-07-28 subscriptions/listen holds its POST open until the
		// session's stream ends: it takes one of the client's stream
		// slots meanwhile.
		if r.Context().Value(listenKey{}) != nil {
			release, ok := h.takeStream(w, r)
			if !ok {
				return
			}
			defer release()
		}
		next.ServeHTTP(w, r)
	})
}

// bindStreamable lets a request carrying Mcp-Session-Id through only for
// the subject that opened that session; a GET stream ends when its token
// expires or its session is ended.
func (h *HTTP) bindStreamable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(server.HeaderKeySessionID)
		if id != "" && !h.checkOwner(w, r, id) {
			return
		}
		// An initialize opens a session (unless stateless): it takes
		// one of the client's session slots first.
		if !h.cfg.Stateless && id == "" && r.Method == http.MethodPost && r.Context().Value(initializeKey{}) != nil {
			c, _ := auth.ClaimsFrom(r.Context())
			sl, ok := h.sessions.reserve(subjectOf(c))
			if !ok {
				h.cfg.Metrics.Refused(limitSessionsPerClient)
				writeError(w, http.StatusTooManyRequests, "too_many_sessions",
					"This client has too many open sessions; end one (DELETE /mcp) or let idle ones expire")
				return
			}
			defer h.sessions.release(sl)
			r = r.WithContext(context.WithValue(r.Context(), slotKey{}, sl))
		}
		if id != "" && h.cfg.CountNotifications {
			if c := h.sessions.notes(id); c != nil {
				w = &countingWriter{ResponseWriter: w, c: c}
				r = r.WithContext(delivery.With(r.Context(), c))
			}
		}
		// A GET, and a 2026-07-28 subscriptions/listen POST, hold an event
		// stream open: each takes one of the client's stream slots and
		// ends with its token (expiry, revocation) or its session.
		listen := r.Method == http.MethodPost && r.Context().Value(listenKey{}) != nil
		if r.Method == http.MethodGet || listen {
			release, ok := h.takeStream(w, r)
			if !ok {
				return
			}
			defer release()
			ctx, cancel := untilExpiry(r.Context())
			defer cancel()
			c, _ := auth.ClaimsFrom(ctx)
			remove, ok := h.sessions.addStream(id, jtiOf(c), cancel)
			if !ok {
				writeError(w, http.StatusNotFound, "session_not_found", "Session not found: it has ended or was never opened; start a new session")
				return
			}
			defer remove()
			// Each write gets a deadline; a write blocked on a client that
			// stopped reading is cut when the stream's context ends.
			wr := newDeadlineWriter(ctx, responseSink(w), h.sse.timeout())
			defer wr.finish()
			w = &streamWriter{ResponseWriter: w, d: wr, stalled: func() {
				h.cfg.Metrics.Refused(limitStalledStream)
				h.log.Warn("dropped a Streamable HTTP stream whose client stopped reading", "client_id", subjectOf(c), "timeout", h.sse.timeout().String())
				cancel()
			}}
			if id == "" && !listen {
				// mcp-go opens a session for this stream alone; it ends
				// with the stream.
				var generated string
				ctx = context.WithValue(ctx, generatedKey{}, &generated)
				defer func() {
					if generated != "" {
						h.sessions.close(generated)
					}
				}()
			}
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

func (h *HTTP) checkOwner(w http.ResponseWriter, r *http.Request, id string) bool {
	owner, ok := h.sessions.owner(id)
	if !ok {
		writeError(w, http.StatusNotFound, "session_not_found", "Session not found: it has ended or was never opened; start a new session")
		return false
	}
	c, _ := auth.ClaimsFrom(r.Context())
	if c == nil || c.Subject != owner {
		h.log.Warn("session used by another subject", "path", r.URL.Path, "client_id", subjectOf(c))
		writeError(w, http.StatusForbidden, "forbidden", "This session belongs to another client")
		return false
	}
	return true
}

func subjectOf(c *auth.Claims) string {
	if c == nil {
		return ""
	}
	return c.Subject
}

func jtiOf(c *auth.Claims) string {
	if c == nil {
		return ""
	}
	return c.ID
}

// forbid answers 403 insufficient_scope for a valid token c that lacks
// scope, and records it (auth.forbidden) with what was asked for.
func forbid(w http.ResponseWriter, r *http.Request, logger *slog.Logger, c *auth.Claims, scope, resourceMetadata, via string, attrs ...any) {
	auth.Audit(r.Context(), logger, auth.EventForbidden,
		append([]any{"client_id", subjectOf(c), "jti", jtiOf(c), "required_scope", scope, "via", via}, attrs...)...)
	bearer.WriteInsufficientScope(w, scope, resourceMetadata)
}

// untilExpiry bounds ctx by the caller's token expiry, so long-lived
// streams do not outlive their credentials.
func untilExpiry(ctx context.Context) (context.Context, context.CancelFunc) {
	if c, ok := auth.ClaimsFrom(ctx); ok {
		if exp, ok := c.Expires(); ok {
			return context.WithDeadline(ctx, exp)
		}
	}
	return context.WithCancel(ctx)
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// Health is the /health response body. It never contains a secret.
type Health struct {
	Status     string   `json:"status"`
	Version    string   `json:"version"`
	Transports []string `json:"transports"`
	// AuthEnabled is kept at the top level for simple checks.
	AuthEnabled bool     `json:"auth_enabled"`
	Auth        AuthInfo `json:"auth"`
	// Upstreams is each relayed MCP server's state (gateway mode).
	Upstreams []UpstreamHealth `json:"upstreams,omitempty"`
	// Revocation is how fresh this replica's revocation set is.
	Revocation *RevocationHealth `json:"revocation,omitempty"`
	// TrustedIssuers is each trusted identity provider's state: up,
	// pending (keys not fetched yet) or down (its tokens are refused).
	// One that is down does not make the server unhealthy: its callers
	// alone are affected.
	TrustedIssuers []idp.Status `json:"trusted_issuers,omitempty"`
}

// RevocationHealth is the freshness of the revocation set. Stale means
// the set is older than its bound, so the replica refuses tokens (503)
// and /health answers 503 "degraded" to take it out of rotation.
type RevocationHealth struct {
	SyncedAt string `json:"synced_at"`
	Stale    bool   `json:"stale"`
}

// UpstreamHealth is what /health shows of one upstream. Its last error
// is left to the admin tool list_upstreams: errors name internal hosts,
// and /health answers anyone.
type UpstreamHealth struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
	State     string `json:"state"`
	Tools     int    `json:"tools"`
	Prompts   int    `json:"prompts"`
	Resources int    `json:"resources"`
	Calls     int64  `json:"calls"`
	Failures  int64  `json:"failed_calls"`
}

// AuthInfo is the auth configuration that is safe to show: no secret,
// key or client list, only their shape.
type AuthInfo struct {
	Enabled        bool   `json:"enabled"`
	Issuer         string `json:"issuer,omitempty"`
	Algorithm      string `json:"algorithm,omitempty"`
	KeyID          string `json:"kid,omitempty"`
	Audience       string `json:"audience,omitempty"`
	DefaultExpiry  string `json:"default_expiry,omitempty"`
	MaxExpiry      string `json:"max_expiry,omitempty"`
	AllowedClients int    `json:"allowed_clients"`
	TokenAPI       bool   `json:"token_api"`
	Revocation     string `json:"revocation,omitempty"`
}

func health(cfg HTTPConfig) http.HandlerFunc {
	info := cfg.AuthInfo
	info.Enabled = cfg.AuthEnabled
	info.TokenAPI = cfg.TokenAPI != nil && cfg.TokenAPI.APIKey != ""
	h := Health{
		Status:      "ok",
		Version:     cfg.Version,
		Transports:  []string{"streamable-http", "sse", "websocket"},
		AuthEnabled: cfg.AuthEnabled,
		Auth:        info,
	}
	body, _ := json.Marshal(h)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if cfg.Upstreams == nil && cfg.RevocationHealth == nil && cfg.SigningKey == nil && cfg.TrustedIssuerHealth == nil {
			_, _ = w.Write(body)
			return
		}
		h := h // this answer's copy: states change
		if cfg.SigningKey != nil {
			h.Auth.KeyID, h.Auth.Algorithm = cfg.SigningKey()
		}
		if cfg.TrustedIssuerHealth != nil {
			h.TrustedIssuers = cfg.TrustedIssuerHealth()
		}
		if cfg.Upstreams != nil {
			h.Upstreams = cfg.Upstreams()
		}
		if cfg.RevocationHealth != nil {
			rh := cfg.RevocationHealth()
			h.Revocation = &rh
			if rh.Stale {
				h.Status = "degraded"
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}
		_ = json.NewEncoder(w).Encode(h)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(bearer.ErrorBody{Error: code, Description: msg})
}

// statelessMessage answers one JSON-RPC message outside any session (POST
// /sse, as operators' token checks send it): the answer is the response
// body; a notification gets 202. Requests that need a session
// (server-to-client requests, subscriptions) are for /mcp or GET /sse.
func (h *HTTP) statelessMessage(w http.ResponseWriter, r *http.Request) {
	body, checked := checkedBytes(r)
	if !checked {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "Cannot read the request body")
			return
		}
	}
	resp := h.cfg.MCP.HandleMessage(r.Context(), body)
	if resp == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// originOf is the scheme://host part of a URL (a public URL may carry a
// base path).
func originOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return rawURL
	}
	return u.Scheme + "://" + u.Host
}

// underBasePath serves next under prefix: /v1/sse reaches next as /sse.
// The root well-known forms that RFC 9728 and RFC 8414 clients compute
// for a resource or issuer with a path (/.well-known/<name>/v1[/rest])
// reach next as /.well-known/<name>[/rest], and /health stays at the
// root for health checks, as do the token API and health aliases under
// /api/ (the token guide has /api/auth/token beside /v1/sse). Anything
// else outside the prefix is 404.
func underBasePath(prefix string, next http.Handler) http.Handler {
	if prefix == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == prefix || strings.HasPrefix(p, prefix+"/"):
			p = strings.TrimPrefix(p, prefix)
		case p == JWKSPath:
		case strings.HasPrefix(p, "/.well-known/"):
			name, rest, _ := strings.Cut(strings.TrimPrefix(p, "/.well-known/"), "/")
			if rest = "/" + rest; rest != prefix && !strings.HasPrefix(rest, prefix+"/") {
				http.NotFound(w, r)
				return
			}
			p = "/.well-known/" + name + strings.TrimPrefix(rest, prefix)
		case p == "/health", strings.HasPrefix(p, "/api/"):
			// Health checks, and the token API at the root paths the
			// operators' documents name (/api/auth/token) beside /v1/sse.
		default:
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = p, ""
		next.ServeHTTP(w, r2)
	})
}

// signInOff answers dynamic client registration when OAuth sign-in is
// switched off: 400 invalid_client_metadata whose description says there
// is no sign-in and why the token the client sent (spec clients send
// their configured headers here too) was refused, so a person sees
// "Token has expired" instead of a registration 404.
func (h *HTTP) signInOff(w http.ResponseWriter, r *http.Request) {
	why := "No token was sent."
	if tok, err := auth.BearerToken(r); err == nil && h.cfg.TokenAPI != nil && h.cfg.TokenAPI.Verifier != nil {
		if _, err := h.cfg.TokenAPI.Verifier.Verify(tok); err != nil {
			// A failed token here counts against its address as
			// anywhere else, so this is no unthrottled oracle.
			if secs, blocked := (bearer.Guard{Throttle: h.throttle}).Failed(w, bearer.ClientAddress(r)); blocked {
				bearer.WriteTooManyRequests(w, secs)
				return
			}
			why = "The token sent was refused: " + auth.Message(err) + "."
		} else {
			why = "The token sent is valid; the request it was sent with needs a scope the token lacks."
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"error":             "invalid_client_metadata",
		"error_description": "This server does not offer OAuth sign-in: connect with a token in the Authorization header (Bearer <token>). " + why,
	})
}
