package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// A tools/call relayed to a Streamable HTTP upstream goes to the client's
// transport directly instead of through mcp-go's client.CallTool, and
// its result is handed through nearly as it came.
//
// client.CallTool re-encodes the arguments mcp-go's server decoded into a
// map, then decodes the upstream's result three times over
// (mcp.ParseCallToolResult probes it, decodes it, and decodes every
// content item twice and the structured content into a map), only for
// mcp-go's server to encode it all again for the caller: in the gateway
// benchmark, parsing the result was most of the relay's own CPU. Here the
// caller's arguments go upstream as the caller sent them
// (CallToolParams.RawArguments), the result is decoded once, its
// structured content is kept as the raw JSON it came as (which mcp-go's
// CallToolResult.MarshalJSON writes out verbatim, as it did before; only
// the decoded copy in StructuredContent, which nothing here reads, is no
// longer made), and a text item is decoded in one pass (parseContent).
// Any other item goes through mcp.UnmarshalContent, as before.
//
// What client.CallTool adds on a legacy-protocol HTTP connection is not
// needed here: its tracing hooks are unset, a cancelled call's
// notifications/cancelled comes from cancellingHTTP (the client sends none
// over HTTP), and the protocol-2026-07-28 request _meta and multi-round-trip
// retries do not apply to the protocol mcpauth speaks upstream (a result
// asking for input is handed to mcp-go's server, which resolves it with
// the caller). Server-to-client requests and notifications on the call's
// stream reach the client's handlers as before: the transport calls them.
//
// The request ids are strings ("mcpauth-1", …), so they never equal the
// client's own integer ids on the same session (an upstream cancels by
// id).

// toolCallParams are the params of a relayed tools/call.
type toolCallParams struct {
	Name      string    `json:"name"`
	Arguments any       `json:"arguments,omitempty"`
	Meta      *mcp.Meta `json:"_meta,omitempty"`
}

// toolResult is a tools/call result, decoded once.
type toolResult struct {
	Meta              *mcp.Meta         `json:"_meta,omitempty"`
	ResultType        mcp.ResultType    `json:"resultType,omitempty"`
	Content           []json.RawMessage `json:"content"`
	StructuredContent json.RawMessage   `json:"structuredContent,omitempty"`
	IsError           bool              `json:"isError,omitempty"`
	InputRequests     mcp.InputRequests `json:"inputRequests,omitempty"`
	RequestState      string            `json:"requestState,omitempty"`
}

// callTool sends tools/call for the upstream's tool name with the
// caller's params (arguments) and meta, on c's HTTP transport.
func (c *conn) callTool(ctx context.Context, name string, in mcp.CallToolParams, meta *mcp.Meta) (*mcp.CallToolResult, error) {
	params := toolCallParams{Name: name, Arguments: in.Arguments, Meta: meta}
	if len(in.RawArguments) > 0 {
		params.Arguments = in.RawArguments
	}
	req := transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId("mcpauth-" + strconv.FormatUint(c.callIDs.Add(1), 10)),
		Method:  string(mcp.MethodToolsCall),
		Params:  params,
	}
	if err := ctx.Err(); err != nil {
		return nil, transport.NewError(err)
	}
	res, err := c.http.SendRequest(ctx, req)
	if err != nil {
		return nil, transport.NewError(err)
	}
	if res.Error != nil {
		return nil, res.Error.AsError()
	}
	return parseToolResult(res.Result)
}

// parseToolResult turns a tools/call result into what mcp-go's server
// writes back out unchanged.
func parseToolResult(raw json.RawMessage) (*mcp.CallToolResult, error) {
	if raw == nil {
		return nil, errors.New("response is nil")
	}
	var r toolResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, errors.New("failed to unmarshal response: " + err.Error())
	}
	if r.Content == nil && r.ResultType != mcp.ResultTypeInputRequired {
		return nil, errors.New("content is missing")
	}
	out := &mcp.CallToolResult{
		Result:               mcp.Result{Meta: r.Meta, ResultType: r.ResultType},
		MultiRoundTripResult: mcp.MultiRoundTripResult{InputRequests: r.InputRequests, RequestState: r.RequestState},
		RawStructuredContent: r.StructuredContent,
		IsError:              r.IsError,
	}
	if len(r.Content) > 0 {
		out.Content = make([]mcp.Content, len(r.Content))
		for i, item := range r.Content {
			c, err := parseContent(item)
			if err != nil {
				return nil, errors.New("failed to unmarshal response: " + err.Error())
			}
			out.Content[i] = c
		}
	}
	return out, nil
}

// textItem is a content item decoded as a text item would be.
type textItem struct {
	Type        string           `json:"type"`
	Text        *string          `json:"text"`
	Annotations *mcp.Annotations `json:"annotations,omitempty"`
	Meta        *mcp.Meta        `json:"_meta,omitempty"`
}

// parseContent decodes a content item: a text item (the common case) in
// one pass, any other by mcp.UnmarshalContent (which probes the type,
// then decodes).
func parseContent(item json.RawMessage) (mcp.Content, error) {
	var t textItem
	if err := json.Unmarshal(item, &t); err == nil && t.Type == mcp.ContentTypeText {
		c := mcp.TextContent{Annotated: mcp.Annotated{Annotations: t.Annotations}, Meta: t.Meta, Type: t.Type}
		if t.Text != nil {
			c.Text = *t.Text
		}
		return c, nil
	}
	return mcp.UnmarshalContent(item)
}
