package transport_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// kind is one way a real MCP client reaches the server.
type kind struct {
	name string
	// wantVersion is the protocol version the client must negotiate.
	wantVersion string
	connect     func(t *testing.T, base, token string) (*client.Client, error)
}

var kinds = []kind{
	{
		name:        "streamable-http 2026-07-28 (stateless)",
		wantVersion: "2026-07-28",
		connect: func(t *testing.T, base, token string) (*client.Client, error) {
			tr, err := mcptransport.NewStreamableHTTP(base+"/mcp", mcptransport.WithHTTPHeaders(bearerHeader(token)))
			if err != nil {
				return nil, err
			}
			return client.NewClient(tr), nil
		},
	},
	{
		name:        "streamable-http 2025-11-25 (Mcp-Session-Id)",
		wantVersion: "2025-11-25",
		connect: func(t *testing.T, base, token string) (*client.Client, error) {
			tr, err := mcptransport.NewStreamableHTTP(base+"/mcp", mcptransport.WithHTTPHeaders(bearerHeader(token)))
			if err != nil {
				return nil, err
			}
			return client.NewClient(tr, client.WithProtocolVersion("2025-11-25")), nil
		},
	},
	{
		name:        "legacy sse 2025-11-25",
		wantVersion: "2025-11-25",
		connect: func(t *testing.T, base, token string) (*client.Client, error) {
			tr, err := mcptransport.NewSSE(base+"/sse", mcptransport.WithHeaders(bearerHeader(token)))
			if err != nil {
				return nil, err
			}
			return client.NewClient(tr, client.WithProtocolVersion("2025-11-25")), nil
		},
	},
	{
		// mcp-go's SSE client probes server/discover and, finding it,
		// speaks 2026-07-28 over the legacy transport.
		name:        "legacy sse 2026-07-28",
		wantVersion: "2026-07-28",
		connect: func(t *testing.T, base, token string) (*client.Client, error) {
			tr, err := mcptransport.NewSSE(base+"/sse", mcptransport.WithHeaders(bearerHeader(token)))
			if err != nil {
				return nil, err
			}
			return client.NewClient(tr), nil
		},
	},
}

func bearerHeader(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// connect starts and initializes a client; it is closed at test end.
func connect(t *testing.T, k kind, base, token string) (*client.Client, error) {
	t.Helper()
	c, err := k.connect(t, base, token)
	if err != nil {
		return nil, err
	}
	// The SSE transport's event stream lives as long as Start's context,
	// so that context must outlive the test body.
	life, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	if err := c.Start(life); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "mcpauth-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		return nil, err
	}
	return c, nil
}

// structured decodes a result's structured content into v.
func structured(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
}

