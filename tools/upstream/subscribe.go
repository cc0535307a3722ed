package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Resource subscriptions. mcp-go's server acknowledges resources/subscribe
// and resources/unsubscribe itself (its sessions keep no subscription
// state) and runs hooks around them; the gateway uses the hook that runs
// before any request is handled, and may refuse it:
//   - resources/subscribe to a relayed resource (a registered URI, or one
//     a relayed template matches) that the caller may use under the policy
//     subscribes upstream, once per URI however many sessions subscribe
//     (reference-counted), on the upstream that serves it. A resource the
//     caller may not use is refused as unknown; one whose upstream offers
//     no subscriptions, or refuses, is refused with the reason.
//   - resources/unsubscribe, and a session's end, drop the session's
//     subscription; the last one for a URI unsubscribes upstream.
//   - notifications/resources/updated from the upstream goes to the
//     sessions subscribed to that URI whose caller may still use it.
//   - after a reconnect, every URI still subscribed is subscribed again.
// Sessions of the stateless 2026-07-28 protocol (subscriptions/listen) are
// not relayed.

type subKey struct {
	u   *Upstream
	uri string
}

type subRelay struct {
	// mu guards everything below; no upstream request is made under it.
	mu sync.Mutex
	// ops serializes the changes of one upstream subscription (a URI on
	// an upstream) with their upstream requests, so an unsubscribe and a
	// subscribe of one URI cannot cross upstream, while a slow upstream
	// holds up only the changes of its own URIs.
	ops map[subKey]*keyOp
	// sessions maps a session id to its subscriptions and its caller.
	sessions map[string]*subSession
	count    map[subKey]int
	// client is the connection each upstream subscription was made on.
	client map[subKey]*client.Client
}

// keyOp is one subscription's lock, kept while anyone holds or waits for
// it.
type keyOp struct {
	sync.Mutex
	users int
}

// lock takes key's lock; the returned func releases it.
func (r *subRelay) lock(key subKey) (unlock func()) {
	r.mu.Lock()
	op := r.ops[key]
	if op == nil {
		op = &keyOp{}
		r.ops[key] = op
	}
	op.users++
	r.mu.Unlock()
	op.Lock()
	return func() {
		op.Unlock()
		r.mu.Lock()
		if op.users--; op.users == 0 {
			delete(r.ops, key)
		}
		r.mu.Unlock()
	}
}

type subSession struct {
	claims *auth.Claims
	uris   map[string]*Upstream
	// pending counts the subscriptions being made (they count against
	// the session's limit); ended is set when the session ends, so that
	// one completing afterwards is undone.
	pending int
	ended   bool
}

// forget drops sid's entry once nothing keeps it (mu held).
func (r *subRelay) forget(sid string, ss *subSession) {
	if len(ss.uris) == 0 && ss.pending == 0 && r.sessions[sid] == ss {
		delete(r.sessions, sid)
	}
}

// subscribable reports whether an upstream offers resource subscriptions.
func (g *Gateway) subscribable() bool {
	for _, u := range g.ups {
		if r := u.Capabilities().Resources; r != nil && r.Subscribe {
			return true
		}
	}
	return false
}

func (g *Gateway) subscriptionHooks(h *server.Hooks) {
	h.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		raw, ok := message.(json.RawMessage)
		if !ok {
			return nil
		}
		var m struct {
			Method string `json:"method"`
			Params struct {
				URI string `json:"uri"`
			} `json:"params"`
		}
		if json.Unmarshal(raw, &m) != nil || m.Params.URI == "" {
			return nil
		}
		if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
			return nil // the server refuses these methods there
		}
		s := server.ClientSessionFromContext(ctx)
		if s == nil || s.SessionID() == "" {
			// No session to deliver updates to: a 2026-07-28 request
			// (mcp-go sets its protocol only after this hook, then
			// refuses the method) or a stateless server. Subscribing
			// upstream would keep state no session end ever frees.
			return nil
		}
		switch m.Method {
		case string(mcp.MethodResourcesSubscribe):
			return g.subscribe(ctx, s.SessionID(), m.Params.URI)
		case string(mcp.MethodResourcesUnsubscribe):
			g.unsubscribe(s.SessionID(), m.Params.URI)
		}
		return nil
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		sid := s.SessionID()
		g.subs.mu.Lock()
		ss := g.subs.sessions[sid]
		if ss != nil {
			ss.ended = true
		}
		g.subs.mu.Unlock()
		if ss == nil {
			return
		}
		g.spawn(func() {
			g.subs.mu.Lock()
			var uris []string
			for uri := range ss.uris {
				uris = append(uris, uri)
			}
			g.subs.mu.Unlock()
			for _, uri := range uris {
				g.unsubscribe(sid, uri)
			}
		})
	})
}

