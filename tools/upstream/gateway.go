package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/mcpauth/mcpauth/internal/delivery"
)

// Options tune the gateway; zero fields get the defaults named.
type Options struct {
	// Logger receives connection events and children's stderr; never a
	// caller's token or an entry's header values.
	Logger *slog.Logger
	// Version is sent as mcpauth's client version.
	Version string
	// CallTimeout bounds each forwarded call unless the entry sets its
	// own; 60s.
	CallTimeout time.Duration
	// StartTimeout bounds connecting and reading the lists; 30s.
	StartTimeout time.Duration
	// StopTimeout is how long a stdio child gets to exit after its stdin
	// closes before its process group is killed; 5s.
	StopTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay between reconnects;
	// 500ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Access answers the operator's policy for what the server's guards
	// do not see (completions, log messages, subscriptions); nil: every
	// caller may use everything.
	Access Access
	// Env is the environment stdio children start from ("K=V"); the
	// binary passes its own minus mcpauth's secrets. Nil: empty.
	Env []string
	// Delegator mints the tokens of "callerToken" upstreams; Start
	// refuses such an entry without one.
	Delegator Delegator
	// MaxInFlightPerClient bounds the requests one client (a token's
	// subject) has relayed to upstreams and not yet had answered, across
	// every upstream; 64. A request over it is refused at once, as a tool
	// error for tools/call and an error for the other requests.
	MaxInFlightPerClient int
	// MaxSubscriptionsPerSession bounds the resources one session
	// subscribes to through the gateway; 128. A resources/subscribe over
	// it is refused until the session unsubscribes from one.
	MaxSubscriptionsPerSession int
	// Refused, when set, counts one refusal by a limit, named as Limits
	// names it (for /metrics).
	Refused func(limit string)
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, 60*time.Second)
	def(&o.StartTimeout, 30*time.Second)
	def(&o.StopTimeout, 5*time.Second)
	def(&o.BackoffMin, 500*time.Millisecond)
	def(&o.BackoffMax, 30*time.Second)
	if o.MaxInFlightPerClient <= 0 {
		o.MaxInFlightPerClient = defaultMaxInFlightPerClient
	}
	if o.MaxSubscriptionsPerSession <= 0 {
		o.MaxSubscriptionsPerSession = defaultMaxSubscriptionsPerSession
	}
	if o.Refused == nil {
		o.Refused = func(string) {}
	}
}

// Gateway is the set of upstreams relayed through one mcp-go server.
type Gateway struct {
	opts Options
	// version counts the changes of what is registered on srv.
	version atomic.Uint64
	ups     []*Upstream
	log     *slog.Logger

	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// goMu guards closing, so no goroutine joins wg once Close waits.
	goMu    sync.Mutex
	closing bool

	// mu guards what is registered on srv.
	mu       sync.Mutex
	srv      *server.MCPServer
	reserved map[string]string // own tool and prompt names → "mcpauth"
	names    map[*Upstream]registered
	// templates are every upstream's registered templates.
	templates map[*Upstream][]server.ServerResourceTemplate

	progress progressRelay
	logs     logRelay
	subs     subRelay
}

// registered is what one upstream has on the server now.
type registered struct {
	tools, prompts, resources, templates []string
}

// New returns a gateway for the entries; Start connects it.
func New(entries []Entry, opts Options) *Gateway {
	opts.defaults()
	g := &Gateway{opts: opts, log: opts.Logger, names: map[*Upstream]registered{}, templates: map[*Upstream][]server.ServerResourceTemplate{}}
	g.progress.m = map[string]progressTarget{}
	g.logs.sessions, g.logs.sent = map[string]logSession{}, map[*Upstream]sentLevel{}
	g.subs.sessions, g.subs.count, g.subs.client = map[string]*subSession{}, map[subKey]int{}, map[subKey]*client.Client{}
	g.subs.ops = map[subKey]*keyOp{}
	limit := newInFlightLimit(opts.MaxInFlightPerClient, opts.Refused)
	for _, e := range entries {
		u := &Upstream{entry: e, opts: opts, log: opts.Logger, state: Starting, callers: limit}
		u.changed = g.changed
		u.notify = g.relayNotification
		u.requests = &serverRequests{g: g, u: u}
		g.ups = append(g.ups, u)
	}
	return g
}

// Upstreams returns the upstreams in configuration order.
func (g *Gateway) Upstreams() []*Upstream { return g.ups }

