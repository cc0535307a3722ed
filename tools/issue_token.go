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
		mcp.WithString("client", mcp.Enum(ClientKinds...),
			mcp.Description("Which client's ready configuration to feature: claude-desktop (default), cursor, windsurf, vscode, claude-code or generic. Structured output carries all of them.")),
		mcp.WithArray("scopes", mcp.WithStringItems(),
			mcp.Description(`Scopes to grant, e.g. ["tools:call"]. You can only grant scopes you hold yourself; "admin" grants the admin tools.`)),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// IssueResult is issue_token's structured content.
type IssueResult struct {
	Token     string   `json:"token"`
	TokenType string   `json:"token_type"`
	JTI       string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	IssuedAt  string   `json:"issued_at"`
	ExpiresAt *string  `json:"expires_at"`
	ExpiresIn string   `json:"expires_in"`
	// Client is the kind of Config; Configs holds every kind.
	Client  string         `json:"client"`
	Config  map[string]any `json:"config"`
	Configs map[string]any `json:"configs"`
}

func (t *Toolset) issueToken(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "client_id", "expires_in", "scopes", "client")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	clientID, ok, err := a.Str("client_id")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if !ok {
		return mcp.NewToolResultError(`argument "client_id" is required`), nil
	}
	expiry := t.deps.DefaultExpiry
	if s, ok, err := a.Str("expires_in"); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	} else if ok {
		if expiry, err = auth.ParseExpiry(s); err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
	}
	scopes, err := a.Strs("scopes")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	kind, _, err := a.Str("client")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if kind, err = CheckClientKind(kind); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	caller, _ := auth.ClaimsFrom(ctx)
	tok, err := t.deps.Minter.Issue(ctx, auth.IssueRequest{ClientID: clientID, Expiry: expiry, Scopes: scopes, Caller: caller, Via: "issue_token"})
	if err != nil {
		return mcp.NewToolResultError("Cannot issue token: " + auth.Message(err)), nil
	}
	out := Issued{Token: tok, Expiry: expiry, PublicURL: t.deps.PublicURL, ServerName: t.deps.ServerName, Issuer: t.deps.Issuer, Client: kind}
	if t.configs.serves(out) {
		return mcp.NewToolResultStructured(t.configs.wire(out), out.text(t.configs)), nil
	}
	return mcp.NewToolResultStructured(out.Result(), out.Text()), nil
}

// Issued renders a freshly minted token for people: the token guide
// script's banner, token, client config and details. The CLI prints the
// same text.
type Issued struct {
	Token      auth.IssuedToken
	Expiry     auth.Expiry
	PublicURL  string
	ServerName string
	Issuer     string
	// Client is the kind of client config to feature (see ClientKinds);
	// empty means Claude Desktop.
	Client string
}

func (i Issued) endpoints() Endpoints { return Endpoints{Base: strings.TrimRight(i.PublicURL, "/")} }

func (i Issued) client() string {
	if k, err := CheckClientKind(i.Client); err == nil {
		return k
	}
	return ClientClaudeDesktop
}

// Config is the featured client's ready configuration.
func (i Issued) Config() map[string]any {
	return ClientConfig(i.client(), i.ServerName, i.Token.Token, i.endpoints())
}

// Configs are the ready configurations of every client kind.
func (i Issued) Configs() map[string]any {
	out := make(map[string]any, len(ClientKinds))
	for _, k := range ClientKinds {
		out[k] = ClientConfig(k, i.ServerName, i.Token.Token, i.endpoints())
	}
	return out
}

// Result is the structured form.
func (i Issued) Result() IssueResult {
	r := i.result()
	r.Config, r.Configs = i.Config(), i.Configs()
	return r
}

// result is Result without the configs.
func (i Issued) result() IssueResult {
	r := IssueResult{
		Token:     i.Token.Token,
		TokenType: "Bearer",
		JTI:       i.Token.JTI,
		ClientID:  i.Token.ClientID,
		Scopes:    append([]string{}, i.Token.Scopes...),
		IssuedAt:  isoTime(i.Token.IssuedAt),
		ExpiresIn: i.Expiry.String(),
		Client:    i.client(),
	}
	if !i.Token.ExpiresAt.IsZero() {
		s := isoTime(i.Token.ExpiresAt)
		r.ExpiresAt = &s
	}
	return r
}

// Text is the human-readable form, modelled on the token guide script's output.
func (i Issued) Text() string { return i.text(nil) }

// text is Text, with the featured config filled into ct's templates when
// ct (which serves i) is set.
func (i Issued) text(ct *configTemplates) string {
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
	kind := i.client()
	fmt.Fprintf(&b, "%s\nJWT token generated\n%s\n\n", line, line)
	fmt.Fprintf(&b, "Client ID:  %s\nExpires in: %s\nExpires at: %s\nScopes:     %s\n\n", i.Token.ClientID, i.Expiry, exp, scopes)
	fmt.Fprintf(&b, "Token:\n%s\n\n", i.Token.Token)
	fmt.Fprintf(&b, "MCP client configuration for %s:\n", clientNames[kind])
	switch {
	case kind == ClientClaudeCode && ct != nil:
		fmt.Fprintf(&b, "%s\n\n", fill(ct.command, i.Token.Token))
		b.WriteString("Run the command above in a terminal.\n")
	case kind == ClientClaudeCode:
		fmt.Fprintf(&b, "%s\n\n", i.Config()["command"])
		b.WriteString("Run the command above in a terminal.\n")
	default:
		var cfg []byte
		if ct != nil {
			cfg = []byte(fill(ct.indented[kind], i.Token.Token))
		} else {
			cfg, _ = json.MarshalIndent(i.Config(), "", "  ")
		}
		fmt.Fprintf(&b, "%s\n\n", cfg)
		b.WriteString("Copy the configuration above into your MCP client settings.\n")
	}
	var others []string
	for _, k := range ClientKinds {
		if k != kind {
			others = append(others, k)
		}
	}
	fmt.Fprintf(&b, "Configs for other clients: %s (ask for client=<name>, or --client on the CLI).\n\n", strings.Join(others, ", "))
	fmt.Fprintf(&b, "Token details:\n  sub:   %s\n  iat:   %s\n  exp:   %s\n  iss:   %s\n  jti:   %s\n  scope: %s\n",
		i.Token.ClientID, isoTime(i.Token.IssuedAt), exp, i.Issuer, i.Token.JTI, scopes)
	return b.String()
}
