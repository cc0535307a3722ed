package mcpauth_test

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/idp"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

// Rule: the library needs no public URL to serve over stdio (an embedded
// or local use has no address for OAuth endpoints); asking it to serve
// OAuth without one is a clear error.
func TestNewServesStdioWithoutAPublicURL(t *testing.T) {
	ctx := context.Background()
	cfg := mcpauth.Config{
		Secret:      []byte("library-test-secret-0123456789abcdef"),
		DatabaseURL: filepath.Join(t.TempDir(), "lib.db"),
		DefaultDeny: true,
		Tools: []mcpauth.Tool{{
			Tool: mcp.NewTool("ping_crm"),
			Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText("pong"), nil
			},
			Scopes: []string{"crm:read"},
		}},
	}
	srv, err := mcpauth.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New without PublicURL: %v", err)
	}
	defer srv.Close()

	reader := &auth.Claims{Scope: auth.Scopes{"crm:read"}}
	reader.Subject = "reader"
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.ServeStdio(sctx, reader, inR, outW, io.Discard) }()
	defer func() { cancel(); inW.Close(); <-done; outR.Close() }()
	exchange := testutil.Exchange(inW, outR, 10*time.Second)
	send := func(msg string) map[string]any { t.Helper(); return exchange(t, msg) }
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	go func() { _, _ = io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n") }()
	res := send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ping_crm","arguments":{}}}`)
	if b, _ := json.Marshal(res); !strings.Contains(string(b), "pong") {
		t.Fatalf("ping_crm = %s", b)
	}
	res = send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`)
	if b, _ := json.Marshal(res); !strings.Contains(string(b), "insufficient_scope") {
		t.Fatalf("issue_token as a reader = %s", b)
	}

	cfg.OAuth.Serve = true
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "lib2.db")
	if _, err := mcpauth.New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "PublicURL") {
		t.Fatalf("New serving OAuth without PublicURL: %v", err)
	}
}

// Rule: a revoked token is refused for as long as the verifier would
// otherwise accept it. The revocation set may forget a jti only once its
// token is expired beyond the verifier's leeway; with Config.Leeway left
// at zero the verifier tolerates auth.DefaultLeeway, so the set must keep
// the jti that long too (it used to prune at exp, and the revoked token
// was accepted again for the last 30 s of its leeway).
func TestRevokedTokenStaysRefusedWithinTheLeeway(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	srv, err := mcpauth.New(ctx, mcpauth.Config{
		Secret:      []byte("library-test-secret-0123456789abcdef"),
		DatabaseURL: filepath.Join(t.TempDir(), "lib.db"),
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	admin := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	admin.Subject = "admin"
	tok, err := srv.Issuer.Issue(ctx, auth.IssueRequest{ClientID: "laptop", Expiry: auth.Expiry{Duration: time.Minute}, Caller: admin, Via: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Revoker.RevokeJTI(ctx, tok.JTI, "admin", "stolen"); err != nil {
		t.Fatal(err)
	}
	for _, after := range []time.Duration{0, time.Second, auth.DefaultLeeway / 2, auth.DefaultLeeway - time.Second} {
		now = tok.ExpiresAt.Add(after)
		if err := srv.Revoker.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Verifier.Verify(tok.Token); err == nil {
			t.Fatalf("%s after its expiry (leeway %s), the revoked token was accepted", after, auth.DefaultLeeway)
		}
	}
}

// Rule: a trusted identity provider may not share an issuer with this
// server's own tokens (they would be sent to it), and needs an audience
// when the server has no public URL to default to.
func TestTrustedIssuersCannotTakeTheServersOwnIssuer(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  mcpauth.Config
		want string
	}{
		{mcpauth.Config{Issuer: "https://login.example.com", PublicURL: "https://mcp.example.com"}, "this server's own issuer"},
		{mcpauth.Config{PublicURL: "https://login.example.com"}, "this server's own issuer"},
		{mcpauth.Config{LegacyIssuers: []string{"https://login.example.com"}, PublicURL: "https://mcp.example.com"}, "this server's own issuer"},
		{mcpauth.Config{}, "needs an audience"},
	} {
		cfg := tc.cfg
		cfg.Secret = []byte("library-test-secret-0123456789abcdef")
		cfg.DatabaseURL = filepath.Join(t.TempDir(), "lib.db")
		cfg.TrustedIssuers = []idp.Provider{{Name: "corp", Issuer: "https://login.example.com"}}
		if srv, err := mcpauth.New(ctx, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			if srv != nil {
				srv.Close()
			}
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// Rule: with registry-kept keys, the JWK Set a program serves before New
// returns (for upstreams that verify the tokens mcpauth mints for them)
// already holds the key New signs with.
func TestEarlyJWKSHoldsTheRegistryKeptSigningKey(t *testing.T) {
	cfg := mcpauth.Config{
		Secret:              []byte("library-test-secret-0123456789abcdef"),
		KeyEncryptionSecret: []byte("library-test-kek-0123456789abcdefghij"),
		KeyAlg:              "ES256",
		DatabaseURL:         filepath.Join(t.TempDir(), "lib.db"),
	}
	doc, err := cfg.JWKS()
	if err != nil {
		t.Fatalf("JWKS before New: %v", err)
	}
	var set struct {
		Keys []struct{ Kid, Alg string } `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Alg != "ES256" {
		t.Fatalf("JWKS before New = %s (%v), want one ES256 key", doc, err)
	}
	srv, err := mcpauth.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := srv.Keys.Active().ID(); got != set.Keys[0].Kid {
		t.Fatalf("New signs with %s, the early JWK Set published %s", got, set.Keys[0].Kid)
	}
}
