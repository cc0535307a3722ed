package upstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/delivery"
)

// CallerMetaKey is the _meta member through which a stdio upstream learns
// who is calling: {"iss": …, "sub": …, "scope": "…"} from the caller's
// verified token. The token itself is never sent. HTTP upstreams learn the
// caller only through a token minted for them (never the caller's own).
const CallerMetaKey = "mcpauth/caller"

// hopMeta reports a _meta member that describes the caller's own
// connection (the protocol's reserved io.modelcontextprotocol/ keys:
// protocol version, client info, log level of the 2026-07-28 era): the
// upstream connection has its own, so these are never forwarded.
func hopMeta(key string) bool {
	return strings.HasPrefix(key, "io.modelcontextprotocol/") || strings.HasPrefix(key, "modelcontextprotocol.io/")
}

// progressRelay maps the progress tokens the gateway sends upstream to
// the caller that asked for progress. Callers choose their own tokens, so
// two callers may use the same one: each forwarded call gets a token of
// the gateway's own.
type progressRelay struct {
	seq atomic.Uint64
	mu  sync.Mutex
	m   map[string]progressTarget
}

type progressTarget struct {
	ctx   context.Context // the caller's request: names its session
	token mcp.ProgressToken
	sent  *atomic.Int64 // progress notifications relayed to it
}

// outgoingMeta is the _meta sent upstream for a request whose caller sent
// in: the caller's progress token replaced by one of the gateway's own,
// and the caller's identity for stdio upstreams. done forgets the token
// and says how many progress notifications were relayed to the caller.
func (g *Gateway) outgoingMeta(ctx context.Context, u *Upstream, in *mcp.Meta) (*mcp.Meta, func() int64) {
	if in == nil && !u.entry.IsStdio() {
		return nil, noop // the common case: nothing to send, nothing to allocate
	}
	out := &mcp.Meta{AdditionalFields: map[string]any{}}
	if in != nil {
		for k, v := range in.AdditionalFields {
			if k != CallerMetaKey && !hopMeta(k) { // a caller cannot claim to be someone else
				out.AdditionalFields[k] = v
			}
		}
	}
	if u.entry.IsStdio() {
		if c, ok := auth.ClaimsFrom(ctx); ok {
			out.AdditionalFields[CallerMetaKey] = map[string]any{"iss": c.Issuer, "sub": c.Subject, "scope": c.Scope.String()}
		}
	}
	done := noop
	if in != nil && in.ProgressToken != nil {
		tok := fmt.Sprintf("mcpauth-%d", g.progress.seq.Add(1))
		g.progress.mu.Lock()
		sent := new(atomic.Int64)
		g.progress.m[tok] = progressTarget{ctx: ctx, token: in.ProgressToken, sent: sent}
		g.progress.mu.Unlock()
		out.ProgressToken = tok
		done = func() int64 {
			g.progress.mu.Lock()
			delete(g.progress.m, tok)
			g.progress.mu.Unlock()
			return sent.Load()
		}
	}
	if len(out.AdditionalFields) == 0 && out.ProgressToken == nil {
		return nil, done
	}
	return out, done
}

// noop is the done of a request without a progress token: nothing relayed.
func noop() int64 { return 0 }

// relayNotification passes an upstream's notification to the callers it
// concerns. Progress goes to the caller whose call it reports, with the
// caller's own token; log messages only to the sessions logging.go's rule
// allows; resource updates to the sessions subscribed (subscribe.go);
// anything else addressed to no caller in particular is not broadcast
// (another caller's data must not leak).
func (g *Gateway) relayNotification(u *Upstream, n mcp.JSONRPCNotification) {
	switch n.Method {
	case string(mcp.MethodNotificationProgress):
		g.relayProgress(u, n)
	case string(mcp.MethodNotificationMessage):
		g.relayLog(u, n)
	case mcp.MethodNotificationResourceUpdated:
		g.relayUpdated(u, n)
	}
}

// relayProgress passes a progress notification to the caller whose call
// it reports.
func (g *Gateway) relayProgress(u *Upstream, n mcp.JSONRPCNotification) {
	params := n.Params.AdditionalFields
	tok, _ := params["progressToken"].(string)
	g.progress.mu.Lock()
	target, ok := g.progress.m[tok]
	g.progress.mu.Unlock()
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	if !ok || srv == nil {
		return
	}
	fwd := make(map[string]any, len(params))
	for k, v := range params {
		fwd[k] = v
	}
	fwd["progressToken"] = target.token
	if err := srv.SendNotificationToClient(target.ctx, n.Method, fwd); err != nil && !errors.Is(err, server.ErrNotificationNotInitialized) {
		g.log.Debug("progress not relayed", "upstream", u.entry.Name, "err", err)
		return
	}
	target.sent.Add(1)
}

// Bounds of settle.
const (
	settleMax   = 50 * time.Millisecond
	settleGrace = 500 * time.Microsecond
)

// settle returns once the notifications a call queued for its caller
// (queued of them, counted from before, the count of notifications
// written to the caller's streams when the call began) are written, at
// most settleMax: mcp-go v1.2.1's Streamable HTTP server drops a
// notification its forwarder has taken off the session's queue but not
// yet written when the call's answer gets there first
// (mark3labs/mcp-go#969). On Streamable HTTP the transport counts what
// reached the wire (internal/delivery), so the wait is exact; elsewhere
// (legacy SSE and WebSocket write in order and need no wait, but the
// same bound holds) it waits for the session's queue to empty and a
// little more.
func settle(ctx context.Context, notes *delivery.Counter, before, queued int64) {
	s := server.ClientSessionFromContext(ctx)
	if s == nil || queued == 0 {
		return
	}
	ch := s.NotificationChannel()
	deadline := time.Now().Add(settleMax)
	for time.Now().Before(deadline) {
		if len(ch) == 0 && (notes == nil || notes.Written()-before >= queued) {
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	if notes == nil {
		time.Sleep(settleGrace)
	}
}

// isTransportClosed reports whether err says the connection went away
// under a call.
func isTransportClosed(err error) bool {
	return errors.Is(err, transport.ErrTransportClosed) || strings.Contains(err.Error(), "transport closed")
}
