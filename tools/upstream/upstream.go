package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// State is where an upstream's connection stands.
type State string

// The states an upstream moves through.
const (
	Starting   State = "starting"   // first connection under way
	Up         State = "up"         // connected; calls go through
	Restarting State = "restarting" // lost; reconnecting with backoff
	Down       State = "down"       // stopped (shutdown)
)

// Lists is what an upstream offers, as it named it.
type Lists struct {
	Tools     []mcp.Tool
	Prompts   []mcp.Prompt
	Resources []mcp.Resource
	Templates []mcp.ResourceTemplate
}

// Upstream is one relayed MCP server: one connection (one child process
// for stdio) shared by every caller, requests multiplexed over it.
type Upstream struct {
	entry Entry
	opts  Options
	log   *slog.Logger

	// changed is told when the lists change (reconnect, list_changed).
	changed func(*Upstream)
	// notify relays the upstream's notifications.
	notify func(*Upstream, mcp.JSONRPCNotification)
	// requests answers the upstream's sampling, elicitation and roots
	// requests (nil: refused).
	requests *serverRequests
	// inflight are the calls forwarded to it now.
	inflight inFlight
	// callers bounds each client's requests in flight, across the
	// gateway's upstreams.
	callers *inFlightLimit

	mu       sync.RWMutex
	conn     *conn
	sse      bool // the live connection is legacy SSE
	state    State
	lastErr  string
	restarts int
	lists    Lists
	caps     mcp.ServerCapabilities

	// tokens are the minted tokens it gets (callerToken entries).
	tokens tokenCache

	calls     atomic.Int64
	failures  atomic.Int64
	refreshes atomic.Int64 // list re-reads after list_changed
	stopped   atomic.Bool
}

// conn is one live connection.
type conn struct {
	client *client.Client
	// lost is closed when the connection ends on its own (the child
	// exited, the HTTP server went away).
	lost     chan struct{}
	lostOnce sync.Once
	// sse: spoken to over legacy SSE.
	sse bool
	// refreshing and refreshAgain coalesce list_changed refreshes.
	refreshing, refreshAgain atomic.Bool
	// caps are what the server declared when it initialized.
	caps mcp.ServerCapabilities
	// stop ends the connection: closes the client, then stops what is
	// left of a child's process group.
	stop func()
	// http is the client's Streamable HTTP transport, through which
	// tools/call goes past the client (calltool.go); nil for stdio and
	// legacy SSE.
	http transport.Interface
	// callIDs numbers the requests sent past the client.
	callIDs atomic.Uint64
}

// Name is the entry's name.
func (u *Upstream) Name() string { return u.entry.Name }

// Entry is the upstream's configuration.
func (u *Upstream) Entry() Entry { return u.entry }

// Status is a snapshot for /health and list_upstreams.
type Status struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
	State     State  `json:"state"`
	LastError string `json:"last_error,omitempty"`
	Restarts  int    `json:"restarts"`
	Tools     int    `json:"tools"`
	Prompts   int    `json:"prompts"`
	Resources int    `json:"resources"`
	Templates int    `json:"resource_templates"`
	Calls     int64  `json:"calls"`
	Failures  int64  `json:"failed_calls"`
}

// Status reports the upstream's state and counts.
func (u *Upstream) Status() Status {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return Status{
		Name: u.entry.Name, Transport: u.transportName(), State: u.state, LastError: u.lastErr,
		Restarts: u.restarts, Tools: len(u.lists.Tools), Prompts: len(u.lists.Prompts),
		Resources: len(u.lists.Resources), Templates: len(u.lists.Templates),
		Calls: u.calls.Load(), Failures: u.failures.Load(),
	}
}

func (u *Upstream) transportName() string {
	switch {
	case u.entry.IsStdio():
		return "stdio"
	case u.sse:
		return "sse"
	}
	return "streamable-http"
}

// Lists returns what the upstream offers now.
func (u *Upstream) Lists() Lists {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.lists
}

// Capabilities are what the upstream declared when it last connected.
func (u *Upstream) Capabilities() mcp.ServerCapabilities {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.caps
}

// client returns the live client, or an error naming the upstream.
func (u *Upstream) client() (*client.Client, error) {
	c, err := u.live()
	if err != nil {
		return nil, err
	}
	return c.client, nil
}

// live returns the live connection, or an error naming the upstream.
func (u *Upstream) live() (*conn, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.conn == nil {
		msg := fmt.Sprintf("upstream %q is %s", u.entry.Name, u.state)
		if u.lastErr != "" {
			msg += ": " + u.lastErr
		}
		return nil, errors.New(msg)
	}
	return u.conn, nil
}

