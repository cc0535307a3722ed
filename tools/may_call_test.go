package tools_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/tools"
	"github.com/mcpauth/mcpauth/transport"
)

// Rule: whoami's may_call, remembered between calls, follows the tools
// the server offers (a new tool counts once the tool-set version moves,
// as the gateway moves it after every change) and a policy reload.
func TestMayCallFollowsToolChangesAndPolicyReloads(t *testing.T) {
	var version atomic.Uint64
	holder := &policy.Holder{}
	ts := tools.New(tools.Deps{ToolsVersion: version.Load, Policy: holder})
	p, err := policy.New(policy.Config{}, policy.Need{}, ts.Builtins()...)
	if err != nil {
		t.Fatal(err)
	}
	holder.Store(p)
	srv := transport.NewMCPServer(ts, "test")
	noop := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}
	srv.AddTool(mcp.NewTool("up__a"), noop)

	mayCall := func() []string {
		t.Helper()
		out := srv.HandleMessage(adminCtx(), json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`))
		b, _ := json.Marshal(out)
		var r struct {
			Result struct {
				StructuredContent tools.WhoamiResult `json:"structuredContent"`
			} `json:"result"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("whoami: %s", b)
		}
		return r.Result.StructuredContent.MayCall
	}
	if got := mayCall(); !slices.Contains(got, "up__a") || slices.Contains(got, "up__b") {
		t.Fatalf("may_call = %v, want up__a and no up__b", got)
	}
	srv.AddTool(mcp.NewTool("up__b"), noop)
	version.Add(1) // what the gateway does after registering a change
	if got := mayCall(); !slices.Contains(got, "up__b") {
		t.Fatalf("may_call after the tools changed = %v, want up__b", got)
	}
	deny := policy.Requirement{}
	if err := json.Unmarshal([]byte(`"deny"`), &deny); err != nil {
		t.Fatal(err)
	}
	p, err = policy.New(policy.Config{Tools: map[string]policy.Requirement{"up__a": deny}}, policy.Need{}, ts.Builtins()...)
	if err != nil {
		t.Fatal(err)
	}
	holder.Store(p)
	if got := mayCall(); slices.Contains(got, "up__a") || !slices.Contains(got, "up__b") {
		t.Fatalf("may_call after the policy denied up__a = %v", got)
	}
}

// Rule: whoami's remembered answer is, on the wire, exactly the answer
// built afresh (the structured content as mcp.NewToolResultStructured
// encodes it and the text), for the same token; another token with the
// same scopes gets its own.
func TestWhoamiRememberedAnswerIsTheFreshOne(t *testing.T) {
	holder := &policy.Holder{}
	ts := tools.New(tools.Deps{Policy: holder})
	p, err := policy.New(policy.Config{}, policy.Need{}, ts.Builtins()...)
	if err != nil {
		t.Fatal(err)
	}
	holder.Store(p)
	srv := transport.NewMCPServer(ts, "test")
	call := func(ctx context.Context) string {
		t.Helper()
		b, _ := json.Marshal(srv.HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)))
		return string(b)
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	claims := func(sub, jti string) *auth.Claims {
		c := &auth.Claims{Scope: auth.Scopes{"admin", "x<&>"}}
		c.Subject, c.ID, c.Issuer, c.ExpiresAt = sub, jti, "mcpauth", jwt.NewNumericDate(exp)
		return c
	}
	a := auth.WithClaims(context.Background(), claims("client-\u2028<a>", "j1"))
	first := call(a)
	if again := call(a); again != first {
		t.Fatalf("remembered answer differs:\n%s\n%s", first, again)
	}
	fresh := mcp.NewToolResultStructured(tools.WhoamiResult{
		ClientID: "client-\u2028<a>", Scopes: []string{"admin", "x<&>"}, JTI: "j1", Issuer: "mcpauth",
		ExpiresAt: ptr("2030-01-02T03:04:05Z"), Admin: true, MayCall: []string{"decode_token", "issue_token", "list_clients", "revoke_token", "whoami"},
	}, "You are \"client-\\u2028<a>\" with scopes [admin x<&>]; your token expires: 2030-01-02T03:04:05Z.\nYou may call: decode_token, issue_token, list_clients, revoke_token, whoami.")
	want, _ := json.Marshal(mcp.NewJSONRPCResultResponse(mcp.NewRequestId(int64(1)), fresh))
	if first != string(want) {
		t.Fatalf("whoami answered\n%s\nbuilt afresh it is\n%s", first, want)
	}
	if other := call(auth.WithClaims(context.Background(), claims("client-b", "j2"))); !strings.Contains(other, `"client_id":"client-b"`) || !strings.Contains(other, `"jti":"j2"`) {
		t.Fatalf("another token got %s", other)
	}
}