// Statuses reports every upstream.
func (g *Gateway) Statuses() []Status {
	out := make([]Status, 0, len(g.ups))
	for _, u := range g.ups {
		out = append(out, u.Status())
	}
	return out
}

// Start connects every upstream (concurrently, each within StartTimeout)
// and checks that no two of them, nor an upstream and one of reserved
// (mcpauth's own tool and prompt names), serve the same name. Any failure
// stops everything started and is returned naming the entry: the server
// never starts half-configured. The connections live until Close.
func (g *Gateway) Start(ctx context.Context, reserved []string) error {
	for _, u := range g.ups {
		if u.entry.CallerToken != nil && g.opts.Delegator == nil {
			return fmt.Errorf("upstream %q: %w", u.entry.Name, errNoDelegator)
		}
	}
	g.life, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.reserved = map[string]string{}
	for _, n := range reserved {
		g.reserved[n] = "mcpauth"
	}
	type result struct {
		c     *conn
		lists Lists
		err   error
	}
	results := make([]result, len(g.ups))
	var wg sync.WaitGroup
	for i, u := range g.ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, l, err := u.connect(g.life)
			results[i] = result{c, l, err}
		}()
	}
	wg.Wait()
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("upstream %q: %w", g.ups[i].entry.Name, r.err))
		}
	}
	if err := errors.Join(errs...); err == nil {
		lists := make([]Lists, len(results))
		for i, r := range results {
			lists[i] = r.lists
		}
		errs = append(errs, g.collisions(lists))
	}
	if err := errors.Join(errs...); err != nil {
		for _, r := range results {
			if r.c != nil {
				r.c.stop()
			}
		}
		g.cancel()
		return err
	}
	for i, u := range g.ups {
		u.mu.Lock()
		u.conn, u.sse, u.state, u.lists, u.caps = results[i].c, results[i].c.sse, Up, results[i].lists, results[i].c.caps
		u.mu.Unlock()
		g.wg.Add(1)
		go func() { defer g.wg.Done(); u.run(g.life, results[i].c) }()
		g.log.Info("upstream connected", "upstream", u.entry.Name, "transport", u.transportName(),
			"tools", len(results[i].lists.Tools), "prompts", len(results[i].lists.Prompts),
			"resources", len(results[i].lists.Resources))
	}
	return nil
}

// collisions reports every name two sources would serve.
func (g *Gateway) collisions(lists []Lists) error {
	var errs []error
	for _, kind := range []string{"tool", "prompt", "resource", "resource template"} {
		owner := map[string]string{}
		if kind == "tool" || kind == "prompt" {
			for n, o := range g.reserved {
				owner[n] = o
			}
		}
		for i, u := range g.ups {
			for _, n := range exposed(u.entry, lists[i], kind) {
				if o, ok := owner[n]; ok {
					errs = append(errs, fmt.Errorf("%s %q is served by both %s and upstream %q; set a \"prefix\" on one of them", kind, n, describeOwner(o), u.entry.Name))
					continue
				}
				owner[n] = u.entry.Name
			}
		}
	}
	return errors.Join(errs...)
}

func describeOwner(o string) string {
	if o == "mcpauth" {
		return "mcpauth itself"
	}
	return fmt.Sprintf("upstream %q", o)
}

// exposed lists the names an upstream serves for kind.
func exposed(e Entry, l Lists, kind string) []string {
	var out []string
	switch kind {
	case "tool":
		for _, t := range l.Tools {
			out = append(out, e.NamePrefix()+t.Name)
		}
	case "prompt":
		for _, p := range l.Prompts {
			out = append(out, e.NamePrefix()+p.Name)
		}
	case "resource":
		for _, r := range l.Resources {
			out = append(out, r.URI)
		}
	case "resource template":
		for _, t := range l.Templates {
			out = append(out, t.URITemplate.Raw())
		}
	}
	return out
}

// Attach registers every upstream's tools, prompts and resources on s,
// and keeps them in step as upstreams reconnect or change their lists.
func (g *Gateway) Attach(s *server.MCPServer) {
	h := s.GetHooks()
	if h == nil {
		h = &server.Hooks{}
		server.WithHooks(h)(s)
	}
	g.logHooks(h)
	if g.subscribable() {
		g.subscriptionHooks(h)
	}
	g.mu.Lock()
	g.srv = s
	g.mu.Unlock()
	for _, u := range g.ups {
		g.changed(u)
	}
}

// Close stops every upstream (stdio children and their process groups
// included) and waits for them.
func (g *Gateway) Close() {
	if g.cancel == nil {
		return
	}
	g.goMu.Lock()
	g.closing = true
	g.goMu.Unlock()
	g.cancel()
	g.wg.Wait()
}

