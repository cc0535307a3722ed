package transport_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/auth/revocation"
	"github.com/mcpauth/mcpauth/tools/upstream"
	"github.com/mcpauth/mcpauth/transport"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

// stack is a real mcpauth server on a loopback port.
type stack struct {
	URL      string
	Reg      *registry.SQLite
	Issuer   *auth.Issuer
	Verifier *auth.Verifier
	HTTP     *transport.HTTP
	Revoker  *revocation.Service
	OAuth    *oauth.Server
	MCP      *server.MCPServer
	Server   *mcpauth.Server
	// stop shuts the server down gracefully and waits (also at cleanup).
	stop func()
}

type stackOpts struct {
	now            func() time.Time
	stateless      bool
	apiKey         string
	cors           []string
	throttle       bearer.Throttle
	allowedClients []string
	timeouts       transport.Timeouts
	maxStreams     int
	maxSessions    int
	allowedHosts   []string
	audience       string
	knownScopes    []string
	oauth          bool
	trustedProxies []string
	keepAlive      time.Duration
	// loopbackMetadata lets client id metadata documents be served on
	// loopback over http (tests serve them with httptest).
	loopbackMetadata bool

	// sseWriteTimeout bounds each write to a legacy SSE stream.
	sseWriteTimeout time.Duration
	// pending bounds pending OAuth authorization requests (zero fields:
	// the defaults).
	pending oauth.PendingLimits
	// maxClients bounds dynamically registered OAuth clients (0: the
	// default).
	maxClients int
	// tools are served beside mcpauth's own (as a library user's are).
	tools []mcpauth.Tool
	// upstreams are relayed (gateway mode): the server then advertises
	// list changes, which subscriptions/listen streams wait for.
	upstreams []upstream.Entry
	// wsAuthTimeout bounds a WebSocket connection's wait for its token.
	wsAuthTimeout time.Duration
	// logs, when set, receives the server's log records as JSON lines.
	logs io.Writer
	// signingKey, when set, signs instead of the test secret (which
	// still verifies).
	signingKey *keys.Key
	// basePath serves every endpoint under this prefix ("/v1").
	basePath string
}

// startStack starts the full server (mcpauth.New: registry, issuer,
// verifier, tools, transports, auth middleware) on 127.0.0.1:0 and stops
// it at test end.
func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.OpenSQLite(ctx, filepath.Join(t.TempDir(), "reg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + o.basePath
	proxies, err := transport.ParseTrustedProxies(o.trustedProxies)
	if err != nil {
		t.Fatal(err)
	}
	throttle := o.throttle
	if throttle == nil {
		throttle = noThrottle{}
	}
	// Audit records are counted in /metrics, as in the binary.
	var srv *mcpauth.Server // read by the metrics' session gauge
	metrics := transport.NewMetrics(func() int {
		if srv == nil {
			return 0
		}
		return srv.HTTP.OpenSessions()
	})
	var logTo slog.Handler = slog.DiscardHandler
	if o.logs != nil {
		logTo = slog.NewJSONHandler(o.logs, nil)
	}
	logger := slog.New(metrics.CountingHandler(logTo))
	srv, err = mcpauth.New(ctx, mcpauth.Config{
		Secret: []byte(testSecret), Issuer: "mcpauth-test", Audience: o.audience, PublicURL: base, Registry: reg,
		AllowedClients: o.allowedClients, Scopes: o.knownScopes, AdvertiseScopes: []string{"tools:call"},
		ReservedSubjects: []string{"local-admin"}, Throttle: throttle,
		OAuth: mcpauth.OAuthConfig{Serve: o.oauth, AllowLoopbackRedirects: true, AllowLoopbackMetadata: o.loopbackMetadata,
			Pending: o.pending, MaxClients: o.maxClients},
		APIKey: o.apiKey, CORSOrigins: o.cors, TrustedProxies: proxies, MaxStreamsPerClient: o.maxStreams,
		Stateless: o.stateless, Version: "test", Logger: logger, Now: o.now,
		KeepAlive: o.keepAlive, ReapInterval: 100 * time.Millisecond, Timeouts: o.timeouts, AllowedHosts: o.allowedHosts,
		// Limits on state and what they refused.
		WSAuthTimeout: o.wsAuthTimeout, SigningKey: o.signingKey, BasePath: o.basePath,
		MaxSessionsPerClient: o.maxSessions, SSEWriteTimeout: o.sseWriteTimeout, Metrics: metrics, Tools: o.tools,
		Upstreams: o.upstreams,
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- transport.Serve(sctx, ln, srv.HTTP, logger) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("server shutdown: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("server did not shut down")
			}
			_ = srv.Close() // the gateway's connections to its upstreams, if any
		})
	}
	t.Cleanup(stop)
	as := srv.OAuth
	if !o.oauth {
		as = nil
	}
	return &stack{URL: base, Reg: reg, Issuer: srv.Issuer, Verifier: srv.Verifier, HTTP: srv.HTTP, Revoker: srv.Revoker, OAuth: as, MCP: srv.MCP, Server: srv, stop: stop}
}

// noThrottle never limits: tests that do not test throttling are not
// slowed by their own failed attempts.
type noThrottle struct{}

func (noThrottle) Blocked(string) (time.Duration, bool) { return 0, false }
func (noThrottle) Fail(string)                          {}

// mint issues a recorded token as a local admin.
func (s *stack) mint(t *testing.T, clientID string, d time.Duration, scopes ...string) string {
	t.Helper()
	admin := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	admin.Subject = "test-admin"
	tok, err := s.Issuer.Issue(context.Background(), auth.IssueRequest{
		ClientID: clientID, Expiry: auth.Expiry{Duration: d}, Scopes: scopes, Caller: admin,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func (s *stack) tokenCount(t *testing.T) int {
	t.Helper()
	toks, err := s.Reg.ListTokens(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return len(toks)
}

// toolScope is the stack's policy as the transports see it.
func toolScope(s *stack) func(string) string { return s.Server.Toolset.RequiredScope }

// relayedUpstream serves an mcp-go Streamable HTTP server with one tool,
// for stacks in gateway mode.
func relayedUpstream(t *testing.T) []upstream.Entry {
	t.Helper()
	up := server.NewMCPServer("up", "1", server.WithToolCapabilities(true))
	up.AddTool(mcp.NewTool("ping"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("pong"), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(srv.Close)
	return []upstream.Entry{{Name: "up", URL: srv.URL + "/mcp"}}
}
