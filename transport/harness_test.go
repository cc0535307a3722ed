package transport_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/auth/revocation"
	"github.com/mcpauth/mcpauth/tools"
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
}

type stackOpts struct {
	now            func() time.Time
	stateless      bool
	apiKey         string
	cors           []string
	throttle       auth.Throttle
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
}

// startStack starts the full server (registry, issuer, verifier, tools,
// transports, auth middleware) on 127.0.0.1:0 and stops it at test end.
func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.OpenSQLite(ctx, filepath.Join(t.TempDir(), "reg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	issuer, err := auth.NewIssuer(auth.IssuerConfig{
		Secret: []byte(testSecret), Issuer: "mcpauth-test", MaxLifetime: 365 * 24 * time.Hour, Now: o.now,
		AllowedClients: o.allowedClients, Audience: o.audience, KnownScopes: o.knownScopes,
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	revoked := auth.NewRevocationSet()
	var as *oauth.Server
	// Audit records are counted in /metrics, as in the binary.
	var h *transport.HTTP // read by the metrics' session gauge
	metrics := transport.NewMetrics(func() int { return h.OpenSessions() })
	logger := slog.New(metrics.CountingHandler(slog.DiscardHandler))
	revoker := revocation.New(revocation.Config{Store: reg, Set: revoked, Now: o.now,
		OnRevoke: func(ctx context.Context, toks []registry.Token) {
			if as != nil {
				as.RevokeRefresh(ctx, toks)
			}
		}})
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Secret: []byte(testSecret), Issuer: "mcpauth-test", Now: o.now, Revoked: revoked, AllowedClients: o.allowedClients,
		Audience: o.audience, Resources: []string{base + "/mcp", base, base + "/sse"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.oauth {
		as, err = oauth.New(oauth.Config{
			Issuer: base, Resources: []string{base + "/mcp", base, base + "/sse"},
			Store: reg, Minter: issuer, Revoker: revoker, Inspector: verifier, Throttle: o.throttle,
			ScopesSupported: []string{"admin", "tools:call"}, AllowLoopbackRedirects: true, AllowLoopbackMetadata: o.loopbackMetadata, Now: o.now,
			Pending: o.pending, Logger: logger,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ts := tools.New(tools.Deps{
		Minter: issuer, Inspector: verifier, Clients: reg, Revoker: revoker, Tokens: reg, OAuth: oauthAdmin(as),
		DefaultExpiry: auth.Expiry{Duration: 30 * 24 * time.Hour},
		PublicURL:     base, Issuer: "mcpauth-test", Now: o.now,
	})
	proxies, err := transport.ParseTrustedProxies(o.trustedProxies)
	if err != nil {
		t.Fatal(err)
	}
	mcpServer := transport.NewMCPServer(ts, "test")
	h = transport.NewHTTP(transport.HTTPConfig{
		TrustedProxies: proxies,
		KeepAlive:      o.keepAlive,
		MCP:            mcpServer,
		ToolScope:      ts.RequiredScope,
		Auth: auth.Middleware(auth.MiddlewareConfig{
			Verifier: verifier, Throttle: o.throttle, ResourceMetadata: base + "/.well-known/oauth-protected-resource",
		}),
		PublicURL:       base,
		ScopesSupported: []string{"admin", "tools:call"},
		CORSOrigins:     o.cors,
		Throttle:        o.throttle,
		TokenAPI: &transport.TokenAPIConfig{
			APIKey: o.apiKey, Minter: issuer, Verifier: verifier,
			DefaultExpiry: auth.Expiry{Duration: 30 * 24 * time.Hour},
		},
		AuthInfo:            transport.AuthInfo{Issuer: "mcpauth-test", Algorithm: "HS256", DefaultExpiry: "30d", MaxExpiry: "365d"},
		OAuth:               oauthRoutes(as),
		AuthEnabled:         true,
		Version:             "test",
		Logger:              logger,
		Revoked:             revoked,
		ReapInterval:        100 * time.Millisecond,
		Stateless:           o.stateless,
		Timeouts:            o.timeouts,
		AllowedHosts:        o.allowedHosts,
		MaxStreamsPerClient: o.maxStreams,

		// Limits on state and what they refused.
		MaxSessionsPerClient: o.maxSessions,
		SSEWriteTimeout:      o.sseWriteTimeout,
		Metrics:              metrics,
	})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- transport.Serve(sctx, ln, h, logger) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("server shutdown: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not shut down")
		}
	})
	return &stack{URL: base, Reg: reg, Issuer: issuer, Verifier: verifier, HTTP: h, Revoker: revoker, OAuth: as, MCP: mcpServer}
}

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

// oauthRoutes avoids a typed-nil interface when OAuth is off.
func oauthRoutes(as *oauth.Server) interface{ Routes(*http.ServeMux) } {
	if as == nil {
		return nil
	}
	return as
}

func oauthAdmin(as *oauth.Server) tools.OAuthAdmin {
	if as == nil {
		return nil
	}
	return as
}
