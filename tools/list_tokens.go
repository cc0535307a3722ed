package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

const (
	defaultTokenLimit = 50
	maxTokenLimit     = 500
)

func listTokensTool() mcp.Tool {
	return mcp.NewTool("list_tokens",
		mcp.WithDescription("List recorded tokens, newest first (admin only): jti, client, scopes, when issued and by whom, expiry, and revocation. "+
			"Tokens themselves are never stored, so they cannot be shown; use a jti with revoke_token. Active tokens only unless include_inactive is true."),
		mcp.WithString("client_id", mcp.Description("Only this client's tokens (exact client id).")),
		mcp.WithBoolean("include_inactive", mcp.Description("Also list expired and revoked tokens. Default false.")),
		pageOption("tokens", defaultTokenLimit, maxTokenLimit),
		offsetOption("tokens"),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// TokenInfo is one row of list_tokens' structured content.
type TokenInfo struct {
	JTI       string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	IssuedAt  string   `json:"issued_at"`
	IssuedBy  string   `json:"issued_by"`
	ExpiresAt *string  `json:"expires_at"`
	// KeyID is the kid of the key that signed it ("" when not recorded).
	KeyID string `json:"kid,omitempty"`
	// Status is active, expired, revoked, or key_retired (neither
	// revoked nor expired, but signed by a key no longer configured, so
	// refused).
	Status       string  `json:"status"`
	RevokedAt    *string `json:"revoked_at,omitempty"`
	RevokedBy    string  `json:"revoked_by,omitempty"`
	RevokeReason string  `json:"revoke_reason,omitempty"`
}

// TokenList is list_tokens' structured content.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
	// Total is how many tokens match; Offset how many were skipped;
	// NextOffset, when set, starts the next page.
	Total      int  `json:"total"`
	Offset     int  `json:"offset"`
	NextOffset *int `json:"next_offset,omitempty"`
}

func (t *Toolset) listTokens(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "client_id", "include_inactive", "limit", "offset")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	clientID, given, err := a.Str("client_id")
	if err == nil && given {
		err = auth.ValidateClientID(clientID)
	}
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	all, err := a.Bool("include_inactive", false)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	pg, err := pageArgs(a, defaultTokenLimit, maxTokenLimit)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	toks, err := t.deps.Tokens.ListTokens(ctx, clientID)
	if err != nil {
		return mcp.NewToolResultError("Cannot read the registry: " + err.Error()), nil
	}
	now := t.deps.Now()
	matching := toks[:0]
	for _, tk := range toks {
		if all || tk.Active(now) {
			matching = append(matching, tk)
		}
	}
	page, p := cut(matching, pg)
	out := TokenList{Tokens: []TokenInfo{}, Total: p.Total, Offset: p.Offset, NextOffset: p.Next}
	for _, tk := range page {
		out.Tokens = append(out.Tokens, tokenInfo(tk, now, t.deps.Keys))
	}
	return mcp.NewToolResultStructured(out, FormatTokens(out, clientID, all)), nil
}

func tokenInfo(tk registry.Token, now time.Time, ring KeyRing) TokenInfo {
	ti := TokenInfo{
		JTI: tk.JTI, ClientID: tk.ClientID, Scopes: append([]string{}, tk.Scopes...),
		IssuedAt: isoTime(tk.IssuedAt), IssuedBy: tk.IssuedBy, KeyID: tk.KeyID, Status: "active",
	}
	if !tk.ExpiresAt.IsZero() {
		s := isoTime(tk.ExpiresAt)
		ti.ExpiresAt = &s
	}
	switch {
	case tk.Revoked():
		s := isoTime(tk.RevokedAt)
		ti.Status, ti.RevokedAt, ti.RevokedBy, ti.RevokeReason = "revoked", &s, tk.RevokedBy, tk.RevokeReason
	case !tk.Active(now):
		ti.Status = "expired"
	case ring != nil && tk.KeyID != "" && !known(ring, tk.KeyID):
		ti.Status = "key_retired"
	}
	return ti
}

// known reports whether ring still has the key kid names.
func known(ring KeyRing, kid string) bool {
	_, ok := ring.Lookup(kid)
	return ok
}

// FormatTokens renders the token list for people.
func FormatTokens(l TokenList, clientID string, all bool) string {
	adj, of := "active ", ""
	if all {
		adj = ""
	}
	if clientID != "" {
		of = " of " + clientID
	}
	switch {
	case l.Total == 0:
		return "No " + adj + "tokens" + of + "."
	case len(l.Tokens) == 0:
		return fmt.Sprintf("%d %stoken(s)%s, none at offset %d.", l.Total, adj, of, l.Offset)
	}
	var b strings.Builder
	if len(l.Tokens) == l.Total {
		fmt.Fprintf(&b, "%d %stoken(s)%s, newest first:\n", l.Total, adj, of)
	} else {
		fmt.Fprintf(&b, "%stoken(s)%s %d-%d of %d, newest first:\n", adj, of, l.Offset+1, l.Offset+len(l.Tokens), l.Total)
	}
	for _, tk := range l.Tokens {
		exp := "never"
		if tk.ExpiresAt != nil {
			exp = *tk.ExpiresAt
		}
		scopes := strings.Join(tk.Scopes, " ")
		if scopes == "" {
			scopes = "-"
		}
		fmt.Fprintf(&b, "- %s: %s, %s; issued %s by %s; expires %s; scopes %s", tk.JTI, tk.ClientID, tk.Status, tk.IssuedAt, tk.IssuedBy, exp, scopes)
		if tk.KeyID != "" {
			fmt.Fprintf(&b, "; key %s", tk.KeyID)
		}
		if tk.RevokedAt != nil {
			fmt.Fprintf(&b, "; revoked %s by %s", *tk.RevokedAt, tk.RevokedBy)
			if tk.RevokeReason != "" {
				fmt.Fprintf(&b, " (%s)", tk.RevokeReason)
			}
		}
		b.WriteByte('\n')
	}
	if l.NextOffset != nil {
		fmt.Fprintf(&b, "More: call list_tokens again with offset %d.\n", *l.NextOffset)
	}
	return b.String()
}
