package tools

import (
	"context"
	"slices"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/policy"
)

// mayCall lists, sorted, the tools of the server serving ctx (mcpauth's
// own and relayed ones) that a holder of scopes may call under the policy
// in force.
func (t *Toolset) mayCall(ctx context.Context, scopes auth.Scopes) []string {
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	p := t.deps.Policy.Load()
	out := []string{}
	for name := range srv.ListTools() {
		if p.Need(policy.Tool, name).Allows(scopes) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// claimedScopes reads the scope claim of an inspected token.
func claimedScopes(claims map[string]any) auth.Scopes {
	switch v := claims["scope"].(type) {
	case string:
		return auth.ParseScopes(v)
	case []any:
		var s []string
		for _, x := range v {
			if str, ok := x.(string); ok {
				s = append(s, str)
			}
		}
		return auth.NormalizeScopes(s)
	}
	return nil
}
