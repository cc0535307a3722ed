package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Tool schemas are relayed as the upstream wrote them. mcp-go's client
// decodes a tool's inputSchema and outputSchema into a struct that keeps
// only type, properties, required, additionalProperties and $defs (and
// renames draft-07 "definitions" to "$defs"): $schema, a top-level $ref,
// oneOf, title and any other keyword would be dropped on the way through
// the gateway, though callers need them to build valid arguments (MCP
// 2025-11-25, SEP-1613). So the gateway reads tools/list itself and keeps
// each schema as raw JSON, which mcp-go's server then sends verbatim.
//
// The request goes straight to the connection's transport (the client's
// ListTools only returns the decoded tools). On the protocol the gateway
// speaks to upstreams (the latest before 2026-07-28) the client adds
// nothing to a tools/list; its IDs are numbers, so a string ID cannot
// collide with them. One thing is lost: over stdio, a tools/list whose
// context ends (the start or refresh timeout) is not followed by a
// notifications/cancelled, as the client's own requests are.

// toolListSeq numbers the gateway's own tools/list requests.
var toolListSeq atomic.Uint64

// listTools reads every page of cl's server's tools, each with its
// schemas verbatim.
func listTools(ctx context.Context, cl *client.Client) ([]mcp.Tool, error) {
	var tools []mcp.Tool
	var cursor mcp.Cursor
	seen := map[mcp.Cursor]bool{}
	for {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		res, err := cl.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
			JSONRPC: mcp.JSONRPC_VERSION,
			ID:      mcp.NewRequestId(fmt.Sprintf("mcpauth-tools-list-%d", toolListSeq.Add(1))),
			Method:  string(mcp.MethodToolsList),
			Params:  params,
		})
		if err != nil {
			return nil, err
		}
		if res.Error != nil {
			return nil, res.Error.AsError()
		}
		var page struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor mcp.Cursor        `json:"nextCursor"`
		}
		if err := json.Unmarshal(res.Result, &page); err != nil {
			return nil, fmt.Errorf("decode result: %w", err)
		}
		for _, raw := range page.Tools {
			t, err := verbatimTool(raw)
			if err != nil {
				return nil, err
			}
			tools = append(tools, t)
		}
		if page.NextCursor == "" {
			return tools, nil
		}
		if seen[page.NextCursor] {
			return nil, fmt.Errorf("cursor %q came back: the listing does not end", page.NextCursor)
		}
		seen[page.NextCursor] = true
		cursor = page.NextCursor
	}
}

// verbatimTool decodes one tool of a tools/list result, its inputSchema
// and outputSchema kept as they came (mcp.Tool's Raw fields).
func verbatimTool(raw json.RawMessage) (mcp.Tool, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return mcp.Tool{}, fmt.Errorf("decode tool: %w", err)
	}
	in, out := fields["inputSchema"], fields["outputSchema"]
	delete(fields, "inputSchema")
	delete(fields, "outputSchema")
	rest, err := json.Marshal(fields)
	if err != nil {
		return mcp.Tool{}, err
	}
	var t mcp.Tool
	if err := json.Unmarshal(rest, &t); err != nil {
		return mcp.Tool{}, fmt.Errorf("decode tool: %w", err)
	}
	if present(in) {
		t.RawInputSchema = in
	}
	if present(out) {
		t.RawOutputSchema = out
	}
	return t, nil
}

// present: a value was sent, and not null.
func present(v json.RawMessage) bool { return len(v) > 0 && string(v) != "null" }
