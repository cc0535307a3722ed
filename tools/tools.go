package tools

import (
	"context"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// Minter mints and records tokens.
type Minter interface {
	Issue(ctx context.Context, req auth.IssueRequest) (auth.IssuedToken, error)
}

// Inspector reports on arbitrary token strings.
type Inspector interface {
	Inspect(token string) auth.Inspection
}

// ClientLister summarizes the registry by client.
type ClientLister interface {
	ListClients(ctx context.Context, now time.Time) ([]registry.Client, error)
}

// Revoker revokes tokens and enforces the revocation at once.
type Revoker interface {
	RevokeJTI(ctx context.Context, jti, by, reason string) (registry.Token, bool, error)
	RevokeClient(ctx context.Context, clientID, by, reason string) ([]registry.Token, error)
}

// TokenLookup reads tokens' registry records: one by jti, or a client's
// (every client's when clientID is empty), newest first.
type TokenLookup interface {
	Get(ctx context.Context, jti string) (registry.Token, error)
	ListTokens(ctx context.Context, clientID string) ([]registry.Token, error)
}

// OAuthAdmin is what admins do with the OAuth authorization server from
// the chat: make enrollment codes, and answer pending sign-ins.
type OAuthAdmin interface {
	CreateEnrollment(ctx context.Context, caller *auth.Claims, name string, scopes []string, ttl time.Duration) (oauth.Enrollment, error)
	PendingAuthorizations(ctx context.Context) ([]oauth.Pending, error)
	Approve(ctx context.Context, caller *auth.Claims, requestID, name string, scopes []string) (oauth.Pending, error)
	Deny(ctx context.Context, caller *auth.Claims, requestID string) error
}

// Deps are what the tools need.
type Deps struct {
	Minter    Minter
	Inspector Inspector
	Clients   ClientLister
	Revoker   Revoker
	// Tokens, when set, shows revocation in decode_token and enables
	// list_tokens.
	Tokens TokenLookup
	// OAuth, when set, enables create_enrollment and the approval tools.
	OAuth OAuthAdmin
	// DefaultExpiry applies when issue_token gets no expires_in.
	DefaultExpiry auth.Expiry
	// PublicURL is the server's externally reachable base URL, used in
	// the client configs handed out with new tokens.
	PublicURL string
	// ServerName is the key under mcpServers in generated configs.
	ServerName string
	// Issuer is shown in token details.
	Issuer string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger records issued tokens by jti and client id (never the
	// token); discarded when nil.
	Logger *slog.Logger
}

// Toolset is the set of mcpauth tools bound to their dependencies.
type Toolset struct {
	deps  Deps
	tools []server.ServerTool
	admin map[string]bool
}

// New returns the toolset.
func New(d Deps) *Toolset {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.ServerName == "" {
		d.ServerName = "mcpauth"
	}
	t := &Toolset{deps: d, admin: map[string]bool{}}
	t.add(false, whoamiTool(), t.whoami)
	t.add(true, issueTokenTool(), t.issueToken)
	t.add(true, decodeTokenTool(), t.decodeToken)
	t.add(true, listClientsTool(), t.listClients)
	t.add(true, revokeTokenTool(), t.revokeToken)
	if d.Tokens != nil {
		t.add(true, listTokensTool(), t.listTokens)
	}
	if d.OAuth != nil {
		t.add(true, createEnrollmentTool(), t.createEnrollment)
		t.add(true, listPendingTool(), t.listPending)
		t.add(true, approveTool(), t.approve)
		t.add(true, denyTool(), t.deny)
	}
	return t
}

func (t *Toolset) add(admin bool, tool mcp.Tool, h server.ToolHandlerFunc) {
	t.tools = append(t.tools, server.ServerTool{Tool: tool, Handler: h})
	t.admin[tool.Name] = admin
}

// Register adds every tool to s.
func (t *Toolset) Register(s *server.MCPServer) { s.AddTools(t.tools...) }

// ServerOptions returns the mcp-go options that enforce scopes: admin tools
// are hidden from tools/list for non-admin callers, refused on tools/call,
// and every call requires an identity.
func (t *Toolset) ServerOptions() []server.ServerOption {
	return []server.ServerOption{
		server.WithToolFilter(t.filter),
		server.WithToolHandlerMiddleware(t.guard),
	}
}

// RequiredScope names the scope a call to the named tool requires: the
// admin scope for admin tools, "" for the rest and for unknown names.
func (t *Toolset) RequiredScope(name string) string {
	if t.admin[name] {
		return auth.ScopeAdmin
	}
	return ""
}

func (t *Toolset) filter(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	c, ok := auth.ClaimsFrom(ctx)
	if ok && c.Scope.IsAdmin() {
		return tools
	}
	out := make([]mcp.Tool, 0, len(tools))
	for _, tl := range tools {
		if !t.admin[tl.Name] && ok {
			out = append(out, tl)
		}
	}
	return out
}

// guard is defence in depth behind the filter: it refuses any call without
// an identity, and admin tools without the admin scope.
func (t *Toolset) guard(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, ok := auth.ClaimsFrom(ctx)
		if !ok {
			return mcp.NewToolResultError("Authentication required"), nil
		}
		if t.admin[req.Params.Name] && !c.Scope.IsAdmin() {
			return mcp.NewToolResultError("Forbidden: " + req.Params.Name + " requires the admin scope"), nil
		}
		return next(ctx, req)
	}
}

func isoTime(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }
