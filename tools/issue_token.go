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
// ct (which serves i) is set. It is written piece by piece into one
// buffer sized up front (fmt and a growing builder cost a mint about
// 10 µs and 8 KB).
func (i Issued) text(ct *configTemplates) string {
	const line = "============================================================"
	exp := "never (no exp claim)"
	if !i.Token.ExpiresAt.IsZero() {
		exp = isoTime(i.Token.ExpiresAt)
	}
	scopes := i.Token.Scopes.String()
	if scopes == "" {
		scopes = "(none)"
	}
	kind := i.client()
	var cfg, after string
	switch {
	case kind == ClientClaudeCode && ct != nil:
		cfg, after = fill(ct.command, i.Token.Token), "Run the command above in a terminal.\n"
	case kind == ClientClaudeCode:
		cfg, after = fmt.Sprint(i.Config()["command"]), "Run the command above in a terminal.\n"
	case ct != nil:
		cfg, after = fill(ct.indented[kind], i.Token.Token), "Copy the configuration above into your MCP client settings.\n"
	default:
		b, _ := json.MarshalIndent(i.Config(), "", "  ")
		cfg, after = string(b), "Copy the configuration above into your MCP client settings.\n"
	}
	expiresIn, issuedAt := i.Expiry.String(), isoTime(i.Token.IssuedAt)
	var b strings.Builder
	b.Grow(640 + 2*len(i.Token.ClientID) + len(i.Token.Token) + len(cfg) + 2*len(exp) + 2*len(scopes) + len(i.Issuer) + len(i.Token.JTI))
	for _, s := range []string{
		line, "\nJWT token generated\n", line, "\n\n",
		"Client ID:  ", i.Token.ClientID, "\nExpires in: ", expiresIn, "\nExpires at: ", exp, "\nScopes:     ", scopes, "\n\n",
		"Token:\n", i.Token.Token, "\n\n",
		"MCP client configuration for ", clientNames[kind], ":\n", cfg, "\n\n", after,
		"Configs for other clients: ",
	} {
		b.WriteString(s)
	}
	first := true
	for _, k := range ClientKinds {
		if k == kind {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		b.WriteString(k)
		first = false
	}
	for _, s := range []string{
		" (ask for client=<name>, or --client on the CLI).\n\n",
		"Token details:\n  sub:   ", i.Token.ClientID, "\n  iat:   ", issuedAt, "\n  exp:   ", exp,
		"\n  iss:   ", i.Issuer, "\n  jti:   ", i.Token.JTI, "\n  scope: ", scopes, "\n",
	} {
		b.WriteString(s)
	}
	return b.String()
}
