package tools

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

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
	Minter    auth.Minter
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
	// AuditFeed, when set, sends audit records to admins' sessions as MCP
	// log messages (and the server offers logging).
	AuditFeed *AuditFeed
	// Upstreams, when set, enables list_upstreams.
	Upstreams UpstreamLister
	// ToolsVersion, when set, changes whenever the relayed tools change
	// (the gateway's); nil: the server's tools are fixed once it serves.
	ToolsVersion func() uint64
	// Keys, when set, enables list_keys and lets list_tokens tell the
	// tokens of a key no longer configured; KeyTokens counts each key's
	// live tokens for list_keys.
	Keys      KeyRing
	KeyTokens KeyCounter
	// Rotator, when set, enables rotate_signing_key.
	Rotator KeyRotator
	// Policy decides which scopes each tool, prompt and resource needs
	// (the operator's rules over Builtins). Nil: the built-in rules, and
	// any authenticated caller for everything else.
	Policy *policy.Holder
}

// Toolset is the set of mcpauth tools bound to their dependencies.
type Toolset struct {
	deps  Deps
	tools []server.ServerTool
	admin map[string]bool
	calls mayCallCache
	// configs are issue_token's client configs, rendered once.
	configs *configTemplates
	// whoamis remembers whoami's rendered answers.
	whoamis whoamiCache
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
	t.configs = newConfigTemplates(d.ServerName, Endpoints{Base: strings.TrimRight(d.PublicURL, "/")})
	t.add(false, whoamiTool(), t.whoami)
	t.add(true, issueTokenTool(), t.issueToken)
	t.add(true, decodeTokenTool(), t.decodeToken)
	t.add(true, listClientsTool(), t.listClients)
	t.add(true, revokeTokenTool(), t.revokeToken)
	if d.Tokens != nil {
		t.add(true, listTokensTool(), t.listTokens)
	}
	if d.Upstreams != nil {
		t.add(true, listUpstreamsTool(), t.listUpstreams)
	}
	if d.Keys != nil {
		t.add(true, listKeysTool(), t.listKeys)
	}
	if d.Rotator != nil {
		t.add(true, rotateKeyTool(), t.rotateKey)
	}
	if d.OAuth != nil {
		t.add(true, createEnrollmentTool(), t.createEnrollment)
		t.add(true, listPendingTool(), t.listPending)
		t.add(true, approveTool(), t.approve)
		t.add(true, denyTool(), t.deny)
	}
	if t.deps.Policy == nil {
		p, _ := policy.New(policy.Config{}, policy.Need{}, t.Builtins()...) // no operator rules: cannot fail
		t.deps.Policy = policy.NewHolder(p)
	}
	return t
}

func (t *Toolset) add(admin bool, tool mcp.Tool, h server.ToolHandlerFunc) {
	t.tools = append(t.tools, server.ServerTool{Tool: tool, Handler: h})
	t.admin[tool.Name] = admin
}

// Attach adds every tool to s and starts the audit feed on it.
func (t *Toolset) Attach(s *server.MCPServer) {
	s.AddTools(t.tools...)
	if t.deps.AuditFeed != nil {
		t.deps.AuditFeed.attach(s)
	}
}

// ServerOptions returns the mcp-go options that enforce the policy on
// every tool, prompt and resource the server offers (its own and relayed
// ones): each list shows a caller only what it may use, and a call of
// anything else is refused. Every request needs an identity.
func (t *Toolset) ServerOptions() []server.ServerOption {
	opts := []server.ServerOption{
		server.WithToolFilter(t.filterTools),
		server.WithToolHandlerMiddleware(t.guard),
		server.WithPromptFilter(t.filterPrompts),
		server.WithResourceHandlerMiddleware(t.guardResource),
		server.WithHooks(t.listHooks()),
	}
	if t.deps.AuditFeed != nil {
		opts = append(opts, server.WithLogging())
	}
	return opts
}

// Policy is the holder of the policy in force; a reload stores into it.
func (t *Toolset) Policy() *policy.Holder { return t.deps.Policy }

// Names lists the toolset's own tool names.
func (t *Toolset) Names() []string {
	out := make([]string, 0, len(t.tools))
	for _, tl := range t.tools {
		out = append(out, tl.Tool.Name)
	}
	return out
}