// connect dials the upstream, initializes the session and reads its
// lists, each attempt within opts.StartTimeout. life is the context the
// connection lives in (a stdio child is tied to it).
func (u *Upstream) connect(life context.Context) (*conn, Lists, error) {
	var firstErr error
	for _, dial := range u.dialers() {
		c, lists, err := u.attempt(life, dial)
		if err == nil {
			return c, lists, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, Lists{}, firstErr
}

// dialers lists the ways to reach the upstream, in the order to try them.
// A URL without a "type" is tried over Streamable HTTP and then legacy
// SSE (servers that predate Streamable HTTP), or the other way round when
// its path ends in /sse, the legacy transport's conventional endpoint.
func (u *Upstream) dialers() []func(context.Context) (*conn, error) {
	switch {
	case u.entry.IsStdio():
		return []func(context.Context) (*conn, error){u.dialStdio}
	case u.entry.Type == "sse":
		return []func(context.Context) (*conn, error){u.dialSSE}
	case u.entry.Type != "":
		return []func(context.Context) (*conn, error){u.dialStreamable}
	case strings.HasSuffix(strings.TrimRight(u.entry.URL, "/"), "/sse"):
		return []func(context.Context) (*conn, error){u.dialSSE, u.dialStreamable}
	}
	return []func(context.Context) (*conn, error){u.dialStreamable, u.dialSSE}
}

func (u *Upstream) attempt(life context.Context, dial func(context.Context) (*conn, error)) (*conn, Lists, error) {
	ctx, cancel := context.WithTimeout(life, u.opts.StartTimeout)
	defer cancel()
	c, err := dial(life)
	if err != nil {
		return nil, Lists{}, err
	}
	lists, err := u.initialize(ctx, c)
	if err != nil {
		c.stop()
		return nil, Lists{}, err
	}
	return c, lists, nil
}

func (u *Upstream) dialStreamable(life context.Context) (*conn, error) {
	opts := []transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(u.entry.Headers),
		transport.WithHTTPLogger(u.log),
		transport.WithHTTPBasicClient(newHTTPClient(u)),
		// What the upstream sends outside a call (log messages, resource
		// updates, list changes) comes on the standalone GET stream.
		transport.WithContinuousListening(),
	}
	if u.entry.CallerToken != nil {
		opts = append(opts, transport.WithHTTPHeaderFunc(u.authHeader))
	}
	tr, err := transport.NewStreamableHTTP(u.entry.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	ct := cancellingHTTP{tr, newCancelNotices()}
	c, err := u.start(life, ct)
	if err != nil {
		return nil, err
	}
	c.http = ct
	return c, nil
}

func (u *Upstream) dialSSE(life context.Context) (*conn, error) {
	opts := []transport.ClientOption{transport.WithHeaders(u.entry.Headers), transport.WithHTTPClient(newHTTPClient(u))}
	if u.entry.CallerToken != nil {
		opts = append(opts, transport.WithHeaderFunc(u.authHeader))
	}
	tr, err := transport.NewSSE(u.entry.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	c, err := u.start(life, cancellingSSE{tr, newCancelNotices()})
	if err != nil {
		return nil, err
	}
	c.sse = true
	c.client.OnConnectionLost(func(error) { c.markLost() })
	return c, nil
}

// start wraps a transport in a client and starts it.
func (u *Upstream) start(life context.Context, tr transport.Interface) (*conn, error) {
	opts := []client.ClientOption{client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)}
	if u.requests != nil {
		opts = append(opts, client.WithSamplingHandler(u.requests), client.WithElicitationHandler(u.requests),
			client.WithRootsHandler(u.requests))
	}
	cl := client.NewClient(tr, opts...)
	if err := cl.Start(life); err != nil {
		_ = cl.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	c := &conn{client: cl, lost: make(chan struct{})}
	c.stop = func() { _ = cl.Close() }
	cl.OnNotification(func(n mcp.JSONRPCNotification) { u.onNotification(c, n) })
	return c, nil
}

// scheduleRefresh re-reads u's lists after a list_changed: at most one
// refresh runs per connection, and any number of notifications arriving
// meanwhile cause one more, so a chatty upstream cannot pile up work.
func (c *conn) scheduleRefresh(u *Upstream) {
	if c.refreshing.Swap(true) {
		c.refreshAgain.Store(true)
		return
	}
	go func() {
		for {
			u.refresh(c)
			if !c.refreshAgain.Swap(false) {
				c.refreshing.Store(false)
				if !c.refreshAgain.Load() || c.refreshing.Swap(true) {
					return
				}
			}
		}
	}()
}

// markLost closes c.lost once.
func (c *conn) markLost() { c.lostOnce.Do(func() { close(c.lost) }) }

// initialize performs the MCP handshake and reads every list the server
// declares.
func (u *Upstream) initialize(ctx context.Context, c *conn) (Lists, error) {
	res, err := c.client.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_LEGACY_PROTOCOL_VERSION,
		ClientInfo:      mcp.Implementation{Name: "mcpauth", Version: u.opts.Version},
	}})
	if err != nil {
		return Lists{}, fmt.Errorf("initialize: %w", err)
	}
	c.caps = res.Capabilities
	return u.readLists(ctx, c.client, res.Capabilities)
}