// resourceOwner is the upstream that serves uri, as a resource or through
// a template.
func (g *Gateway) resourceOwner(uri string) (*Upstream, bool) {
	if u, ok := g.owner(policy.Resource, uri); ok {
		return u, true
	}
	for _, u := range g.ups {
		for _, t := range u.Lists().Templates {
			if t.URITemplate != nil && t.URITemplate.Template != nil && t.URITemplate.Regexp().MatchString(uri) {
				if _, ok := g.owner(policy.Resource, t.URITemplate.Raw()); ok {
					return u, true
				}
			}
		}
	}
	return nil, false
}

func (g *Gateway) subscribe(ctx context.Context, sid, uri string) error {
	u, ok := g.resourceOwner(uri)
	if !ok || !g.mayUse(ctx, policy.Resource, uri) {
		return fmt.Errorf("%w: %s", server.ErrResourceNotFound, untrusted.Clip(uri, 200))
	}
	if r := u.Capabilities().Resources; r == nil || !r.Subscribe {
		return fmt.Errorf("upstream %q does not offer resource subscriptions", u.entry.Name)
	}
	claims, _ := auth.ClaimsFrom(ctx)
	key := subKey{u, uri}
	unlock := g.subs.lock(key)
	defer unlock()
	g.subs.mu.Lock()
	ss := g.subs.sessions[sid]
	if ss != nil && ss.uris[uri] != nil {
		g.subs.mu.Unlock()
		return nil // already subscribed
	}
	if ss == nil {
		ss = &subSession{claims: claims, uris: map[string]*Upstream{}}
		g.subs.sessions[sid] = ss
	}
	if n := len(ss.uris) + ss.pending; n >= g.opts.MaxSubscriptionsPerSession {
		g.subs.forget(sid, ss)
		g.subs.mu.Unlock()
		g.opts.Refused(LimitSubscriptionsPerSession)
		return fmt.Errorf("this session already has %d resource subscriptions, the most allowed: unsubscribe from one first", n)
	}
	ss.pending++
	first := g.subs.count[key] == 0
	g.subs.mu.Unlock()
	var cl *client.Client
	var err error
	if first {
		cl, err = g.upstreamSubscribe(ctx, u, uri)
	}
	g.subs.mu.Lock()
	ss.pending--
	ended := ss.ended
	if err == nil && !ended {
		if first {
			g.subs.client[key] = cl
		}
		ss.uris[uri] = u
		g.subs.count[key]++
	}
	g.subs.forget(sid, ss)
	g.subs.mu.Unlock()
	if err == nil && ended && first {
		g.upstreamUnsubscribe(u, uri) // the session ended meanwhile
	}
	return err
}

func (g *Gateway) upstreamSubscribe(ctx context.Context, u *Upstream, uri string) (*client.Client, error) {
	cl, err := u.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout())
	defer cancel()
	req := mcp.SubscribeRequest{}
	req.Params.URI = uri
	if err := cl.Subscribe(ctx, req); err != nil {
		return nil, fmt.Errorf("%s", u.describe(ctx, err))
	}
	return cl, nil
}

