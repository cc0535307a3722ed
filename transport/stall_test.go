package transport_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// smallBufferConn connects to the stack with a 4 KiB receive buffer, so
// a client that does not read fills the server's socket buffers soon.
func smallBufferConn(t *testing.T, s *stack) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// stalledSSE opens GET /sse over a raw connection with a tiny receive
// buffer, reads the endpoint event and then never reads again: a client
// that stops reading its stream. It returns the message endpoint and the
// connection (closed at test end).
func stalledSSE(t *testing.T, s *stack, token string) (string, net.Conn) {
	t.Helper()
	conn := smallBufferConn(t, s)
	fmt.Fprintf(conn, "GET /sse HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", strings.TrimPrefix(s.URL, "http://"), token)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, 512)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if ep, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
			_ = conn.SetReadDeadline(time.Time{})
			return ep, conn
		}
	}
}

// bigPing is a ping whose answer (which echoes the id) is 256 KiB: a few
// dozen fill the socket buffers and the queue of a stream nobody reads
// (27 on a Linux loopback with the default tcp_wmem).
var bigPing = `{"jsonrpc":"2.0","id":"` + strings.Repeat("x", 256<<10) + `","method":"ping"}`

// maxFill bounds how many big answers a stalled stream may take (64 MiB
// of socket buffer, far beyond any default).
const maxFill = 256

// postAsync sends POST /message and reports its status and body.
type postResult struct {
	status int
	body   string
	err    error
}

func postAsync(s *stack, ep, token, body string) <-chan postResult {
	out := make(chan postResult, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.URL+ep, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			out <- postResult{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- postResult{status: resp.StatusCode, body: string(b)}
	}()
	return out
}

// serverCloses drains conn until the server closes it.
func serverCloses(t *testing.T, conn net.Conn, within time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the server kept the stalled stream's connection: %v", err)
	}
}

func TestSSEStreamWhoseReaderIsStuckIsDropped(t *testing.T) {
	s := startStack(t, stackOpts{sseWriteTimeout: 300 * time.Millisecond})
	tok := s.mint(t, "stuck-reader", time.Hour)
	ep, conn := stalledSSE(t, s, tok)
	// Answers fill the socket buffers, then the queue; a write or a POST
	// then waits, and within the timeout the stream is dropped: a waiting
	// POST is told why, a later one finds no session.
	for i := 0; ; i++ {
		if i == maxFill {
			t.Fatalf("%d large answers fit in a stream nobody reads", maxFill)
		}
		var r postResult
		select {
		case r = <-postAsync(s, ep, tok, bigPing):
		case <-time.After(15 * time.Second):
			t.Fatalf("POST %d to a stream nobody reads is still waiting", i)
		}
		if r.err != nil {
			t.Fatalf("POST %d: %v", i, r.err)
		}
		if r.status == http.StatusServiceUnavailable && strings.Contains(r.body, "stream_stalled") ||
			r.status == http.StatusNotFound && strings.Contains(r.body, "session_not_found") {
			break
		}
		if r.status != http.StatusAccepted {
			t.Fatalf("POST %d: %d %s", i, r.status, r.body)
		}
	}
	serverCloses(t, conn, 10*time.Second)
	waitFor(t, 5*time.Second, "the stalled stream's session is still open", func() bool { return s.HTTP.OpenSessions() == 0 })
	if v := s.metric(t, `mcpauth_limit_refusals_total{limit="stalled_stream"}`); v != "1" {
		t.Fatalf("stalled streams counted: %q, want 1", v)
	}
	if r := do(t, "POST", s.URL+ep, tok, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("POST after the stream was dropped: %d, want 404", r.StatusCode)
	}
}