func (u *Upstream) readLists(ctx context.Context, cl *client.Client, caps mcp.ServerCapabilities) (Lists, error) {
	var l Lists
	if caps.Tools != nil {
		tools, err := listTools(ctx, cl)
		if err != nil {
			return Lists{}, fmt.Errorf("tools/list: %w", err)
		}
		l.Tools = tools
	}
	if caps.Prompts != nil {
		r, err := cl.ListPrompts(ctx, mcp.ListPromptsRequest{})
		if err != nil {
			return Lists{}, fmt.Errorf("prompts/list: %w", err)
		}
		l.Prompts = r.Prompts
	}
	if caps.Resources != nil {
		r, err := cl.ListResources(ctx, mcp.ListResourcesRequest{})
		if err != nil {
			return Lists{}, fmt.Errorf("resources/list: %w", err)
		}
		l.Resources = r.Resources
		t, err := cl.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
		if err != nil {
			return Lists{}, fmt.Errorf("resources/templates/list: %w", err)
		}
		l.Templates = t.ResourceTemplates
	}
	return l, nil
}

// run keeps the upstream connected until life ends: it serves on c, and
// when c is lost, reconnects with exponential backoff.
func (u *Upstream) run(life context.Context, c *conn) {
	for {
		select {
		case <-life.Done():
			u.shutdown()
			return
		case <-c.lost:
		}
		u.setLost(c, "connection lost")
		u.log.Warn("upstream connection lost; reconnecting", "upstream", u.entry.Name)
		c = u.reconnect(life)
		if c == nil {
			u.shutdown()
			return
		}
	}
}

// reconnect retries until it connects (returning the connection, already
// in use) or life ends (nil).
func (u *Upstream) reconnect(life context.Context) *conn {
	delay := u.opts.BackoffMin
	for {
		select {
		case <-life.Done():
			return nil
		case <-time.After(delay):
		}
		c, lists, err := u.connect(life)
		if err == nil {
			u.setUp(c, lists)
			u.log.Info("upstream reconnected", "upstream", u.entry.Name, "tools", len(lists.Tools))
			return c
		}
		u.mu.Lock()
		u.lastErr = err.Error()
		u.mu.Unlock()
		u.log.Warn("upstream reconnect failed", "upstream", u.entry.Name, "err", err, "retry_in", delay)
		delay = min(delay*2, u.opts.BackoffMax)
	}
}

func (u *Upstream) setUp(c *conn, l Lists) {
	u.mu.Lock()
	if u.state == Restarting {
		u.restarts++
	}
	u.conn, u.sse, u.state, u.lastErr, u.lists, u.caps = c, c.sse, Up, "", l, c.caps
	u.mu.Unlock()
	if u.changed != nil {
		u.changed(u)
	}
}

func (u *Upstream) setLost(c *conn, why string) {
	c.stop()
	u.mu.Lock()
	if u.conn == c {
		u.conn, u.state, u.lastErr = nil, Restarting, why
	}
	u.mu.Unlock()
}

func (u *Upstream) shutdown() {
	u.stopped.Store(true)
	u.mu.Lock()
	c := u.conn
	u.conn, u.state = nil, Down
	u.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// refresh re-reads the lists after a list_changed notification.
func (u *Upstream) refresh(c *conn) {
	u.refreshes.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), u.opts.StartTimeout)
	defer cancel()
	l, err := u.readLists(ctx, c.client, c.client.GetServerCapabilities())
	if err != nil {
		u.log.Warn("upstream lists could not be re-read", "upstream", u.entry.Name, "err", err)
		return
	}
	u.mu.Lock()
	if u.conn != c {
		u.mu.Unlock()
		return
	}
	u.lists = l
	u.mu.Unlock()
	if u.changed != nil {
		u.changed(u)
	}
}

func (u *Upstream) onNotification(c *conn, n mcp.JSONRPCNotification) {
	switch n.Method {
	case string(mcp.MethodNotificationToolsListChanged), string(mcp.MethodNotificationPromptsListChanged),
		string(mcp.MethodNotificationResourcesListChanged):
		c.scheduleRefresh(u)
		return
	}
	if u.notify != nil {
		u.notify(u, n)
	}
}
