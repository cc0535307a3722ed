package tools

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
)

// BenchmarkIssueRender is the part of one issue_token call that renders
// the answer: the structured content, the text, and the result encoded
// as mcp-go encodes it into the JSON-RPC response (no registry, no
// transport).
func BenchmarkIssueRender(b *testing.B) {
	ct := newConfigTemplates("mcpauth", Endpoints{Base: "http://127.0.0.1:8080"})
	i := Issued{
		Token: auth.IssuedToken{
			Token: "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzLWxpbEpUMkhCVW8tUUg3YW11RnU3S3ciLCJ0eXAiOiJKV1QifQ." +
				"eyJpc3MiOiJtY3BhdXRoIiwic3ViIjoiYmVuY2gtdG9vbC1taW50IiwiZXhwIjoxNzk2MTM2MDk0LCJuYmYiOjE3OTYxMzI0OTQsImlhdCI6MTc5NjEzMjQ5NCwianRpIjoiMTQ3YTgyZWZiOTdjM2MxMTNiNWU1NmQ0MDFhZjlmYzUiLCJzY29wZSI6InRvb2xzOmNhbGwifQ." +
				"kUxitTsitj8VJ5SL48JKq6CW44afQJP1RyGI02CI6V4",
			JTI: "147a82efb97c3c113b5e56d401af9fc5", ClientID: "bench-tool-mint", Scopes: auth.Scopes{"tools:call"},
			IssuedAt: time.Unix(1796132494, 0), ExpiresAt: time.Unix(1796136094, 0),
		},
		Expiry: auth.Expiry{Duration: time.Hour}, PublicURL: "http://127.0.0.1:8080", ServerName: "mcpauth", Issuer: "mcpauth",
	}
	if !ct.serves(i) {
		b.Fatal("the templates do not serve the bench token")
	}
	resp := struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Result  any    `json:"result"`
	}{JSONRPC: "2.0", ID: 9}
	b.ReportAllocs()
	for b.Loop() {
		resp.Result = mcp.NewToolResultStructured(ct.wire(i), i.text(ct))
		if _, err := json.Marshal(resp); err != nil {
			b.Fatal(err)
		}
	}
}