// spawn runs f in a goroutine Close waits for, unless Close has begun.
func (g *Gateway) spawn(f func()) {
	g.goMu.Lock()
	defer g.goMu.Unlock()
	if g.closing || g.life == nil {
		return
	}
	g.wg.Add(1)
	go func() { defer g.wg.Done(); f() }()
}

// changed re-registers u's names after its lists changed. A name another
// source already serves is refused (logged), never resolved by order.
func (g *Gateway) changed(u *Upstream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv == nil {
		return
	}
	l := u.Lists()
	old := g.names[u]
	taken := g.takenExcept(u)
	var now registered
	prefix := u.entry.NamePrefix()
	tools, toolNames := collect(g, u, taken, "tool", l.Tools, func(t mcp.Tool) string { return prefix + t.Name },
		func(t mcp.Tool, name string) server.ServerTool {
			h := g.callTool(u, t.Name)
			t.Name = name
			return server.ServerTool{Tool: t, Handler: h}
		})
	prompts, promptNames := collect(g, u, taken, "prompt", l.Prompts, func(p mcp.Prompt) string { return prefix + p.Name },
		func(p mcp.Prompt, name string) server.ServerPrompt {
			h := g.getPrompt(u, p.Name)
			p.Name = name
			return server.ServerPrompt{Prompt: p, Handler: h}
		})
	resources, resourceURIs := collect(g, u, taken, "resource", l.Resources, func(r mcp.Resource) string { return r.URI },
		func(r mcp.Resource, _ string) server.ServerResource {
			return server.ServerResource{Resource: r, Handler: g.readResource(u)}
		})
	templates, templateURIs := collect(g, u, taken, "resource template", l.Templates, func(t mcp.ResourceTemplate) string { return t.URITemplate.Raw() },
		func(t mcp.ResourceTemplate, _ string) server.ServerResourceTemplate {
			return server.ServerResourceTemplate{Template: t, Handler: server.ResourceTemplateHandlerFunc(g.readResource(u))}
		})
	now.tools, now.prompts, now.resources, now.templates = toolNames, promptNames, resourceURIs, templateURIs
	if gone := without(old.tools, now.tools); len(gone) > 0 {
		g.srv.DeleteTools(gone...)
	}
	if gone := without(old.prompts, now.prompts); len(gone) > 0 {
		g.srv.DeletePrompts(gone...)
	}
	if gone := without(old.resources, now.resources); len(gone) > 0 {
		g.srv.DeleteResources(gone...)
	}
	if len(tools) > 0 {
		g.srv.AddTools(tools...)
	}
	if len(prompts) > 0 {
		g.srv.AddPrompts(prompts...)
	}
	if len(resources) > 0 {
		g.srv.AddResources(resources...)
	}
	g.names[u] = now
	if len(templates) > 0 || len(old.templates) > 0 {
		// mcp-go removes templates only all at once: set the union.
		g.templates[u] = templates
		var all []server.ServerResourceTemplate
		for _, o := range g.ups {
			all = append(all, g.templates[o]...)
		}
		g.srv.SetResourceTemplates(all...)
	}
	g.version.Add(1) // after the server's lists changed
	g.spawn(g.syncLogLevels)
	g.spawn(func() { g.resubscribe(u) })
}

// ToolsVersion changes whenever the tools, prompts or resources the
// gateway registers change.
func (g *Gateway) ToolsVersion() uint64 { return g.version.Load() }

// takenExcept maps every name registered by sources other than u to its
// owner, by kind.
// collect turns what u offers of one kind into what the server serves:
// each item under the name served gives it (prefixed, or its URI), minus
// those whose name another source already serves (refused and logged).
// It returns the server's entries and their names.
func collect[T, S any](g *Gateway, u *Upstream, taken map[string]map[string]string, kind string, items []T,
	served func(T) string, build func(item T, name string) S) ([]S, []string) {
	var out []S
	var names []string
	for _, it := range items {
		name := served(it)
		if g.refuse(u, kind, name, taken) {
			continue
		}
		out = append(out, build(it, name))
		names = append(names, name)
	}
	return out, names
}

