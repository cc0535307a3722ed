package upstream

import (
	"context"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Requests an upstream makes of its client (sampling/createMessage,
// elicitation/create, roots/list) are relayed to the caller whose call
// caused them, and refused with a JSON-RPC error when that caller's client
// does not support them (it did not declare the capability) or when no
// single caller can be named:
//   - Over Streamable HTTP (and SSE) the request arrives on the stream of
//     the forwarded call's POST, in a context that carries the caller's
//     request: it goes to that caller, however many calls are in flight.
//   - Over stdio, and for an HTTP request on the standalone GET stream,
//     nothing ties the request to a call. It goes to the caller when
//     every call to that upstream in flight comes from one client session
//     (one call, or several from the same session: whichever asked, the
//     same client answers), and is refused as ambiguous otherwise: calls
//     from two sessions, even of the same caller, or none (as when a
//     server asks for roots right after it starts).
// mcpauth declares sampling, elicitation and roots to every upstream, so
// servers that offer tools only to capable clients offer them.

// callerKey marks a forwarded request's context with the caller's.
type callerKey struct{}

// inFlight counts the forwarded calls to one upstream, by caller.
type inFlight struct {
	mu  sync.Mutex
	seq uint64
	m   map[uint64]context.Context
}

// track records a forwarded call until done, and marks ctx with the
// caller's context.
func (u *Upstream) track(ctx context.Context) (context.Context, func()) {
	u.inflight.mu.Lock()
	if u.inflight.m == nil {
		u.inflight.m = map[uint64]context.Context{}
	}
	u.inflight.seq++
	id := u.inflight.seq
	u.inflight.m[id] = ctx
	u.inflight.mu.Unlock()
	return context.WithValue(ctx, callerKey{}, ctx), func() {
		u.inflight.mu.Lock()
		delete(u.inflight.m, id)
		u.inflight.mu.Unlock()
	}
}

// soleCaller is the caller of the calls in flight to u when they all
// come from one client session (the latest of them, whose request is
// still being answered), and how many calls are in flight.
func (u *Upstream) soleCaller() (context.Context, int) {
	u.inflight.mu.Lock()
	defer u.inflight.mu.Unlock()
	var (
		latest  context.Context
		seq     uint64
		session string
	)
	for id, c := range u.inflight.m {
		s := server.ClientSessionFromContext(c)
		if s == nil || s.SessionID() == "" {
			if len(u.inflight.m) == 1 {
				return c, 1
			}
			return nil, len(u.inflight.m)
		}
		if latest != nil && s.SessionID() != session {
			return nil, len(u.inflight.m)
		}
		session = s.SessionID()
		if latest == nil || id > seq {
			latest, seq = c, id
		}
	}
	return latest, len(u.inflight.m)
}

// serverRequests answers u's requests by asking the caller.
type serverRequests struct {
	g *Gateway
	u *Upstream
}

// caller finds the caller to ask for what, and the server to ask through.
func (r serverRequests) caller(ctx context.Context, what string, supported func(mcp.ClientCapabilities) bool) (context.Context, *server.MCPServer, error) {
	caller, _ := ctx.Value(callerKey{}).(context.Context)
	if caller == nil {
		var n int
		if caller, n = r.u.soleCaller(); caller == nil {
			return nil, nil, fmt.Errorf("mcpauth cannot relay %s from upstream %q: %d calls to it are in flight and nothing says which caller asked (relayed only while every call in flight comes from one client session)", what, r.u.entry.Name, n)
		}
	}
	r.g.mu.Lock()
	srv := r.g.srv
	r.g.mu.Unlock()
	s := server.ClientSessionFromContext(caller)
	info, ok := s.(server.SessionWithClientInfo)
	if srv == nil || !ok || !supported(info.GetClientCapabilities()) {
		return nil, nil, fmt.Errorf("the calling client does not support %s", what)
	}
	if !canAsk(s, what) {
		return nil, nil, fmt.Errorf("the calling client's transport does not carry %s requests", what)
	}
	return caller, srv, nil
}

// canAsk reports whether the session's transport can send the request.
func canAsk(s server.ClientSession, what string) bool {
	var ok bool
	switch what {
	case "sampling":
		_, ok = s.(server.SessionWithSampling)
	case "elicitation":
		_, ok = s.(server.SessionWithElicitation)
	case "roots":
		_, ok = s.(server.SessionWithRoots)
	}
	return ok
}

// within is the caller's context, also ended when ctx (the upstream's
// request) ends.
func within(caller, ctx context.Context) (context.Context, func()) {
	c, cancel := context.WithCancel(caller)
	stop := context.AfterFunc(ctx, cancel)
	return c, func() { stop(); cancel() }
}

func (r serverRequests) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	caller, srv, err := r.caller(ctx, "sampling", func(c mcp.ClientCapabilities) bool { return c.Sampling != nil })
	if err != nil {
		return nil, err
	}
	c, done := within(caller, ctx)
	defer done()
	return srv.RequestSampling(c, req)
}

func (r serverRequests) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	caller, srv, err := r.caller(ctx, "elicitation", func(c mcp.ClientCapabilities) bool { return c.Elicitation != nil })
	if err != nil {
		return nil, err
	}
	c, done := within(caller, ctx)
	defer done()
	return srv.RequestElicitation(c, req)
}

func (r serverRequests) ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	caller, srv, err := r.caller(ctx, "roots", func(c mcp.ClientCapabilities) bool { return c.Roots != nil })
	if err != nil {
		return nil, err
	}
	c, done := within(caller, ctx)
	defer done()
	return srv.RequestRoots(c, req)
}
