package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
)

// Upstream log messages (notifications/message) are not tied to one
// caller: an upstream shared by every caller logs for all of them. The
// gateway therefore never broadcasts them. It relays an upstream's log
// message to a session only when
//   - the session asked for log messages with logging/setLevel (its
//     caller's verified identity is recorded then; sessions are bound to
//     that identity), and
//   - that caller may call at least one of the upstream's tools under the
//     policy in force when the message arrives (a policy reload counts at
//     once), and
//   - the message's level is at or above the level the session set.
// The message keeps its level and data; its logger becomes
// "<upstream>/<logger>" (or "<upstream>") so the caller knows its source.
// Sessions of the stateless 2026-07-28 protocol cannot set a level, and
// get no upstream log messages.
//
// Each upstream that declares logging is asked for the most verbose level
// any such session set, so it does not send what nobody will get.

// logRelay records the sessions that asked for log messages.
type logRelay struct {
	mu       sync.Mutex
	sessions map[string]logSession // by session id
	// sent is the level each upstream's connection was last asked for.
	sent map[*Upstream]sentLevel
	// syncMu serializes syncLogLevels, so the last level asked for wins.
	syncMu sync.Mutex
}

type sentLevel struct {
	client *client.Client
	level  mcp.LoggingLevel
}

type logSession struct {
	claims *auth.Claims
	level  mcp.LoggingLevel
	// relayed counts the log messages queued for the session, so a call
	// that caused some can wait for them to be written (settle).
	relayed *atomic.Uint64
}

// setLevelTimeout bounds asking one upstream for a level.
const setLevelTimeout = 5 * time.Second

// levelRank orders the levels from the most verbose.
var levelRank = map[mcp.LoggingLevel]int{
	mcp.LoggingLevelDebug: 0, mcp.LoggingLevelInfo: 1, mcp.LoggingLevelNotice: 2, mcp.LoggingLevelWarning: 3,
	mcp.LoggingLevelError: 4, mcp.LoggingLevelCritical: 5, mcp.LoggingLevelAlert: 6, mcp.LoggingLevelEmergency: 7,
}

// logsRelayed is how many log messages were queued for the session of
// ctx (0 when it asked for none).
func (g *Gateway) logsRelayed(ctx context.Context) uint64 {
	s := server.ClientSessionFromContext(ctx)
	if s == nil {
		return 0
	}
	g.logs.mu.Lock()
	ls, ok := g.logs.sessions[s.SessionID()]
	g.logs.mu.Unlock()
	if !ok {
		return 0
	}
	return ls.relayed.Load()
}

// logHooks keep the record in step with the server's sessions.
func (g *Gateway) logHooks(h *server.Hooks) {
	h.AddAfterSetLevel(func(ctx context.Context, _ any, req *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		s := server.ClientSessionFromContext(ctx)
		c, ok := auth.ClaimsFrom(ctx)
		if s == nil || s.SessionID() == "" || (!ok && g.opts.Access != nil) {
			// Without a session (a stateless server) there is no one to
			// relay log messages to, and no session end to forget the
			// level at.
			return
		}
		g.logs.mu.Lock()
		relayed := new(atomic.Uint64)
		if old, ok := g.logs.sessions[s.SessionID()]; ok {
			relayed = old.relayed
		}
		g.logs.sessions[s.SessionID()] = logSession{claims: c, level: req.Params.Level, relayed: relayed}
		g.logs.mu.Unlock()
		// Before the caller's setLevel returns, so what it asked for
		// flows as soon as it has its answer.
		g.syncLogLevels()
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		g.logs.mu.Lock()
		delete(g.logs.sessions, s.SessionID())
		g.logs.mu.Unlock()
	})
}

// wanted is the most verbose level any session asked for; "" for none.
func (g *Gateway) wantedLevel() mcp.LoggingLevel {
	g.logs.mu.Lock()
	defer g.logs.mu.Unlock()
	var min mcp.LoggingLevel
	for _, s := range g.logs.sessions {
		if min == "" || levelRank[s.level] < levelRank[min] {
			min = s.level
		}
	}
	return min
}

// syncLogLevels asks every upstream that logs for the wanted level when
// its connection was last asked for another (or not yet: it reconnected).
func (g *Gateway) syncLogLevels() {
	g.logs.syncMu.Lock()
	defer g.logs.syncMu.Unlock()
	want := g.wantedLevel()
	if want == "" {
		return
	}
	for _, u := range g.ups {
		if u.Capabilities().Logging == nil {
			continue
		}
		cl, err := u.client()
		if err != nil {
			continue // asked when it reconnects
		}
		g.logs.mu.Lock()
		same := g.logs.sent[u] == sentLevel{cl, want}
		g.logs.mu.Unlock()
		if same {
			continue
		}
		// Bounded tighter than a call: a caller's setLevel waits for it.
		ctx, cancel := context.WithTimeout(g.life, min(u.timeout(), setLevelTimeout))
		req := mcp.SetLevelRequest{}
		req.Params.Level = want
		err = cl.SetLevel(ctx, req)
		cancel()
		if err != nil {
			g.log.Warn("upstream refused logging/setLevel", "upstream", u.entry.Name, "err", err)
			continue
		}
		g.logs.mu.Lock()
		g.logs.sent[u] = sentLevel{cl, want}
		g.logs.mu.Unlock()
	}
}

// relayLog passes an upstream's log message to the sessions the rule
// above allows.
func (g *Gateway) relayLog(u *Upstream, n mcp.JSONRPCNotification) {
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	if srv == nil {
		return
	}
	p := n.Params.AdditionalFields
	level, _ := p["level"].(string)
	if _, ok := levelRank[mcp.LoggingLevel(level)]; !ok {
		return
	}
	logger := u.entry.Name
	if l, _ := p["logger"].(string); l != "" {
		logger += "/" + l
	}
	msg := mcp.NewLoggingMessageNotification(mcp.LoggingLevel(level), logger, p["data"])
	g.logs.mu.Lock()
	targets := make(map[string]logSession, len(g.logs.sessions))
	for id, s := range g.logs.sessions {
		targets[id] = s
	}
	g.logs.mu.Unlock()
	for id, s := range targets {
		if !g.mayUseAnyTool(s.claims, u) {
			continue
		}
		// mcp-go drops what is below the level the session set.
		if levelRank[mcp.LoggingLevel(level)] < levelRank[s.level] {
			continue
		}
		err := srv.SendLogMessageToSpecificClient(id, msg)
		if err != nil && !errors.Is(err, server.ErrSessionNotFound) {
			g.log.Debug("upstream log message not relayed", "upstream", u.entry.Name, "err", err)
		}
		if err == nil {
			s.relayed.Add(1)
		}
	}
}
