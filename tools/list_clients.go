package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth/registry"
)

func listClientsTool() mcp.Tool {
	return mcp.NewTool("list_clients",
		mcp.WithDescription("List the clients that have tokens in the registry (admin only): active and revoked tokens, latest expiry, last issued, last seen and scopes. Sorted by client id; filter with query or active_only, page with limit and offset."),
		mcp.WithString("query", mcp.Description("Only clients whose id contains this text (case-insensitive), e.g. \"bot\".")),
		mcp.WithBoolean("active_only", mcp.Description("Only clients that hold at least one active (unexpired, unrevoked) token. Default false.")),
		pageOption("clients", defaultClientLimit, maxClientLimit),
		offsetOption("clients"),
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
	// Total is how many clients match the filters; Clients holds
	// Total-Offset of them at most, Limit at most.
	Total int `json:"total"`
	// Offset is how many matching clients were skipped.
	Offset int `json:"offset"`
	// NextOffset, when set, is the offset of the next page.
	NextOffset *int `json:"next_offset,omitempty"`
}

const (
	defaultClientLimit = 100
	maxClientLimit     = 1000
)

func (t *Toolset) listClients(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "query", "active_only", "limit", "offset")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	query, _, err := a.Str("query")
	if err == nil && len(query) > 128 {
		err = errors.New(`argument "query" must be at most 128 characters`)
	}
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	activeOnly, err := a.Bool("active_only", false)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	pg, err := pageArgs(a, defaultClientLimit, maxClientLimit)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	clients, err := t.deps.Clients.ListClients(ctx, t.deps.Now())
	if err != nil {
		return mcp.NewToolResultError("Cannot read the registry: " + err.Error()), nil
	}
	q := strings.ToLower(query)
	matching := clients[:0]
	for _, c := range clients {
		if (q == "" || strings.Contains(strings.ToLower(c.ClientID), q)) && (!activeOnly || c.ActiveTokens > 0) {
			matching = append(matching, c)
		}
	}
	page, p := cut(matching, pg)
	out := ClientList{Clients: []ClientInfo{}, Total: p.Total, Offset: p.Offset, NextOffset: p.Next}
	for _, c := range page {
		out.Clients = append(out.Clients, clientInfo(c))
	}
	filtered := query != "" || activeOnly
	return mcp.NewToolResultStructured(out, FormatClients(out, filtered)), nil
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

// FormatClients renders the client list as a table; filtered says whether
// a query or active_only narrowed it (for the empty message).
func FormatClients(l ClientList, filtered bool) string {
	switch {
	case l.Total == 0 && filtered:
		return "No clients match."
	case l.Total == 0:
		return "No clients have tokens yet. Use issue_token to mint one."
	case len(l.Clients) == 0:
		return fmt.Sprintf("%d client(s) match, none at offset %d.", l.Total, l.Offset)
	}
	var b strings.Builder
	if len(l.Clients) == l.Total {
		fmt.Fprintf(&b, "%d client(s):\n", l.Total)
	} else {
		fmt.Fprintf(&b, "Clients %d-%d of %d:\n", l.Offset+1, l.Offset+len(l.Clients), l.Total)
	}
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
	if l.NextOffset != nil {
		fmt.Fprintf(&b, "More: call list_clients again with offset %d.\n", *l.NextOffset)
	}
	return b.String()
}
