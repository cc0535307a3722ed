package transport_test

// In-process benchmarks of one tools/call (whoami) through the whole HTTP
// handler (body limit, auth middleware, session binding, mcp-go's
// Streamable HTTP server, the tool), with no network and no client: the
// server-side CPU cost per request, with auth and with auth disabled. Run
// with
//
//	go test -run '^$' -bench ToolsCall -benchmem ./transport
//
// The load harness (go run ./bench) measures the same over loopback.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/tools"
	"github.com/mcpauth/mcpauth/transport"
)

const benchToolsCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`

// benchHandler builds the server with mcpauth.New, as cmd/mcpauth does,
// with 1,000 revoked jtis in the revocation set, and returns the handler
// and a token.
func benchHandler(b *testing.B, authOn bool) (http.Handler, string) {
	b.Helper()
	ctx := context.Background()
	reg, err := registry.OpenSQLite(ctx, filepath.Join(b.TempDir(), "reg.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Close() })
	srv, err := mcpauth.New(ctx, mcpauth.Config{
		Secret: []byte(testSecret), PublicURL: "http://127.0.0.1:8080", Registry: reg,
		AuthDisabled: !authOn, Throttle: noThrottle{}, Version: "bench",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	bulk := make(map[string]time.Time, 1000)
	for range 1000 {
		var r [16]byte
		_, _ = rand.Read(r[:])
		bulk[hex.EncodeToString(r[:])] = time.Now().Add(time.Hour)
	}
	srv.Revoked.Add(bulk)
	admin := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	admin.Subject = "bench-admin"
	tok, err := srv.Issuer.Issue(ctx, auth.IssueRequest{ClientID: "bench-client", Expiry: auth.Expiry{Duration: time.Hour}, Scopes: []string{"admin"}, Caller: admin})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.HTTP.Close(context.Background()) })
	return srv.HTTP, tok.Token
}

func benchPost(h http.Handler, token, session, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, benchRequest(strings.NewReader(body), token, session))
	return w
}

// benchRequest is a POST /mcp of body with the Bearer token, in session
// (a 2025-11-25 Mcp-Session-Id) unless it is empty.
func benchRequest(body io.Reader, token, session string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/mcp", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	return req
}

// benchSession is benchHandler with an initialized 2025-11-25 session,
// checked by one call of call whose answer must contain want and be no
// tool error.
func benchSession(b *testing.B, authOn bool, call, want string) (http.Handler, string, string) {
	b.Helper()
	h, tok := benchHandler(b, authOn)
	w := benchPost(h, tok, "", initBody)
	session := w.Header().Get("Mcp-Session-Id")
	if w.Code != http.StatusOK || session == "" {
		b.Fatalf("initialize: %d %q", w.Code, w.Body.String())
	}
	if w := benchPost(h, tok, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); w.Code/100 != 2 {
		b.Fatalf("initialized: %d", w.Code)
	}
	w = benchPost(h, tok, session, call)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) || strings.Contains(w.Body.String(), `"isError":true`) {
		b.Fatalf("tools/call: %d %s", w.Code, w.Body.String())
	}
	return h, tok, session
}

func benchToolsCallStreamable(b *testing.B, authOn bool) {
	h, tok, session := benchSession(b, authOn, benchToolsCall, `"client_id"`)
	benchCalls(b, h, tok, session)
}

// cpuPerOp reports the process's CPU time (user and system, all threads,
// the garbage collector included) per iteration as cpu-ns/op: on a
// machine shared with other work, wall-clock ns/op varies several-fold
// while CPU per call, what the load harness's server CPU/req measures,
// stays put. Call it just before the loop; it reports when the benchmark
// ends.
func cpuPerOp(b *testing.B) {
	start := processCPU()
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchWriter discards the body so the benchmark measures the server.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *benchWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
}
func (w *benchWriter) Flush() {}

var _ io.Writer = (*benchWriter)(nil)

// BenchmarkToolsCallStreamable is one whoami tools/call in a 2025-11-25
// Mcp-Session-Id session through the full handler, authenticated.
func BenchmarkToolsCallStreamable(b *testing.B) { benchToolsCallStreamable(b, true) }

// BenchmarkToolsCallStreamableNoAuth is the same with auth disabled (the
// ceiling): the difference is what authentication costs per request.
func BenchmarkToolsCallStreamableNoAuth(b *testing.B) { benchToolsCallStreamable(b, false) }

// benchIssueToken is the tools/call the issue_token benchmarks send: the
// same arguments as the bench harness's issue_token series.
const benchIssueToken = `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"bench-tool-mint","expires_in":"1h","scopes":["tools:call"]}}}`

// BenchmarkIssueTokenStreamable is one issue_token tools/call (admin
// token) in a 2025-11-25 session through the full handler built by
// mcpauth.New, with its durable write to a SQLite registry in the test's
// temp directory: the server's CPU per mint minus the network.
func BenchmarkIssueTokenStreamable(b *testing.B) {
	h, tok, session := benchSession(b, true, benchIssueToken, `"jti"`)
	benchCallsBody(b, h, tok, session, []byte(benchIssueToken))
}

// BenchmarkIssueTokenStreamableParallel is the same call from 16
// concurrent callers (8 per GOMAXPROCS on the 2-CPU bench machine), the
// bench harness's concurrent series: the registry's group commit shares
// each fsync between the mints that queue meanwhile.
func BenchmarkIssueTokenStreamableParallel(b *testing.B) {
	h, tok, session := benchSession(b, true, benchIssueToken, `"jti"`)
	body := []byte(benchIssueToken)
	b.ReportAllocs()
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	cpuPerOp(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rw := &benchWriter{h: http.Header{}}
			h.ServeHTTP(rw, benchRequest(bytes.NewReader(body), tok, session))
			if rw.code != http.StatusOK {
				b.Errorf("issue_token: %d", rw.code)
				return
			}
		}
	})
}

// streamWriter is a ResponseWriter for an SSE stream that hands every
// write to the benchmark.
type streamWriter struct {
	h      http.Header
	writes chan []byte
}

func (w *streamWriter) Header() http.Header { return w.h }
func (w *streamWriter) WriteHeader(int)     {}
func (w *streamWriter) Flush()              {}
func (w *streamWriter) Write(p []byte) (int, error) {
	w.writes <- bytes.Clone(p)
	return len(p), nil
}

// nextSSEMessage waits for the next "event: message" write.
func nextSSEMessage(b *testing.B, writes <-chan []byte) []byte {
	for {
		select {
		case p := <-writes:
			if bytes.HasPrefix(p, []byte("event: message")) {
				return p
			}
		case <-time.After(10 * time.Second):
			b.Fatal("no message on the stream")
		}
	}
}

func benchToolsCallSSE(b *testing.B, authOn bool) {
	h, tok := benchHandler(b, authOn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sw := &streamWriter{h: http.Header{}, writes: make(chan []byte, 16)}
	get := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/sse", nil).WithContext(ctx)
	get.Header.Set("Authorization", "Bearer "+tok)
	get.Header.Set("Accept", "text/event-stream")
	go h.ServeHTTP(sw, get)
	var ep string
	select {
	case p := <-sw.writes:
		_, after, _ := strings.Cut(string(p), "data: ")
		ep = strings.TrimSpace(after)
	case <-time.After(10 * time.Second):
		b.Fatal("no endpoint event")
	}
	post := func(body []byte) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080"+ep, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		rw := &benchWriter{h: http.Header{}}
		h.ServeHTTP(rw, req)
		if rw.code != http.StatusAccepted {
			b.Fatalf("POST %s: %d", ep, rw.code)
		}
	}
	post([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`))
	nextSSEMessage(b, sw.writes)
	post([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	post([]byte(benchToolsCall))
	if m := nextSSEMessage(b, sw.writes); !bytes.Contains(m, []byte(`client_id`)) || bytes.Contains(m, []byte(`"isError":true`)) {
		b.Fatalf("tools/call: %s", m)
	}
	body := []byte(benchToolsCall)
	b.ReportAllocs()
	cpuPerOp(b)
	for b.Loop() {
		post(body)
		nextSSEMessage(b, sw.writes)
	}
}

// BenchmarkToolsCallSSE is one whoami tools/call on a legacy SSE session
// (POST /message, the answer read from the stream), authenticated.
func BenchmarkToolsCallSSE(b *testing.B) { benchToolsCallSSE(b, true) }

// BenchmarkToolsCallSSENoAuth is the same with auth disabled.
func BenchmarkToolsCallSSENoAuth(b *testing.B) { benchToolsCallSSE(b, false) }

// BenchmarkToolsCallStreamableBare is the same call on a bare mcp-go
// Streamable HTTP server (no mcpauth code: no guards, no auth, no strict
// checks, no session binding) whose whoami returns the result mcpauth's
// does, built afresh per call: the floor the ToolsCall benchmarks are held
// against (as the load harness's bare peer is).
func BenchmarkToolsCallStreamableBare(b *testing.B) {
	h, tok := benchHandler(b, true)
	bare := mcpserver.NewStreamableHTTPServer(bareWhoamiServer(b, h, tok))
	w := benchPost(bare, "", "", initBody)
	session := w.Header().Get("Mcp-Session-Id")
	if w.Code != http.StatusOK || session == "" {
		b.Fatalf("initialize: %d %q", w.Code, w.Body.String())
	}
	benchCalls(b, bare, tok, session)
}

// bareWhoamiServer is the bare mcp-go server of
// BenchmarkToolsCallStreamableBare: mcpauth's whoami answer for tok,
// replayed (a fresh result per call) by an mcp-go server with no mcpauth
// code.
func bareWhoamiServer(b *testing.B, h http.Handler, tok string) *mcpserver.MCPServer {
	b.Helper()
	w := benchPost(h, tok, "", initBody)
	w = benchPost(h, tok, w.Header().Get("Mcp-Session-Id"), benchToolsCall)
	var resp struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent tools.WhoamiResult `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || len(resp.Result.Content) != 1 {
		b.Fatalf("whoami: %v %s", err, w.Body.String())
	}
	want, text := resp.Result.StructuredContent, resp.Result.Content[0].Text
	s := mcpserver.NewMCPServer("bench-bare", "1", mcpserver.WithToolCapabilities(false), mcpserver.WithRecovery())
	s.AddTool(mcp.NewTool("whoami"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res := want
		res.Scopes = append([]string{}, want.Scopes...)
		res.MayCall = append([]string{}, want.MayCall...)
		if want.ExpiresAt != nil {
			e := *want.ExpiresAt
			res.ExpiresAt = &e
		}
		return mcp.NewToolResultStructured(res, text), nil
	})
	return s
}

// benchLoopback runs tools/call whoami over loopback HTTP against url
// from 16 concurrent clients, each in its own 2025-11-25 session.
func benchLoopback(b *testing.B, url, tok string) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(session, body string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		return hc.Do(req)
	}
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ReportAllocs()
	cpuPerOp(b)
	b.RunParallel(func(pb *testing.PB) {
		resp, err := post("", initBody)
		if err != nil {
			b.Error(err)
			return
		}
		session := resp.Header.Get("Mcp-Session-Id")
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for pb.Next() {
			resp, err := post(session, benchToolsCall)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Errorf("tools/call: %v %v", err, resp)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkToolsCallStreamableLoopback is one authenticated whoami
// tools/call over loopback HTTP, served by transport.Serve (the server
// mcpauth serve runs, with its timeouts) with the full handler. Client
// and server share the process: compare server-side frames in a profile
// (the server's goroutines carry the pprof label server=mcpauth, the bare
// one's server=bare: go tool pprof -tagfocus server=mcpauth), or
// cpu-ns/op with the Bare variant's.
func BenchmarkToolsCallStreamableLoopback(b *testing.B) {
	h, tok := benchHandler(b, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go pprof.Do(ctx, pprof.Labels("server", "mcpauth"), func(ctx context.Context) {
		defer close(done)
		_ = transport.Serve(ctx, ln, h.(*transport.HTTP), slog.New(slog.DiscardHandler))
	})
	b.Cleanup(func() { cancel(); <-done })
	benchLoopback(b, "http://"+ln.Addr().String()+"/mcp", tok)
}

// BenchmarkToolsCallStreamableLoopbackBare is the same against the bare
// mcp-go server behind a plain http.Server, as the load harness's bare
// peer serves it.
func BenchmarkToolsCallStreamableLoopbackBare(b *testing.B) {
	h, tok := benchHandler(b, true)
	bare := mcpserver.NewStreamableHTTPServer(bareWhoamiServer(b, h, tok))
	mux := http.NewServeMux()
	mux.Handle("/mcp", bare)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go pprof.Do(context.Background(), pprof.Labels("server", "bare"), func(context.Context) { _ = srv.Serve(ln) })
	b.Cleanup(func() { _ = srv.Close() })
	benchLoopback(b, "http://"+ln.Addr().String()+"/mcp", tok)
}

// benchCalls measures whoami calls in session (allocations and CPU per
// call), each with tok, served by h.
func benchCalls(b *testing.B, h http.Handler, tok, session string) {
	benchCallsBody(b, h, tok, session, []byte(benchToolsCall))
}

// benchCallsBody is benchCalls with the JSON-RPC request body given.
func benchCallsBody(b *testing.B, h http.Handler, tok, session string, body []byte) {
	b.ReportAllocs()
	cpuPerOp(b)
	for b.Loop() {
		rw := &benchWriter{h: http.Header{}}
		h.ServeHTTP(rw, benchRequest(bytes.NewReader(body), tok, session))
		if rw.code != http.StatusOK {
			b.Fatalf("tools/call: %d", rw.code)
		}
	}
}