// Builtins are the policy's rules for the toolset's own tools, in force
// unless the operator's policy names a tool exactly: admin tools need the
// admin scope, whoami any authenticated caller.
func (t *Toolset) Builtins() []policy.Builtin {
	out := make([]policy.Builtin, 0, len(t.tools))
	for _, tl := range t.tools {
		b := policy.Builtin{Kind: policy.Tool, Name: tl.Tool.Name}
		if t.admin[tl.Tool.Name] {
			b.Need.Scopes = []string{auth.ScopeAdmin}
		}
		out = append(out, b)
	}
	return out
}

// RequiredScope names the scopes (space-separated) a call to the named
// tool requires, "" when any caller may call it. A tool the policy denies
// to everyone also gets "": no scope would help, and the call is refused
// as an unknown tool.
func (t *Toolset) RequiredScope(name string) string {
	n := t.deps.Policy.Load().Need(policy.Tool, name)
	if n.Deny {
		return ""
	}
	return strings.Join(n.Scopes, " ")
}

// allowed reports whether the caller in ctx may use the named thing.
func (t *Toolset) allowed(ctx context.Context, k policy.Kind, name string) bool {
	c, _ := auth.ClaimsFrom(ctx)
	return t.deps.Policy.MayUse(c, k, name)
}

func (t *Toolset) filterTools(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	return keep(tools, func(tl *mcp.Tool) bool { return t.allowed(ctx, policy.Tool, tl.Name) })
}

func (t *Toolset) filterPrompts(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
	return keep(prompts, func(p *mcp.Prompt) bool { return t.allowed(ctx, policy.Prompt, p.Name) })
}

// listHooks filter resource lists, which mcp-go has no filter option for.
func (t *Toolset) listHooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddAfterListResources(func(ctx context.Context, _ any, _ *mcp.ListResourcesRequest, r *mcp.ListResourcesResult) {
		if r != nil {
			r.Resources = keep(r.Resources, func(res *mcp.Resource) bool { return t.allowed(ctx, policy.Resource, res.URI) })
		}
	})
	h.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, r *mcp.ListResourceTemplatesResult) {
		if r != nil {
			r.ResourceTemplates = keep(r.ResourceTemplates, func(rt *mcp.ResourceTemplate) bool {
				return t.allowed(ctx, policy.Resource, rt.URITemplate.Raw())
			})
		}
	})
	return h
}

// keep returns the elements of in that ok accepts, in order: in itself
// when ok accepts them all (mcp-go hands every filter and hook a slice
// of its own; every tools/call is filtered), else a new slice.
func keep[T any](in []T, ok func(*T) bool) []T {
	for i := range in {
		if ok(&in[i]) {
			continue
		}
		out := make([]T, i, len(in)-1)
		copy(out, in[:i])
		for j := i + 1; j < len(in); j++ {
			if ok(&in[j]) {
				out = append(out, in[j])
			}
		}
		return out
	}
	if in == nil {
		return []T{} // as before: an empty list, never null
	}
	return in
}

// guard is defence in depth behind the filter: it refuses any call without
// an identity, and any tool the caller's scopes do not allow.
func (t *Toolset) guard(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, ok := auth.ClaimsFrom(ctx)
		if !ok {
			return mcp.NewToolResultError("Authentication required"), nil
		}
		if n := t.deps.Policy.Load().Need(policy.Tool, req.Params.Name); !n.Allows(c.Scope) {
			return mcp.NewToolResultError(forbidden(req.Params.Name, n)), nil
		}
		return next(ctx, req)
	}
}

// guardResource refuses reading a resource the caller may not use, by
// its concrete URI, with the error an unknown resource gets.
func (t *Toolset) guardResource(next server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		if !t.allowed(ctx, policy.Resource, req.Params.URI) {
			return nil, fmt.Errorf("%w: %s", server.ErrResourceNotFound, untrusted.Clip(req.Params.URI, 200))
		}
		return next(ctx, req)
	}
}

func forbidden(name string, n policy.Need) string {
	if n.Deny {
		return "Forbidden: " + name + " is not available to any caller"
	}
	return "Forbidden: " + name + " requires the " + strings.Join(n.Scopes, " ") + " scope"
}

func isoTime(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }

// MayUse reports whether a caller with claims c may use the named tool,
// prompt or resource under the policy in force now; never without claims.
func (t *Toolset) MayUse(c *auth.Claims, k policy.Kind, name string) bool {
	return t.deps.Policy.MayUse(c, k, name)
}
