package tools_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/tools"
	"github.com/mcpauth/mcpauth/transport"
)

// BenchmarkIssueTokenTool is one issue_token call through mcp-go's
// HandleMessage with a durable SQLite write: the server's CPU per mint
// minus HTTP.
func BenchmarkIssueTokenTool(b *testing.B) {
	ctx := context.Background()
	reg, err := registry.OpenSQLite(ctx, filepath.Join(b.TempDir(), "reg.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	issuer, err := auth.NewIssuer(auth.IssuerConfig{Secret: testSecret, Issuer: testIssuer, MaxLifetime: maxLife}, reg)
	if err != nil {
		b.Fatal(err)
	}
	ts := tools.New(tools.Deps{
		Minter: issuer, Clients: reg, Tokens: reg, DefaultExpiry: auth.Expiry{Duration: defaultLife},
		PublicURL: "https://mcp.example.test/", ServerName: "mcpauth-bench", Issuer: testIssuer,
	})
	srv := transport.NewMCPServer(ts, "bench")
	actx := adminCtx()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"bench-%d","expires_in":"1h"}}}`, i, i%64)
		if resp := srv.HandleMessage(actx, []byte(msg)); resp == nil {
			b.Fatal("no answer")
		}
	}
}