func TestAdminMintsInspectsAndListsOverEveryTransport(t *testing.T) {
	s := startStack(t, stackOpts{})
	admin := s.mint(t, "admin-console", time.Hour, "admin")
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			c, err := connect(t, k, s.URL, admin)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if got := c.ProtocolVersion(); got != k.wantVersion {
				t.Errorf("negotiated protocol %q, want %q", got, k.wantVersion)
			}
			if got, want := testutil.ToolNames(t, c), []string{"decode_token", "issue_token", "list_clients", "list_keys", "list_tokens", "revoke_token", "whoami"}; !slices.Equal(got, want) {
				t.Fatalf("tools = %v, want %v", got, want)
			}

			var who struct {
				ClientID string   `json:"client_id"`
				Scopes   []string `json:"scopes"`
				Admin    bool     `json:"admin"`
			}
			structured(t, testutil.CallTool(t, c, "whoami", nil), &who)
			if who.ClientID != "admin-console" || !who.Admin || !slices.Equal(who.Scopes, []string{"admin"}) {
				t.Fatalf("whoami = %+v", who)
			}

			before := s.tokenCount(t)
			res := testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": "research-bot", "expires_in": "30d", "scopes": []string{"tools:call"}})
			if res.IsError {
				t.Fatalf("issue_token failed: %s", testutil.Text(res))
			}
			var issued struct {
				Token     string         `json:"token"`
				JTI       string         `json:"jti"`
				ClientID  string         `json:"client_id"`
				Scopes    []string       `json:"scopes"`
				IssuedAt  string         `json:"issued_at"`
				ExpiresAt string         `json:"expires_at"`
				Config    map[string]any `json:"config"`
			}
			structured(t, res, &issued)
			claims, err := s.Verifier.Verify(issued.Token)
			if err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
			if claims.Subject != "research-bot" || claims.ID != issued.JTI || claims.Scope.String() != "tools:call" {
				t.Fatalf("claims = %+v", claims)
			}
			exp, _ := time.Parse(time.RFC3339, issued.ExpiresAt)
			iat, _ := time.Parse(time.RFC3339, issued.IssuedAt)
			if exp.Sub(iat) != 30*24*time.Hour {
				t.Errorf("lifetime = %v, want 30d", exp.Sub(iat))
			}
			if s.tokenCount(t) != before+1 {
				t.Errorf("registry has %d tokens, want %d", s.tokenCount(t), before+1)
			}
			rec, err := s.Reg.Get(context.Background(), issued.JTI)
			if err != nil || rec.ClientID != "research-bot" || rec.IssuedBy != "admin-console" {
				t.Fatalf("registry record = %+v, %v", rec, err)
			}
			txt := testutil.Text(res)
			for _, want := range []string{issued.Token, "mcpServers", s.URL + "/sse", "Bearer " + issued.Token, issued.ExpiresAt} {
				if !strings.Contains(txt, want) {
					t.Errorf("issue_token text lacks %q", want)
				}
			}

			var dec struct {
				Valid          bool           `json:"valid"`
				SignatureValid bool           `json:"signature_valid"`
				Claims         map[string]any `json:"claims"`
				Header         map[string]any `json:"header"`
			}
			structured(t, testutil.CallTool(t, c, "decode_token", map[string]any{"token": issued.Token}), &dec)
			if !dec.Valid || !dec.SignatureValid || dec.Claims["sub"] != "research-bot" || dec.Header["alg"] != "HS256" {
				t.Fatalf("decode_token = %+v", dec)
			}
			structured(t, testutil.CallTool(t, c, "decode_token", map[string]any{"token": "not-a-jwt"}), &dec)
			if dec.Valid {
				t.Fatal("decode_token says garbage is valid")
			}

			var list struct {
				Clients []struct {
					ClientID     string   `json:"client_id"`
					ActiveTokens int      `json:"active_tokens"`
					Scopes       []string `json:"scopes"`
				} `json:"clients"`
			}
			structured(t, testutil.CallTool(t, c, "list_clients", nil), &list)
			found := false
			for _, cl := range list.Clients {
				if cl.ClientID == "research-bot" {
					found = cl.ActiveTokens >= 1 && slices.Contains(cl.Scopes, "tools:call")
				}
			}
			if !found {
				t.Fatalf("list_clients lacks research-bot: %+v", list)
			}

			type tokenRow struct {
				JTI    string `json:"jti"`
				Status string `json:"status"`
			}
			var toks struct {
				Tokens []tokenRow `json:"tokens"`
			}
			structured(t, testutil.CallTool(t, c, "list_tokens", map[string]any{"client_id": "research-bot"}), &toks)
			if !slices.Contains(toks.Tokens, tokenRow{issued.JTI, "active"}) {
				t.Fatalf("list_tokens lacks the minted jti %s: %+v", issued.JTI, toks)
			}
		})
	}
}

func TestNonAdminSeesOnlyWhoamiAndCannotCallAdminTools(t *testing.T) {
	s := startStack(t, stackOpts{})
	user := s.mint(t, "plain-user", time.Hour, "tools:call")
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			c, err := connect(t, k, s.URL, user)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if got := testutil.ToolNames(t, c); !slices.Equal(got, []string{"whoami"}) {
				t.Fatalf("tools = %v, want only whoami", got)
			}
			before := s.tokenCount(t)
			for _, name := range []string{"issue_token", "decode_token", "list_clients", "list_tokens", "revoke_token"} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				req := mcp.CallToolRequest{}
				req.Params.Name = name
				req.Params.Arguments = map[string]any{"client_id": "evil", "token": "x"}
				res, err := c.CallTool(ctx, req)
				cancel()
				if err == nil && !res.IsError {
					t.Errorf("%s succeeded for a non-admin: %s", name, testutil.Text(res))
				}
			}
			if s.tokenCount(t) != before {
				t.Error("a refused call minted a token")
			}
			var who struct {
				ClientID string `json:"client_id"`
			}
			structured(t, testutil.CallTool(t, c, "whoami", nil), &who)
			if who.ClientID != "plain-user" {
				t.Fatalf("whoami = %+v", who)
			}
		})
	}
}

func TestClientsWithoutValidTokenCannotConnect(t *testing.T) {
	s := startStack(t, stackOpts{})
	cases := map[string]string{
		"no token":      "",
		"garbage token": "abc.def.ghi",
		"wrong secret":  signedWith(t, "another-secret-another-secret-0123456789", "x"),
	}
	for _, k := range kinds {
		for name, tok := range cases {
			t.Run(k.name+"/"+name, func(t *testing.T) {
				if _, err := connect(t, k, s.URL, tok); err == nil {
					t.Fatal("connected without a valid token")
				}
			})
		}
	}
}

func listReq() mcp.ListToolsRequest { return mcp.ListToolsRequest{} }