func (g *Gateway) takenExcept(u *Upstream) map[string]map[string]string {
	taken := map[string]map[string]string{"tool": {}, "prompt": {}, "resource": {}, "resource template": {}}
	for n, o := range g.reserved {
		taken["tool"][n], taken["prompt"][n] = o, o
	}
	for other, r := range g.names {
		if other == u {
			continue
		}
		for _, n := range r.tools {
			taken["tool"][n] = other.entry.Name
		}
		for _, n := range r.prompts {
			taken["prompt"][n] = other.entry.Name
		}
		for _, n := range r.resources {
			taken["resource"][n] = other.entry.Name
		}
		for _, n := range r.templates {
			taken["resource template"][n] = other.entry.Name
		}
	}
	return taken
}

func (g *Gateway) refuse(u *Upstream, kind, name string, taken map[string]map[string]string) bool {
	o, ok := taken[kind][name]
	if ok {
		g.log.Error("upstream name refused: another source serves it", "upstream", u.entry.Name,
			"kind", kind, "name", name, "served_by", o)
	}
	return ok
}

func without(old, now []string) []string {
	var out []string
	for _, n := range old {
		if !slices.Contains(now, n) {
			out = append(out, n)
		}
	}
	return out
}

// forward runs one request on u's connection: the caller's in-flight
// limit, the per-call timeout, the in-flight record that routes
// server-to-client requests, the call and failure counts, and an error
// that names the upstream.
func forward[T any](ctx context.Context, u *Upstream, do func(context.Context, *conn) (T, error)) (T, error) {
	var zero T
	release, err := u.callers.acquire(ctx)
	if err != nil {
		return zero, err
	}
	defer release()
	cl, err := u.live()
	if err != nil {
		return zero, err
	}
	ctx, err = u.withCallerToken(ctx)
	if err != nil {
		u.failures.Add(1)
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout())
	defer cancel()
	ctx, untrack := u.track(ctx)
	defer untrack()
	u.calls.Add(1)
	res, err := do(ctx, cl)
	if err != nil {
		u.failures.Add(1)
		return zero, errors.New(u.describe(ctx, err))
	}
	return res, nil
}

// callTool forwards a call to u's tool named name; a failure is a tool
// error naming the upstream.
func (g *Gateway) callTool(u *Upstream, name string) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		// The progress and log messages the call relays to its caller are
		// written before its answer (settle, mark3labs/mcp-go#969).
		notes := delivery.From(ctx)
		var written int64
		if notes != nil {
			written = notes.Written()
		}
		logged := g.logsRelayed(ctx)
		var progressed int64
		defer func() { settle(ctx, notes, written, progressed+int64(g.logsRelayed(ctx)-logged)) }()
		res, err := forward(ctx, u, func(ctx context.Context, c *conn) (*mcp.CallToolResult, error) {
			meta, done := g.outgoingMeta(ctx, u, req.Params.Meta)
			defer func() { progressed = done() }()
			if c.http != nil {
				return c.callTool(ctx, name, req.Params, meta)
			}
			out := mcp.CallToolRequest{}
			out.Params.Name = name
			out.Params.Arguments = req.Params.Arguments
			out.Params.Meta = meta
			return c.client.CallTool(ctx, out)
		})
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return res, nil
	}
}

func (g *Gateway) getPrompt(u *Upstream, name string) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return forward(ctx, u, func(ctx context.Context, c *conn) (*mcp.GetPromptResult, error) {
			out := mcp.GetPromptRequest{}
			out.Params.Name = name
			out.Params.Arguments = req.Params.Arguments
			return c.client.GetPrompt(ctx, out)
		})
	}
}

func (g *Gateway) readResource(u *Upstream) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return forward(ctx, u, func(ctx context.Context, c *conn) ([]mcp.ResourceContents, error) {
			out := mcp.ReadResourceRequest{}
			out.Params.URI = req.Params.URI
			res, err := c.client.ReadResource(ctx, out)
			if err != nil {
				return nil, err
			}
			return res.Contents, nil
		})
	}
}

func (u *Upstream) timeout() time.Duration {
	if u.entry.Timeout > 0 {
		return time.Duration(u.entry.Timeout)
	}
	return u.opts.CallTimeout
}

// describe turns a failed forward into the message the caller sees,
// naming the upstream.
func (u *Upstream) describe(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("upstream %q did not answer within %s", u.entry.Name, u.timeout())
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Sprintf("call to upstream %q cancelled", u.entry.Name)
	case u.stopped.Load():
		return fmt.Sprintf("upstream %q is shutting down", u.entry.Name)
	case isTransportClosed(err):
		return fmt.Sprintf("upstream %q stopped while handling the call; it is restarting", u.entry.Name)
	}
	return fmt.Sprintf("upstream %q: %v", u.entry.Name, err)
}
