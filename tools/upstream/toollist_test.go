package upstream

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// richInputSchema and richOutputSchema use what mcp-go's schema structs
// drop or rewrite: $schema, title, a keyword they do not know
// (minProperties), and draft-07 "definitions" with a $ref into them.
const richInputSchema = `{
	"$schema": "https://json-schema.org/draft/2020-12/schema",
	"title": "Order",
	"type": "object",
	"$defs": {"item": {"type": "string"}},
	"properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
	"required": ["items"],
	"additionalProperties": false,
	"minProperties": 1
}`

const richOutputSchema = `{
	"$schema": "http://json-schema.org/draft-07/schema#",
	"type": "object",
	"definitions": {"n": {"type": "number"}},
	"properties": {"total": {"$ref": "#/definitions/n"}}
}`

// listedTools starts a gateway for e and returns its tools/list result's
// tools by name, as JSON.
func listedTools(t *testing.T, e Entry) map[string]listedTool {
	t.Helper()
	g := New([]Entry{e}, Options{Env: []string{"PATH=" + os.Getenv("PATH")}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx, nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(g.Close)
	out, err := json.Marshal(gatewayServer(g).HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Result struct {
			Tools      []listedTool `json:"tools"`
			NextCursor string       `json:"nextCursor"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Result.NextCursor != "" {
		t.Fatalf("tools/list: %v: %s", err, out)
	}
	tools := map[string]listedTool{}
	for _, tool := range res.Result.Tools {
		tools[tool.Name] = tool
	}
	return tools
}

type listedTool struct {
	Name         string          `json:"name"`
	InputSchema  json.RawMessage `json:"inputSchema"`
	OutputSchema json.RawMessage `json:"outputSchema"`
}

// Rule: a tool's inputSchema and outputSchema reach callers as the
// upstream wrote them, every keyword kept (MCP 2025-11-25, SEP-1613).
func TestToolSchemasAreRelayedVerbatim(t *testing.T) {
	tool, ok := listedTools(t, stdioEntry("go"))["go__schemas"]
	if !ok {
		t.Fatal("go__schemas not listed")
	}
	sameJSON(t, "inputSchema", tool.InputSchema, richInputSchema)
	sameJSON(t, "outputSchema", tool.OutputSchema, richOutputSchema)
}

// Rule: the gateway reads every page of an upstream's tools, whatever
// the transport.
func TestToolListingFollowsEveryPage(t *testing.T) {
	paged := testUpstream()
	server.WithPaginationLimit(3)(paged)
	up := httptest.NewServer(server.NewStreamableHTTPServer(paged))
	t.Cleanup(up.Close) // after the gateway's own cleanup closes its connection
	tools := listedTools(t, Entry{Name: "web", URL: up.URL + "/mcp"})
	all := testUpstream().ListTools()
	if len(tools) != len(all) || len(all) <= 3 {
		t.Fatalf("listed %d tools, want the upstream's %d", len(tools), len(all))
	}
	for name := range all {
		if _, ok := tools["web__"+name]; !ok {
			t.Errorf("web__%s not listed", name)
		}
	}
	sameJSON(t, "inputSchema", tools["web__schemas"].InputSchema, richInputSchema)
}

func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s\nwant %s", what, got, want)
	}
}
