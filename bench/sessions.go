package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

type sessionsResult struct {
	want, opened   int
	openWall       time.Duration
	openP50        time.Duration
	openP99        time.Duration
	rssBefore      int64
	rssAfter       int64
	rssClosed      int64
	hwm            int64
	sampled, okays int
	alive          int
	sampleErr      string
	nofile         uint64
	serverCPUOpen  time.Duration
	perClient      int
	clientIDs      int
	gc             gcTrace
	prof           sessionProfile
}

// gcTrace is the server's last GODEBUG=gctrace=1 line: live heap after
// marking, heap goal and goroutine stacks, in MB.
type gcTrace struct {
	line                 string
	liveMB, goalMB, stMB float64
}

var gcLine = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks`)

func lastGCTrace(out string) gcTrace {
	var g gcTrace
	for _, l := range strings.Split(out, "\n") {
		m := gcLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		g.line = strings.TrimSpace(l)
		g.liveMB, _ = strconv.ParseFloat(m[3], 64)
		g.goalMB, _ = strconv.ParseFloat(m[4], 64)
		g.stMB, _ = strconv.ParseFloat(m[5], 64)
	}
	return g
}

func (r sessionsResult) perSession() float64 {
	if r.opened == 0 {
		return 0
	}
	return float64(r.rssAfter-r.rssBefore) / float64(r.opened)
}

// rawStream is one SSE stream on its own TCP connection.
type rawStream struct {
	conn   net.Conn
	events *bufio.Reader // the de-chunked event stream
	msgURL string
}

// openRawSSE dials addr and opens GET /sse with the token, returning once
// the endpoint event has arrived.
func openRawSSE(ctx context.Context, addr, token string) (*rawStream, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("GET /sse: %s", resp.Status)
	}
	s := &rawStream{conn: conn, events: bufio.NewReaderSize(resp.Body, 1024)}
	ev, err := readSSEEvent(s.events)
	if err != nil || ev.name != "endpoint" {
		conn.Close()
		return nil, fmt.Errorf("want endpoint event, got %q (%v)", ev.name, err)
	}
	s.msgURL = strings.TrimSpace(string(ev.data))
	conn.SetDeadline(time.Time{})
	return s, nil
}

// exchange posts a request for this stream's session and reads the
// response event with that id from the stream.
func (s *rawStream) exchange(ctx context.Context, hc *http.Client, base, token, body string, id int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+s.msgURL, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST %s: %s", s.msgURL, resp.Status)
	}
	if id < 0 {
		return nil, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetReadDeadline(dl)
		defer s.conn.SetReadDeadline(time.Time{})
	}
	want := fmt.Sprintf(`"id":%d`, id)
	for {
		ev, err := readSSEEvent(s.events)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(ev.data, []byte(`"method":`)) {
			continue
		}
		if bytes.Contains(ev.data, []byte(want+",")) || bytes.Contains(ev.data, []byte(want+"}")) {
			return ev.data, checkResult(ev.data)
		}
	}
}

// runSessions opens o.sessions authenticated SSE streams to a fresh
// mcpauth process and reports its RSS growth per stream and the time to
// open them; then a sample of ~50 sessions initializes and calls whoami
// over POST /message, answers read from each one's stream.
func runSessions(ctx context.Context, o options, env *serverEnv, token, tmp string) (sessionsResult, error) {
	res := sessionsResult{want: o.sessions, nofile: raiseNoFile(o.sessions*2 + 4096), perClient: o.streamsPerClient}
	// The server caps open streams per client id (32 by default), so the
	// streams are spread over ceil(sessions/perClient) client ids, their
	// tokens minted on the server's registry with its secret.
	toks, err := mintSessionTokens(ctx, env, (o.sessions+o.streamsPerClient-1)/o.streamsPerClient)
	if err != nil {
		return res, err
	}
	res.clientIDs = len(toks)
	srv, err := startMcpauth(ctx, env, "mcpauth-sessions", false, "", "GODEBUG=gctrace=1")
	if err != nil {
		return res, err
	}
	defer srv.stop()
	addr := strings.TrimPrefix(srv.url, "http://")
	hc := newHTTPClient(64)
	defer hc.CloseIdleConnections()

	// Warm the server up (a few streams, calls, closed again), so the
	// baseline includes what any serving process has anyway.
	for i := range 20 {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := openRawSSE(wctx, addr, token)
		if err == nil {
			_, err = s.exchange(wctx, hc, srv.url, token, initializeBody(1), 1)
			if err == nil {
				_, err = s.exchange(wctx, hc, srv.url, token, whoamiBody(2), 2)
			}
			s.conn.Close()
		}
		cancel()
		if err != nil {
			return res, fmt.Errorf("warm-up stream %d: %w", i, err)
		}
	}
	hc.CloseIdleConnections()
	time.Sleep(time.Second)
	if res.rssBefore, err = srv.rss(); err != nil {
		return res, err
	}

	streams := make([]*rawStream, o.sessions)
	cpu0 := srv.cpuTime()
	start := time.Now()
	ok, failures, firstErr := openConcurrently(ctx, o.sessions, 128, 90*time.Second, func(ctx context.Context, i int) error {
		s, err := openRawSSE(ctx, addr, toks[i/o.streamsPerClient])
		streams[i] = s
		return err
	})
	res.openWall = time.Since(start)
	res.serverCPUOpen = srv.cpuTime() - cpu0
	defer func() {
		for _, s := range streams {
			if s != nil {
				s.conn.Close()
			}
		}
	}()
	res.opened = len(ok)
	res.openP50, res.openP99 = pct(ok, 50), pct(ok, 99)
	log.Printf("sessions: opened %d/%d in %s", res.opened, o.sessions, res.openWall.Round(time.Millisecond))
	if failures > 0 {
		return res, fmt.Errorf("%d streams failed to open; first: %v", failures, firstErr)
	}
	time.Sleep(2 * time.Second)
	if res.rssAfter, err = srv.rss(); err != nil {
		return res, err
	}
	res.hwm, _ = procStatusKB(srv.pid(), "VmHWM")

	// Serve a sample: initialize and call whoami on ~50 sessions spread
	// over the whole set, reading each answer from that session's stream.
	res.sampled, res.okays, res.sampleErr = sampleSessions(ctx, len(streams), func(ctx context.Context, i int) ([]byte, error) {
		s, token := streams[i], toks[i/o.streamsPerClient]
		_, err := s.exchange(ctx, hc, srv.url, token, initializeBody(1), 1)
		if err == nil {
			_, err = s.exchange(ctx, hc, srv.url, token, initializedBody, -1)
		}
		if err != nil {
			return nil, err
		}
		return s.exchange(ctx, hc, srv.url, token, whoamiBody(2), 2)
	}, o.streamsPerClient)

	// Every stream still open? A closed one reads EOF at once; an open
	// one times out (or yields a keep-alive).
	var (
		alive atomic.Int64
		wg    sync.WaitGroup
	)
	dl := time.Now().Add(200 * time.Millisecond)
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.conn.SetReadDeadline(dl)
			_, err := s.events.Peek(1)
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				alive.Add(1)
			}
		}()
	}
	wg.Wait()
	res.alive = int(alive.Load())
	res.gc = lastGCTrace(srv.output())
	log.Printf("sessions: RSS %d -> %d KiB (%.1f KiB/session), sample %d/%d served, %d/%d streams alive",
		res.rssBefore>>10, res.rssAfter>>10, res.perSession()/1024, res.okays, res.sampled, res.alive, res.opened)

	for _, s := range streams {
		s.conn.Close()
	}
	streams = nil
	time.Sleep(2 * time.Second)
	res.rssClosed, _ = srv.rss()
	srv.stop()

	log.Print("sessions: in-process memory profile of 2,000 SSE sessions")
	prev := runtime.MemProfileRate
	runtime.MemProfileRate = 4096
	defer func() { runtime.MemProfileRate = prev }()
	if res.prof, err = profileSessions(ctx, tmp, 2000); err != nil {
		return res, fmt.Errorf("session memory profile: %w", err)
	}
	return res, nil
}

// sampleSessions serves about 50 of n sessions spread over the whole set,
// each by whoami (within 10 s), and checks that each answers for its own
// client (session i belongs to client i/perClient): how many were tried,
// how many answered rightly, and the first failure.
func sampleSessions(ctx context.Context, n int, whoami func(ctx context.Context, i int) ([]byte, error), perClient int) (sampled, okays int, firstErr string) {
	step := max(1, n/50)
	for i := 0; i < n; i += step {
		sampled++
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		body, err := whoami(sctx, i)
		cancel()
		if err == nil && !bytes.Contains(body, []byte(fmt.Sprintf(`"client_id":"bench-sess-%04d"`, i/perClient))) {
			err = fmt.Errorf("whoami answered for someone else: %.200s", body)
		}
		if err != nil {
			if firstErr == "" {
				firstErr = fmt.Sprintf("session %d: %v", i, err)
			}
			continue
		}
		okays++
	}
	return sampled, okays, firstErr
}

// mintSessionTokens mints n one-hour tokens for client ids bench-sess-NNNN
// with auth.Issuer on the servers' registry and secret (recorded like
// every token).
func mintSessionTokens(ctx context.Context, env *serverEnv, n int) ([]string, error) {
	reg, err := registry.OpenSQLite(ctx, env.dbPath)
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	iss, err := auth.NewIssuer(auth.IssuerConfig{Secret: []byte(env.secret), Issuer: "mcpauth", MaxLifetime: 365 * 24 * time.Hour}, reg)
	if err != nil {
		return nil, err
	}
	toks := make([]string, n)
	for i := range toks {
		t, err := iss.Issue(ctx, auth.IssueRequest{ClientID: fmt.Sprintf("bench-sess-%04d", i), Expiry: auth.Expiry{Duration: time.Hour}, Scopes: []string{"tools:call"}, Caller: benchAdmin()})
		if err != nil {
			return nil, err
		}
		toks[i] = t.Token
	}
	return toks, nil
}

// openConcurrently runs open(ctx, i) for every i in [0, n) on workers
// goroutines, each call with 20 s and all of them within limit, and
// returns the sorted durations of the calls that succeeded, how many
// failed and the first failure's error. open stores what it opened
// itself (at its own index).
func openConcurrently(ctx context.Context, n, workers int, limit time.Duration, open func(ctx context.Context, i int) error) (ok []time.Duration, failures int64, firstErr string) {
	lats, opened := make([]time.Duration, n), make([]bool, n)
	var (
		next  atomic.Int64
		fails atomic.Int64
		first atomic.Value
		wg    sync.WaitGroup
	)
	octx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || octx.Err() != nil {
					return
				}
				t0 := time.Now()
				sctx, scancel := context.WithTimeout(octx, 20*time.Second)
				err := open(sctx, i)
				scancel()
				if err != nil {
					if fails.Add(1) == 1 {
						first.Store(err.Error())
					}
					continue
				}
				lats[i], opened[i] = time.Since(t0), true
			}
		}()
	}
	wg.Wait()
	for i, d := range lats {
		if opened[i] {
			ok = append(ok, d)
		}
	}
	slices.Sort(ok)
	firstErr, _ = first.Load().(string)
	return ok, fails.Load(), firstErr
}
