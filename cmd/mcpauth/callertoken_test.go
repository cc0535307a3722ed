package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// jwksUpstream is an MCP server that admits only requests whose Bearer
// token verifies with the keys mcpauth publishes (its JWKS, fetched on
// the first request and again for an unknown kid) and is granted for it
// (aud). Its tool answers with the verified claims it was called with.
type jwksUpstream struct {
	jwksURL, issuer string
	url             string

	mu       sync.Mutex
	keys     jose.JSONWebKeySet
	fetches  int
	received []string // raw Authorization headers
	refused  []string
}

func (u *jwksUpstream) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	u.mu.Lock()
	defer u.mu.Unlock()
	if ks := u.keys.Key(kid); len(ks) > 0 {
		return ks[0].Key, nil
	}
	resp, err := http.Get(u.jwksURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	u.fetches++
	if err := json.NewDecoder(resp.Body).Decode(&u.keys); err != nil {
		return nil, fmt.Errorf("jwks (%d): %w", resp.StatusCode, err)
	}
	if ks := u.keys.Key(kid); len(ks) > 0 {
		return ks[0].Key, nil
	}
	return nil, errors.New("unknown kid")
}

type upstreamClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
}

type claimsKey struct{}

func (u *jwksUpstream) handler() http.Handler {
	s := server.NewMCPServer("jwks-upstream", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("who"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c := ctx.Value(claimsKey{}).(*upstreamClaims)
		return mcp.NewToolResultText(fmt.Sprintf("sub=%s aud=%s scope=%s", c.Subject, strings.Join(c.Audience, ","), c.Scope)), nil
	})
	mcpHandler := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		c, _ := r.Context().Value(claimsKey{}).(*upstreamClaims)
		return context.WithValue(ctx, claimsKey{}, c)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parser := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(u.issuer), jwt.WithAudience(u.url), jwt.WithExpirationRequired())
		h := r.Header.Get("Authorization")
		u.mu.Lock()
		u.received = append(u.received, h)
		u.mu.Unlock()
		c := &upstreamClaims{}
		if _, err := parser.ParseWithClaims(strings.TrimPrefix(h, "Bearer "), c, u.key); err != nil {
			u.mu.Lock()
			u.refused = append(u.refused, r.Method+" "+r.URL.Path+": "+err.Error())
			u.mu.Unlock()
			http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
			return
		}
		mcpHandler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// Rule: an HTTP upstream whose entry asks for "callerToken" gets a token
// mcpauth mints for it alone, verifiable from mcpauth's JWKS: sub is the
// caller, scopes the caller's within the entry's, aud the upstream. The
// upstream can fetch the keys while mcpauth is still starting (mcpauth
// connects it before it serves MCP), never sees the caller's own token,
// and cannot replay the token it got against mcpauth.
func TestCallerTokenUpstreamVerifiesTokensFromTheJWKS(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if _, errOut, code := run(t, testEnv(t), "", "key", "generate", "--alg", "ES256", "--out", keyFile); code != 0 {
		t.Fatalf("key generate: %s", errOut)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	up := &jwksUpstream{jwksURL: base + "/.well-known/jwks.json", issuer: "mcpauth"}
	srv := httptest.NewServer(up.handler())
	t.Cleanup(srv.Close)
	up.url = srv.URL + "/mcp"

	doc := fmt.Sprintf(`{"mcpServers": {"crm": {"url": %q, "callerToken": {"scopes": ["crm:read"], "lifetime": "2m"}}},
		"policy": {"tools": {"crm__*": ["crm:read"]}}}`, up.url)
	file := filepath.Join(t.TempDir(), "upstreams.json")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEnv(t, "MCP_UPSTREAMS="+file, "MCP_SIGNING_ALG=ES256", "MCP_SIGNING_KEY_FILE="+keyFile, "MCP_PUBLIC_URL="+base)
	alice := issue(t, e, "alice", "1h", "--scope", "crm:read", "--scope", "crm:write").Token
	t.Cleanup(func() {
		if t.Failed() {
			up.mu.Lock()
			t.Logf("the upstream refused: %q", up.refused)
			up.mu.Unlock()
		}
	})
	addr, _, logs := startServerLogged(t, e, "--addr", fmt.Sprintf("127.0.0.1:%d", port))

	res := testutil.CallTool(t, relayClient(t, addr, alice), "crm__who", map[string]any{})
	if got := testutil.Text(res); res.IsError || got != "sub=alice aud="+up.url+" scope=crm:read" {
		t.Fatalf("crm__who = %+v", res)
	}
	up.mu.Lock()
	received, refused, fetches := append([]string{}, up.received...), up.refused, up.fetches
	up.mu.Unlock()
	if len(refused) > 0 || fetches == 0 {
		t.Fatalf("the upstream refused %q (JWKS fetches: %d)", refused, fetches)
	}
	var minted string
	for _, h := range received {
		if strings.Contains(h, alice) {
			t.Fatal("the caller's own token reached the upstream")
		}
		minted = strings.TrimPrefix(h, "Bearer ")
	}
	// The token the upstream got is no good at mcpauth itself.
	resp := postMCP(t, addr, minted, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "another resource") {
		t.Fatalf("the upstream's token at mcpauth: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), `"event":"token.delegated"`) {
		t.Fatal("no token.delegated audit record")
	}
	if strings.Contains(logs.String(), minted) {
		t.Fatal("a minted token was logged")
	}
}

// Rule: "callerToken" with an HS256 signing key is refused at start: the
// upstream could verify such tokens only with the secret that signs every
// mcpauth token.
func TestCallerTokenNeedsAnAsymmetricKey(t *testing.T) {
	doc := `{"mcpServers": {"crm": {"url": "http://127.0.0.1:1/mcp", "callerToken": {}}}}`
	file := filepath.Join(t.TempDir(), "upstreams.json")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, testEnv(t, "MCP_UPSTREAMS="+file), "", "serve", "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, `upstream "crm": "callerToken": tokens for upstream servers need an asymmetric signing key`) {
		t.Fatalf("serve with callerToken and HS256: exit %d, %s", code, errOut)
	}
}
