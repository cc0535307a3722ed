package tools_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

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