func TestRevokingAStalledSSEStreamFreesItsPOSTsAtOnce(t *testing.T) {
	// A long write deadline: only the revocation can free the stream.
	s := startStack(t, stackOpts{sseWriteTimeout: time.Minute})
	tok := s.mint(t, "stuck-reader", time.Hour)
	ep, conn := stalledSSE(t, s, tok)
	// Fill the stream until a POST waits for room.
	var parked <-chan postResult
	for i := 0; parked == nil; i++ {
		if i == maxFill {
			t.Fatalf("%d large answers fit in a stream nobody reads", maxFill)
		}
		ch := postAsync(s, ep, tok, bigPing)
		select {
		case r := <-ch:
			if r.err != nil || r.status != http.StatusAccepted {
				t.Fatalf("POST %d before the stream filled: %v %d %s", i, r.err, r.status, r.body)
			}
		case <-time.After(3 * time.Second): // far beyond a queued POST's time, even on a busy machine
			parked = ch
			t.Logf("POST %d parked", i)
		}
	}
	if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	select {
	case r := <-parked:
		if r.err != nil || r.status == http.StatusAccepted {
			t.Fatalf("parked POST after revocation: %v %d %s", r.err, r.status, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("revocation did not free the POST waiting on a stalled stream")
	}
	if el := time.Since(revoked); el > time.Second {
		t.Fatalf("the parked POST was freed %v after revocation, want within 1s", el)
	}
	serverCloses(t, conn, 10*time.Second)
	waitFor(t, 5*time.Second, "the stalled stream's session is still open", func() bool { return s.HTTP.OpenSessions() == 0 })
}

// stalledStreamableGET opens a 2025-11-25 session with token, then its
// GET /mcp stream over a raw connection with a tiny receive buffer that
// is never read. It returns the session id and the connection.
func stalledStreamableGET(t *testing.T, s *stack, token string) (string, net.Conn) {
	t.Helper()
	sid := initSession(t, s, token)
	hdr := map[string]string{server.HeaderKeySessionID: sid, "Mcp-Protocol-Version": legacyVersion}
	if r := do(t, "POST", s.URL+"/mcp", token, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr); r.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d", r.StatusCode)
	}
	conn := smallBufferConn(t, s)
	fmt.Fprintf(conn, "GET /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: %s\r\n\r\n",
		strings.TrimPrefix(s.URL, "http://"), token, sid, legacyVersion)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, 512)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("GET /mcp: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the headers: %v", err)
		}
		if line == "\r\n" {
			_ = conn.SetReadDeadline(time.Time{})
			return sid, conn
		}
	}
}

// fillStreamable sends large notifications to a session until mcp-go
// finds its queue full: the stream's writer is then stuck on a client
// that does not read.
func fillStreamable(t *testing.T, s *stack, sid string) {
	t.Helper()
	big := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		if i == 4*maxFill {
			t.Fatalf("%d large notifications fit in a stream nobody reads", i)
		}
		err := s.MCP.SendNotificationToSpecificClient(sid, "notifications/message", map[string]any{"level": "info", "data": big})
		if errors.Is(err, server.ErrNotificationChannelBlocked) {
			return
		}
		if err != nil {
			t.Fatalf("notification %d: %v", i, err)
		}
	}
}

func TestRevokingAStalledStreamableGETEndsItAtOnce(t *testing.T) {
	s := startStack(t, stackOpts{sseWriteTimeout: time.Minute})
	tok := s.mint(t, "stuck-reader", time.Hour)
	sid, conn := stalledStreamableGET(t, s, tok)
	fillStreamable(t, s, sid)
	if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	serverCloses(t, conn, 10*time.Second)
	if el := time.Since(revoked); el > time.Second {
		t.Fatalf("the stalled stream ended %v after revocation, want within 1s", el)
	}
}

func TestStreamableGETWhoseReaderIsStuckIsDropped(t *testing.T) {
	s := startStack(t, stackOpts{sseWriteTimeout: 300 * time.Millisecond})
	tok := s.mint(t, "stuck-reader", time.Hour)
	sid, conn := stalledStreamableGET(t, s, tok)
	fillStreamable(t, s, sid)
	// Reading would unstick the stream: wait for the server to count the
	// drop first, then see the connection closed.
	waitFor(t, 10*time.Second, "the stalled stream was not dropped", func() bool {
		return s.metric(t, `mcpauth_limit_refusals_total{limit="stalled_stream"}`) == "1"
	})
	serverCloses(t, conn, 10*time.Second)
}
