package main

import (
	"context"
	"fmt"
	"log"
	"time"
)

// streamSessionsResult is the Streamable HTTP counterpart of the sessions
// test: sessions opened by initialize (2025-11-25, Mcp-Session-Id), with
// no stream held open, which is what a client between calls leaves on
// the server.
type streamSessionsResult struct {
	want, opened        int
	perClient           int
	clientIDs           int
	openWall            time.Duration
	openP50, openP99    time.Duration
	serverCPUOpen       time.Duration
	rssBefore, rssAfter int64
	sampled, okays      int
	sampleErr           string
	gc                  gcTrace
}

func (r streamSessionsResult) perSession() float64 {
	if r.opened == 0 {
		return 0
	}
	return float64(r.rssAfter-r.rssBefore) / float64(r.opened)
}

// streamSessionsPerClient is the server's default per-client session cap
// (MCP_MAX_SESSIONS_PER_CLIENT).
const streamSessionsPerClient = 64

// runStreamableSessions opens o.sessions authenticated Streamable HTTP
// sessions on a fresh mcpauth process and reports its RSS growth per
// session; then ~50 of them call whoami, each checked to answer for its
// own client.
func runStreamableSessions(ctx context.Context, o options, env *serverEnv, token string) (streamSessionsResult, error) {
	per := streamSessionsPerClient
	res := streamSessionsResult{want: o.sessions, perClient: per}
	toks, err := mintSessionTokens(ctx, env, (o.sessions+per-1)/per)
	if err != nil {
		return res, err
	}
	res.clientIDs = len(toks)
	srv, err := startMcpauth(ctx, env, "mcpauth-stream-sessions", false, "", "GODEBUG=gctrace=1")
	if err != nil {
		return res, err
	}
	defer srv.stop()
	hc := newHTTPClient(128)
	defer hc.CloseIdleConnections()

	// Warm-up: sessions that initialize, call and end, as any serving
	// process has seen.
	for i := range 20 {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := openStreamable(wctx, hc, srv.url, token)
		if err == nil {
			err = c.callOnce(wctx)
			c.close()
		}
		cancel()
		if err != nil {
			return res, fmt.Errorf("warm-up session %d: %w", i, err)
		}
	}
	time.Sleep(time.Second)
	if res.rssBefore, err = srv.rss(); err != nil {
		return res, err
	}

	clients := make([]*streamableClient, o.sessions)
	cpu0 := srv.cpuTime()
	start := time.Now()
	ok, _, firstErr := openConcurrently(ctx, o.sessions, 64, 120*time.Second, func(ctx context.Context, i int) error {
		c, err := openStreamable(ctx, hc, srv.url, toks[i/per])
		clients[i] = c
		return err
	})
	res.openWall = time.Since(start)
	res.serverCPUOpen = srv.cpuTime() - cpu0
	res.opened = len(ok)
	if res.opened < o.sessions {
		return res, fmt.Errorf("%d of %d sessions opened (first error: %s)", res.opened, o.sessions, firstErr)
	}
	res.openP50, res.openP99 = pct(ok, 50), pct(ok, 99)
	hc.CloseIdleConnections() // what is measured is the sessions, not idle connections
	time.Sleep(2 * time.Second)
	if res.rssAfter, err = srv.rss(); err != nil {
		return res, err
	}

	// A sample, spread over the set: each session answers for its own
	// client.
	res.sampled, res.okays, res.sampleErr = sampleSessions(ctx, o.sessions, func(ctx context.Context, i int) ([]byte, error) {
		return clients[i].call(ctx, "whoami", "{}")
	}, per)
	res.gc = lastGCTrace(srv.output())
	log.Printf("streamable sessions: RSS %d -> %d KiB (%.1f KiB/session), sample %d/%d served",
		res.rssBefore>>10, res.rssAfter>>10, res.perSession()/1024, res.okays, res.sampled)
	return res, nil
}
