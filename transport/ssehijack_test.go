package transport_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawSSEStream opens GET /sse on addr over a raw connection (no client
// goroutines) speaking proto (HTTP/1.1 or HTTP/1.0), with Host set to
// host and the extra header lines given, and reads the response up to the
// endpoint event: the response (its head) and the connection.
func rawSSEStream(t *testing.T, proto, addr, host, token string, extra ...string) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /sse %s\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n%s\r\n",
		proto, host, token, strings.Join(append(extra, ""), "\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response head: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /sse: %d %s", resp.StatusCode, b)
	}
	body := bufio.NewReader(resp.Body)
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			return resp, conn
		}
	}
}

// goroutineDump is every goroutine's stack, one block each.
func goroutineDump() []string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Split(b.String(), "\n\n")
}

// An open legacy SSE stream on HTTP/1.1 or 1.0 holds no net/http connection
// goroutine parked in the handler chain (with its deep stack, its
// connection's read and write buffers and the parsed request): the
// stream takes its connection over and runs in goroutines of its own,
// which end when the client closes the connection.
func TestOpenSSEStreamsHoldNoHandlerGoroutine(t *testing.T) {
	// HTTP/1.0 is what nginx speaks to its upstreams by default.
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		t.Run(proto, func(t *testing.T) { testStreamsHoldNoHandlerGoroutine(t, proto) })
	}
}

func testStreamsHoldNoHandlerGoroutine(t *testing.T, proto string) {
	const n = 40
	s := startStack(t, stackOpts{maxStreams: n + 8})
	tok := s.mint(t, "many-streams", time.Hour)
	addr := strings.TrimPrefix(s.URL, "http://")
	runtime.GC()
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	for i := range conns {
		_, conns[i] = rawSSEStream(t, proto, addr, addr, tok)
	}
	waitFor(t, 5*time.Second, "the streams' sessions are not all open", func() bool { return s.HTTP.OpenSessions() == n })

	// A handler returns a moment after its stream's endpoint event is out.
	var inHandler, connServing int
	waitFor(t, 5*time.Second, "open streams are served by net/http connection goroutines parked in the handler", func() bool {
		inHandler, connServing = 0, 0
		for _, g := range goroutineDump() {
			if strings.Contains(g, "net/http.(*conn).serve(") {
				connServing++
				if strings.Contains(g, "(*sseServer).serveStream") {
					inHandler++
				}
			}
		}
		return inHandler == 0
	})
	if connServing >= n {
		t.Errorf("%d net/http connection goroutines for %d open streams", connServing, n)
	}
	if per := float64(runtime.NumGoroutine()-before) / n; per > 2 {
		t.Errorf("%.2f goroutines per open stream, want at most 2 (its writer and its reader)", per)
	}

	for _, c := range conns {
		c.Close()
	}
	waitFor(t, 5*time.Second, "the closed streams' sessions are still open", func() bool { return s.HTTP.OpenSessions() == 0 })
	waitFor(t, 5*time.Second, "the closed streams' goroutines are still running", func() bool {
		for _, g := range goroutineDump() {
			if strings.Contains(g, "(*sseServer).streamConn") || strings.Contains(g, "(*sseServer).serveStream") {
				return false
			}
		}
		return true
	})
}

// hideHijack serves next with a ResponseWriter that cannot be taken over
// (as on HTTP/2), so GET /sse is served by its handler as before.
func hideHijack(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(flushOnly{w}, r)
	})
}

type flushOnly struct{ w http.ResponseWriter }

func (f flushOnly) Header() http.Header         { return f.w.Header() }
func (f flushOnly) Write(b []byte) (int, error) { return f.w.Write(b) }
func (f flushOnly) WriteHeader(code int)        { f.w.WriteHeader(code) }
func (f flushOnly) Flush()                      { f.w.(http.Flusher).Flush() }

// The response head of a stream that took its connection over is the one
// net/http writes for a stream served by its handler: the same status,
// protocol, headers (those middleware set too, CORS here) and chunked
// body with the same endpoint event.
func TestTakenOverSSEStreamHasNetHTTPsResponseHead(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		t.Run(proto, func(t *testing.T) { testTakenOverResponseHead(t, proto) })
	}
}

func testTakenOverResponseHead(t *testing.T, proto string) {
	const origin = "https://app.example"
	s := startStack(t, stackOpts{cors: []string{origin}})
	tok := s.mint(t, "head", time.Hour)
	addr := strings.TrimPrefix(s.URL, "http://")
	plain := httptest.NewServer(hideHijack(s.HTTP))
	t.Cleanup(plain.Close)

	taken, _ := rawSSEStream(t, proto, addr, addr, tok, "Origin: "+origin)
	served, _ := rawSSEStream(t, proto, strings.TrimPrefix(plain.URL, "http://"), addr, tok, "Origin: "+origin)
	if inHandler := func() bool {
		for _, g := range goroutineDump() {
			if strings.Contains(g, "(*sseServer).serveStream") && strings.Contains(g, "hideHijack") {
				return true
			}
		}
		return false
	}(); !inHandler {
		t.Fatal("the stream behind hideHijack was not served by its handler: the comparison is void")
	}

	if taken.Status != served.Status || taken.Proto != served.Proto {
		t.Errorf("status line %q %q, served by the handler %q %q", taken.Proto, taken.Status, served.Proto, served.Status)
	}
	if !slices.Equal(taken.TransferEncoding, served.TransferEncoding) || taken.ContentLength != served.ContentLength || taken.Close != served.Close {
		t.Errorf("body framing %v/%d/close=%v, served by the handler %v/%d/close=%v",
			taken.TransferEncoding, taken.ContentLength, taken.Close, served.TransferEncoding, served.ContentLength, served.Close)
	}
	for _, h := range []http.Header{taken.Header, served.Header} {
		if h.Get("Date") == "" {
			t.Errorf("no Date in %v", h)
		}
		h.Del("Date")
	}
	if fmt.Sprint(taken.Header) != fmt.Sprint(served.Header) {
		t.Errorf("headers\n%v\nserved by the handler\n%v", taken.Header, served.Header)
	}
	if !taken.Close {
		t.Error("the response does not say Connection: close")
	}
	for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering", "Access-Control-Allow-Origin"} {
		if taken.Header.Get(k) == "" {
			t.Errorf("no %s in %v", k, taken.Header)
		}
	}

	// The taken-over stream ends with the chunked body's end (HTTP/1.0:
	// with the connection's): a shutdown gives the client a clean end of
	// stream, not a cut.
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, taken.Body)
		done <- err
	}()
	s.stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the stream did not end cleanly at shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end at shutdown")
	}
}
