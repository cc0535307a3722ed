package tools

import (
	"context"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/policy"
)

// mayCall lists, sorted, the tools of the server serving ctx (mcpauth's
// own and relayed ones) that a holder of scopes may call under the policy
// in force. Answers are remembered by (server, policy, tool-set version,
// scopes): computing one copies mcp-go's whole tool map, and whoami asks
// on every call.
func (t *Toolset) mayCall(ctx context.Context, scopes auth.Scopes) []string {
	key, ok := t.mayCallKey(ctx, scopes)
	if !ok {
		return nil
	}
	if out, ok := t.calls.get(key); ok {
		return slices.Clone(out)
	}
	out := []string{}
	for name := range key.srv.ListTools() {
		if key.policy.Need(policy.Tool, name).Allows(scopes) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	t.calls.put(key, out)
	return slices.Clone(out)
}

// mayCallKey is what mayCall's answer for scopes in ctx depends on; not
// ok when ctx has no server.
func (t *Toolset) mayCallKey(ctx context.Context, scopes auth.Scopes) (mayCallKey, bool) {
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return mayCallKey{}, false
	}
	key := mayCallKey{srv: srv, policy: t.deps.Policy.Load(), scopes: scopes.String()}
	if t.deps.ToolsVersion != nil {
		key.version = t.deps.ToolsVersion() // read before the tools are listed
	}
	return key, true
}

// maxMayCallEntries bounds the remembered answers (scopes come from
// tokens, so their variety is the callers'); when full, all are dropped.
const maxMayCallEntries = 256

type mayCallKey struct {
	srv     *server.MCPServer
	policy  *policy.Policy
	version uint64
	scopes  string
}

// mayCallCache remembers mayCall's answers.
type mayCallCache struct {
	mu sync.Mutex
	m  map[mayCallKey][]string
}

func (c *mayCallCache) get(k mayCallKey) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *mayCallCache) put(k mayCallKey, v []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxMayCallEntries {
		c.m = map[mayCallKey][]string{}
	}
	c.m[k] = v
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
