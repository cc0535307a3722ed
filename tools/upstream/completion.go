package upstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// ServerOptions are what the gateway needs on the server it is attached
// to, decided from what the upstreams declared at Start: the completions
// capability (and the providers that route completion/complete to the
// owning upstream) when one of them offers completions, logging when one
// of them logs, resource subscriptions when one of them offers them (and
// Attach then relays them: both must be used together).
// mcp-go fixes capabilities when the server is built, so an upstream that
// gains a capability after a reconnect does not change them.
func (g *Gateway) ServerOptions() []server.ServerOption {
	var completions, logging bool
	for _, u := range g.ups {
		caps := u.Capabilities()
		completions = completions || caps.Completions != nil
		logging = logging || caps.Logging != nil
	}
	var opts []server.ServerOption
	if logging {
		opts = append(opts, server.WithLogging())
	}
	if g.subscribable() {
		opts = append(opts, server.WithResourceCapabilities(true, true))
	}
	if completions {
		c := completer{g}
		opts = append(opts, server.WithCompletions(),
			server.WithPromptCompletionProvider(c), server.WithResourceCompletionProvider(c))
	}
	return opts
}

// completer routes completion/complete to the upstream that owns the
// prompt or resource template. mcp-go has one provider of each kind per
// server, so it dispatches by name.
type completer struct{ g *Gateway }

// errNoCompletion is what a caller learns about a prompt or resource it
// may not use, or that no upstream serves: the same for both.
var errNoCompletion = errors.New("no such prompt or resource")

func (c completer) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (*mcp.Completion, error) {
	u, ok := c.g.owner(policy.Prompt, name)
	if !ok || !c.g.mayUse(ctx, policy.Prompt, name) {
		return nil, fmt.Errorf("%w: prompt %q", errNoCompletion, untrusted.Clip(name, 200))
	}
	ref := mcp.PromptReference{Type: "ref/prompt", Name: strings.TrimPrefix(name, u.entry.NamePrefix())}
	return c.g.complete(ctx, u, ref, arg, cctx)
}

func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (*mcp.Completion, error) {
	u, ok := c.g.owner(policy.Resource, uri)
	if !ok || !c.g.mayUse(ctx, policy.Resource, uri) {
		return nil, fmt.Errorf("%w: resource %q", errNoCompletion, untrusted.Clip(uri, 200))
	}
	return c.g.complete(ctx, u, mcp.ResourceReference{Type: "ref/resource", URI: uri}, arg, cctx)
}

// complete forwards one completion/complete to u; an upstream without the
// completions capability completes nothing.
func (g *Gateway) complete(ctx context.Context, u *Upstream, ref any, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (*mcp.Completion, error) {
	if u.Capabilities().Completions == nil {
		return &mcp.Completion{Values: []string{}}, nil
	}
	return forward(ctx, u, func(ctx context.Context, c *conn) (*mcp.Completion, error) {
		req := mcp.CompleteRequest{}
		req.Params.Ref = ref
		req.Params.Argument = arg
		req.Params.Context = cctx
		res, err := c.client.Complete(ctx, req)
		if err != nil {
			return nil, err
		}
		return &res.Completion, nil
	})
}

// owner finds the upstream that registered a prompt (by its served name)
// or a resource (by URI or URI template).
func (g *Gateway) owner(kind policy.Kind, name string) (*Upstream, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.ups {
		r := g.names[u]
		switch kind {
		case policy.Prompt:
			if slices.Contains(r.prompts, name) {
				return u, true
			}
		case policy.Tool:
			if slices.Contains(r.tools, name) {
				return u, true
			}
		case policy.Resource:
			if slices.Contains(r.resources, name) || slices.Contains(r.templates, name) {
				return u, true
			}
		}
	}
	return nil, false
}
