package upstream

import (
	"context"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/policy"
)

// Access is the part of the operator's policy the gateway itself asks
// about, for what the server's own filters and guards do not see:
// completions, upstream log messages and resource subscriptions. Names are
// the ones mcpauth serves (prefixed tools and prompts, resource URIs and
// URI templates). tools.Toolset implements it; it must answer false for
// nil claims.
type Access interface {
	MayUse(c *auth.Claims, kind policy.Kind, name string) bool
}

// mayUse reports whether the caller in ctx may use the named thing. With
// no Access configured (a library user without a policy) every caller may.
func (g *Gateway) mayUse(ctx context.Context, kind policy.Kind, name string) bool {
	c, _ := auth.ClaimsFrom(ctx)
	return g.claimsMayUse(c, kind, name)
}

func (g *Gateway) claimsMayUse(c *auth.Claims, kind policy.Kind, name string) bool {
	if g.opts.Access == nil {
		return true
	}
	return g.opts.Access.MayUse(c, kind, name)
}

// mayUseAnyTool reports whether a caller with claims c may call at least
// one of the tools u has registered now.
func (g *Gateway) mayUseAnyTool(c *auth.Claims, u *Upstream) bool {
	g.mu.Lock()
	tools := g.names[u].tools
	g.mu.Unlock()
	for _, n := range tools {
		if g.claimsMayUse(c, policy.Tool, n) {
			return true
		}
	}
	return false
}