func (g *Gateway) unsubscribe(sid, uri string) {
	g.subs.mu.Lock()
	var u *Upstream
	if ss := g.subs.sessions[sid]; ss != nil {
		u = ss.uris[uri]
	}
	g.subs.mu.Unlock()
	if u == nil {
		return
	}
	key := subKey{u, uri}
	unlock := g.subs.lock(key)
	defer unlock()
	g.subs.mu.Lock()
	ss := g.subs.sessions[sid]
	if ss == nil || ss.uris[uri] != u {
		g.subs.mu.Unlock()
		return // unsubscribed meanwhile
	}
	delete(ss.uris, uri)
	g.subs.forget(sid, ss)
	g.subs.count[key]--
	last := g.subs.count[key] == 0
	if last {
		delete(g.subs.count, key)
		delete(g.subs.client, key)
	}
	g.subs.mu.Unlock()
	if last {
		g.upstreamUnsubscribe(u, uri)
	}
}

// upstreamUnsubscribe ends u's subscription to uri (key's lock held).
func (g *Gateway) upstreamUnsubscribe(u *Upstream, uri string) {
	cl, err := u.client()
	if err != nil {
		return // gone with the connection
	}
	ctx, cancel := context.WithTimeout(g.life, u.timeout())
	defer cancel()
	req := mcp.UnsubscribeRequest{}
	req.Params.URI = uri
	if err := cl.Unsubscribe(ctx, req); err != nil {
		g.log.Debug("upstream unsubscribe failed", "upstream", u.entry.Name, "err", err)
	}
}

// resubscribe subscribes u's connection again to every URI still
// subscribed, when it is not the one they were subscribed on.
func (g *Gateway) resubscribe(u *Upstream) {
	cl, err := u.client()
	if err != nil {
		return
	}
	g.subs.mu.Lock()
	var uris []string
	for key, on := range g.subs.client {
		if key.u == u && on != cl {
			uris = append(uris, key.uri)
		}
	}
	g.subs.mu.Unlock()
	for _, uri := range uris {
		g.resubscribeOne(u, cl, uri)
	}
}

// resubscribeOne subscribes cl to uri again if it is still subscribed on
// another connection.
func (g *Gateway) resubscribeOne(u *Upstream, cl *client.Client, uri string) {
	key := subKey{u, uri}
	unlock := g.subs.lock(key)
	defer unlock()
	g.subs.mu.Lock()
	on, ok := g.subs.client[key]
	g.subs.mu.Unlock()
	if !ok || on == cl {
		return // unsubscribed, or subscribed again, meanwhile
	}
	if _, err := g.upstreamSubscribe(g.life, u, uri); err != nil {
		g.log.Warn("upstream resubscribe failed", "upstream", u.entry.Name, "err", err)
		return
	}
	g.subs.mu.Lock()
	if _, ok := g.subs.client[key]; ok {
		g.subs.client[key] = cl
	}
	g.subs.mu.Unlock()
}

// relayUpdated passes notifications/resources/updated to the sessions
// subscribed to the URI whose caller may still use it.
func (g *Gateway) relayUpdated(u *Upstream, n mcp.JSONRPCNotification) {
	uri, _ := n.Params.AdditionalFields["uri"].(string)
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	if uri == "" || srv == nil {
		return
	}
	type target struct {
		sid    string
		claims *auth.Claims
	}
	var targets []target
	g.subs.mu.Lock()
	for sid, ss := range g.subs.sessions {
		if ss.uris[uri] == u {
			targets = append(targets, target{sid, ss.claims})
		}
	}
	g.subs.mu.Unlock()
	params := make(map[string]any, len(n.Params.AdditionalFields))
	for k, v := range n.Params.AdditionalFields {
		params[k] = v
	}
	for _, t := range targets {
		if !g.claimsMayUse(t.claims, policy.Resource, uri) {
			continue
		}
		if err := srv.SendNotificationToSpecificClient(t.sid, n.Method, params); err != nil {
			g.log.Debug("resource update not relayed", "upstream", u.entry.Name, "err", err)
		}
	}
}
