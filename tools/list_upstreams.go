package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/tools/upstream"
)

// UpstreamLister reports the gateway's upstreams.
type UpstreamLister interface {
	Statuses() []upstream.Status
}

func listUpstreamsTool() mcp.Tool {
	return mcp.NewTool("list_upstreams",
		mcp.WithDescription("List the MCP servers mcpauth relays (gateway mode): each one's transport, state "+
			"(up, restarting, down, with the last error), how many tools, prompts and resources it offers, and its call counts."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// ListUpstreamsResult is list_upstreams' structured content.
type ListUpstreamsResult struct {
	Upstreams []upstream.Status `json:"upstreams"`
}

func (t *Toolset) listUpstreams(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, err := parseArgs(req); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	st := t.deps.Upstreams.Statuses()
	var b strings.Builder
	if len(st) == 0 {
		b.WriteString("No upstreams are configured.")
	}
	for _, s := range st {
		fmt.Fprintf(&b, "%s (%s): %s", s.Name, s.Transport, s.State)
		if s.LastError != "" {
			fmt.Fprintf(&b, " — %s", s.LastError)
		}
		fmt.Fprintf(&b, "; %d tools, %d prompts, %d resources, %d templates; %d calls (%d failed), %d restarts\n",
			s.Tools, s.Prompts, s.Resources, s.Templates, s.Calls, s.Failures, s.Restarts)
	}
	return mcp.NewToolResultStructured(ListUpstreamsResult{Upstreams: st}, strings.TrimSpace(b.String())), nil
}
