package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
)

func listPendingTool() mcp.Tool {
	return mcp.NewTool("list_pending_authorizations",
		mcp.WithDescription("List MCP clients waiting on the sign-in page for an admin's approval (admin only): request id, client name, where it redirects, requested scopes."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func approveTool() mcp.Tool {
	return mcp.NewTool("approve_authorization",
		mcp.WithDescription("Approve a pending sign-in (admin only), e.g. \"approve request K7Q-2M4\". The waiting page continues by itself; "+
			"the client's tokens carry the given client id and at most the given scopes."),
		mcp.WithString("request_id", mcp.Required(), mcp.Description("The id shown on the sign-in page, e.g. K7Q-2M4.")),
		mcp.WithString("client_id", mcp.Description("Client id for the tokens (default: derived from the client's name, refused when that id already exists here; then give one).")),
		mcp.WithArray("scopes", mcp.WithStringItems(), mcp.Description("Scopes to grant (default: what the client requested); never more than requested or than you hold.")),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func denyTool() mcp.Tool {
	return mcp.NewTool("deny_authorization",
		mcp.WithDescription("Deny a pending sign-in (admin only); the waiting page tells the client it was denied."),
		mcp.WithString("request_id", mcp.Required(), mcp.Description("The id shown on the sign-in page, e.g. K7Q-2M4.")),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func (t *Toolset) listPending(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, err := parseArgs(req); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	p, err := t.deps.OAuth.PendingAuthorizations(ctx)
	if err != nil {
		return mcp.NewToolResultError("Cannot read pending requests: " + err.Error()), nil
	}
	var b strings.Builder
	if len(p) == 0 {
		b.WriteString("No sign-in is waiting for approval.")
	}
	for _, r := range p {
		fmt.Fprintf(&b, "- %s: %s (redirects to %s), scopes [%s], expires %s\n", r.ID, orName(r.ClientName), r.RedirectHost, strings.Join(r.Scopes, " "), isoTime(r.ExpiresAt))
	}
	return mcp.NewToolResultStructured(map[string]any{"pending": p}, b.String()), nil
}

func (t *Toolset) approve(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "request_id", "client_id", "scopes")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	id, _, err := a.Str("request_id")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	name, _, err := a.Str("client_id")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	var scopes []string
	if _, given := a["scopes"]; given {
		if scopes, err = a.Strs("scopes"); err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		if scopes == nil {
			scopes = []string{}
		}
	}
	caller, _ := auth.ClaimsFrom(ctx)
	p, err := t.deps.OAuth.Approve(ctx, caller, id, name, scopes)
	if err != nil {
		return mcp.NewToolResultError("Cannot approve: " + err.Error()), nil
	}
	return mcp.NewToolResultStructured(p, fmt.Sprintf("Approved request %s for %s with scopes [%s]; its sign-in page continues by itself.",
		p.ID, orName(p.ClientName), strings.Join(p.Scopes, " "))), nil
}

func (t *Toolset) deny(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "request_id")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	id, _, err := a.Str("request_id")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	caller, _ := auth.ClaimsFrom(ctx)
	if err := t.deps.OAuth.Deny(ctx, caller, id); err != nil {
		return mcp.NewToolResultError("Cannot deny: " + err.Error()), nil
	}
	return mcp.NewToolResultText("Denied request " + strings.ToUpper(id) + "."), nil
}

func orName(n string) string {
	if n == "" {
		return "an unnamed client"
	}
	return n
}
