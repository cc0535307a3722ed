package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/oauth"
)

func listPendingTool() mcp.Tool {
	return mcp.NewTool("list_pending_authorizations",
		mcp.WithDescription("List MCP clients waiting on the sign-in page for an admin's approval (admin only): request id, client name, where it redirects, requested scopes. "+
			"Newest first; page with limit and offset (total says how many are waiting)."),
		mcp.WithNumber("limit", mcp.Description(fmt.Sprintf("At most this many requests (1-%d, default %d).", maxPendingLimit, defaultPendingLimit))),
		mcp.WithNumber("offset", mcp.Description("Skip this many requests first (for the next page). Default 0.")),
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

// PendingList is list_pending_authorizations' structured content.
type PendingList struct {
	Pending []oauth.Pending `json:"pending"`
	// Total is how many requests are waiting; Offset how many were
	// skipped; NextOffset, when set, where the next page starts.
	Total      int  `json:"total"`
	Offset     int  `json:"offset"`
	NextOffset *int `json:"next_offset,omitempty"`
}

const (
	defaultPendingLimit = 20
	maxPendingLimit     = 100
)

func (t *Toolset) listPending(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "limit", "offset")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	pg, err := pageArgs(a, defaultPendingLimit, maxPendingLimit)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	all, err := t.deps.OAuth.PendingAuthorizations(ctx)
	if err != nil {
		return mcp.NewToolResultError("Cannot read pending requests: " + err.Error()), nil
	}
	page, p := cut(all, pg)
	out := PendingList{Pending: append([]oauth.Pending{}, page...), Total: p.Total, Offset: p.Offset, NextOffset: p.Next}
	var b strings.Builder
	switch {
	case p.Total == 0:
		b.WriteString("No sign-in is waiting for approval.")
	case len(page) == 0:
		fmt.Fprintf(&b, "%d sign-in(s) waiting, none at offset %d.", p.Total, p.Offset)
	case len(page) == p.Total:
		fmt.Fprintf(&b, "%d sign-in(s) waiting, newest first:\n", p.Total)
	default:
		fmt.Fprintf(&b, "Sign-ins waiting, newest first: %d-%d, %d of %d", p.Offset+1, p.Offset+len(page), len(page), p.Total)
		if p.Next != nil {
			fmt.Fprintf(&b, " (next page: offset %d)", *p.Next)
		}
		b.WriteString(":\n")
	}
	for _, r := range page {
		fmt.Fprintf(&b, "- %s: %s (redirects to %s), scopes [%s], expires %s\n", r.ID, orName(r.ClientName), r.RedirectHost, strings.Join(r.Scopes, " "), isoTime(r.ExpiresAt))
	}
	return mcp.NewToolResultStructured(out, b.String()), nil
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
