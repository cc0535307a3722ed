package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth/registry"
)

func listClientsTool() mcp.Tool {
	return mcp.NewTool("list_clients",
		mcp.WithDescription("List every client that has tokens in the registry (admin only): active and revoked tokens, latest expiry, last issued, last seen and scopes."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// ClientInfo is one row of list_clients' structured content.
type ClientInfo struct {
	ClientID      string   `json:"client_id"`
	ActiveTokens  int      `json:"active_tokens"`
	RevokedTokens int      `json:"revoked_tokens"`
	TotalTokens   int      `json:"total_tokens"`
	LastSeen      *string  `json:"last_seen"`
	LatestExpiry  *string  `json:"latest_expiry"`
	NeverExpires  bool     `json:"never_expires"`
	LastIssued    string   `json:"last_issued"`
	Scopes        []string `json:"scopes"`
}

// ClientList is list_clients' structured content.
type ClientList struct {
	Clients []ClientInfo `json:"clients"`
}

func (t *Toolset) listClients(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, err := parseArgs(req); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	clients, err := t.deps.Clients.ListClients(ctx, t.deps.Now())
	if err != nil {
		return mcp.NewToolResultError("Cannot read the registry: " + err.Error()), nil
	}
	out := ClientList{Clients: make([]ClientInfo, 0, len(clients))}
	for _, c := range clients {
		out.Clients = append(out.Clients, clientInfo(c))
	}
	return mcp.NewToolResultStructured(out, FormatClients(out)), nil
}

func clientInfo(c registry.Client) ClientInfo {
	ci := ClientInfo{
		ClientID:      c.ClientID,
		ActiveTokens:  c.ActiveTokens,
		RevokedTokens: c.RevokedTokens,
		TotalTokens:   c.TotalTokens,
		NeverExpires:  c.NeverExpires,
		LastIssued:    isoTime(c.LastIssued),
		Scopes:        append([]string{}, c.Scopes...),
	}
	if !c.LatestExpiry.IsZero() {
		s := isoTime(c.LatestExpiry)
		ci.LatestExpiry = &s
	}
	if !c.LastSeen.IsZero() {
		s := isoTime(c.LastSeen)
		ci.LastSeen = &s
	}
	return ci
}

// FormatClients renders the client list as a table.
func FormatClients(l ClientList) string {
	if len(l.Clients) == 0 {
		return "No clients have tokens yet. Use issue_token to mint one."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d client(s):\n", len(l.Clients))
	for _, c := range l.Clients {
		exp := "-"
		switch {
		case c.NeverExpires:
			exp = "never"
		case c.LatestExpiry != nil:
			exp = *c.LatestExpiry
		}
		scopes := strings.Join(c.Scopes, " ")
		if scopes == "" {
			scopes = "-"
		}
		seen := "never"
		if c.LastSeen != nil {
			seen = *c.LastSeen
		}
		fmt.Fprintf(&b, "- %s: %d active, %d revoked, %d total; latest expiry %s; last issued %s; last seen %s; scopes %s\n",
			c.ClientID, c.ActiveTokens, c.RevokedTokens, c.TotalTokens, exp, c.LastIssued, seen, scopes)
	}
	return b.String()
}
