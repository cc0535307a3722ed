package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
)

func issueTokenTool() mcp.Tool {
	return mcp.NewTool("issue_token",
		mcp.WithDescription("Mint a signed JWT for an MCP client (admin only). The token is recorded in the registry before it is returned. "+
			"Returns the token, its expiry and a ready-to-paste MCP client configuration."),
		mcp.WithString("client_id", mcp.Required(),
			mcp.Description("Client identifier, becomes the token subject: 1-128 ASCII letters, digits, '.', '_' or '-' (e.g. research-bot)."),
			mcp.MinLength(1), mcp.MaxLength(auth.MaxClientIDLen), mcp.Pattern(`^[A-Za-z0-9._-]+$`)),
		mcp.WithString("expires_in",
			mcp.Description(`Lifetime as <number><unit> with unit d, h, m or s (e.g. "30d", "24h"), or "never" if the server allows it. Defaults to the server's MCP_TOKEN_EXPIRY.`)),
		mcp.WithArray("scopes", mcp.WithStringItems(),
			mcp.Description(`Scopes to grant, e.g. ["tools:call"]. You can only grant scopes you hold yourself; "admin" grants the admin tools.`)),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// IssueResult is issue_token's structured content.
type IssueResult struct {
	Token     string         `json:"token"`
	TokenType string         `json:"token_type"`
	JTI       string         `json:"jti"`
	ClientID  string         `json:"client_id"`
	Scopes    []string       `json:"scopes"`
	IssuedAt  string         `json:"issued_at"`
	ExpiresAt *string        `json:"expires_at"`
	ExpiresIn string         `json:"expires_in"`
	Config    map[string]any `json:"config"`
}

func (t *Toolset) issueToken(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "client_id", "expires_in", "scopes")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	clientID, ok, err := a.str("client_id")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if !ok {
		return mcp.NewToolResultError(`argument "client_id" is required`), nil
	}
	expiry := t.deps.DefaultExpiry
	if s, ok, err := a.str("expires_in"); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	} else if ok {
		if expiry, err = auth.ParseExpiry(s); err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
	}
	scopes, err := a.strs("scopes")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	caller, _ := auth.ClaimsFrom(ctx)
	tok, err := t.deps.Minter.Issue(ctx, auth.IssueRequest{ClientID: clientID, Expiry: expiry, Scopes: scopes, Caller: caller})
	if err != nil {
		t.deps.Logger.Info("issue_token refused", "caller", caller.Subject, "client_id", truncate(clientID, 64), "reason", err.Error())
		return mcp.NewToolResultError("Cannot issue token: " + err.Error()), nil
	}
	t.deps.Logger.Info("token issued", "client_id", tok.ClientID, "jti", tok.JTI, "issued_by", tok.IssuedBy,
		"scopes", tok.Scopes.String(), "expires_in", expiry.String())
	out := Issued{Token: tok, Expiry: expiry, PublicURL: t.deps.PublicURL, ServerName: t.deps.ServerName, Issuer: t.deps.Issuer}
	return mcp.NewToolResultStructured(out.Result(), out.Text()), nil
}

// Issued renders a freshly minted token for people: the seed script's
// banner, token, client config and details. The CLI prints the same text.
type Issued struct {
	Token      auth.IssuedToken
	Expiry     auth.Expiry
	PublicURL  string
	ServerName string
	Issuer     string
}

// SSEURL is the legacy SSE endpoint clients connect to.
func (i Issued) SSEURL() string { return strings.TrimRight(i.PublicURL, "/") + "/sse" }

// Config is a ready mcpServers block using the URL and a Bearer header.
func (i Issued) Config() map[string]any {
	return map[string]any{
		"mcpServers": map[string]any{
			i.ServerName: map[string]any{
				"url":     i.SSEURL(),
				"headers": map[string]string{"Authorization": "Bearer " + i.Token.Token},
			},
		},
	}
}

// Result is the structured form.
func (i Issued) Result() IssueResult {
	r := IssueResult{
		Token:     i.Token.Token,
		TokenType: "Bearer",
		JTI:       i.Token.JTI,
		ClientID:  i.Token.ClientID,
		Scopes:    append([]string{}, i.Token.Scopes...),
		IssuedAt:  isoTime(i.Token.IssuedAt),
		ExpiresIn: i.Expiry.String(),
		Config:    i.Config(),
	}
	if !i.Token.ExpiresAt.IsZero() {
		s := isoTime(i.Token.ExpiresAt)
		r.ExpiresAt = &s
	}
	return r
}

// Text is the human-readable form, modelled on the seed's script output.
func (i Issued) Text() string {
	var b strings.Builder
	line := strings.Repeat("=", 60)
	exp := "never (no exp claim)"
	if !i.Token.ExpiresAt.IsZero() {
		exp = isoTime(i.Token.ExpiresAt)
	}
	scopes := i.Token.Scopes.String()
	if scopes == "" {
		scopes = "(none)"
	}
	cfg, _ := json.MarshalIndent(i.Config(), "", "  ")
	fmt.Fprintf(&b, "%s\nJWT token generated\n%s\n\n", line, line)
	fmt.Fprintf(&b, "Client ID:  %s\nExpires in: %s\nExpires at: %s\nScopes:     %s\n\n", i.Token.ClientID, i.Expiry, exp, scopes)
	fmt.Fprintf(&b, "Token:\n%s\n\n", i.Token.Token)
	fmt.Fprintf(&b, "MCP client configuration:\n%s\n\n", cfg)
	b.WriteString("Copy the configuration above into your MCP client settings.\n")
	b.WriteString("Claude Desktop reaches remote servers through mcp-remote: use\n")
	fmt.Fprintf(&b, "  npx mcp-remote %s --header \"Authorization:${AUTH_HEADER}\"\n", i.SSEURL())
	b.WriteString("with AUTH_HEADER=\"Bearer <token>\" in the server's env block.\n\n")
	fmt.Fprintf(&b, "Token details:\n  sub:   %s\n  iat:   %s\n  exp:   %s\n  iss:   %s\n  jti:   %s\n  scope: %s\n",
		i.Token.ClientID, isoTime(i.Token.IssuedAt), exp, i.Issuer, i.Token.JTI, scopes)
	return b.String()
}
