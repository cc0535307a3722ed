package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mcpauth/mcpauth/internal/testutil"
	"github.com/mcpauth/mcpauth/transport"
)

func wsURL(s *stack) string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/ws" }

// wsClient is a raw WebSocket client sending and reading single frames.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

// dialWS opens /ws with the "mcp" subprotocol; token, when set, goes in
// the Authorization header.
func dialWS(t *testing.T, s *stack, token string, hdr http.Header) (*wsClient, *http.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(s), &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{"mcp"}})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(4 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, c: c}, resp, nil
}

func mustDialWS(t *testing.T, s *stack, token string) *wsClient {
	t.Helper()
	w, _, err := dialWS(t, s, token, nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	return w
}

func (w *wsClient) send(msg string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// rpcReply is a JSON-RPC response as the tests read it.
type rpcReply struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// recv reads the next response (skipping notifications).
func (w *wsClient) recv() rpcReply {
	w.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		typ, b, err := w.c.Read(ctx)
		cancel()
		if err != nil {
			w.t.Fatalf("read: %v", err)
		}
		if typ != websocket.MessageText {
			w.t.Fatalf("got a %v frame", typ)
		}
		var r rpcReply
		if err := json.Unmarshal(b, &r); err != nil {
			w.t.Fatalf("frame %q: %v", b, err)
		}
		if r.Method != "" && len(r.ID) == 0 {
			continue // a notification
		}
		return r
	}
}

func (w *wsClient) rpc(msg string) rpcReply {
	w.t.Helper()
	w.send(msg)
	return w.recv()
}

// closed waits (at most within) for the server to close the connection
// and returns the close frame's code and reason.
func (w *wsClient) closed(within time.Duration) (websocket.StatusCode, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		_, _, err := w.c.Read(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			w.t.Fatalf("connection still open after %s", within)
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		return -1, err.Error()
	}
}

// withAuth adds params.auth.token to a JSON-RPC message.
func withAuth(t *testing.T, msg, token string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		t.Fatal(err)
	}
	p, _ := m["params"].(map[string]any)
	if p == nil {
		p = map[string]any{}
	}
	p["auth"] = map[string]any{"token": token}
	m["params"] = p
	b, _ := json.Marshal(m)
	return string(b)
}

const (
	wsInitialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	wsList        = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	wsWhoami      = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
)

// whoamiClient is the client id a whoami answer names.
func whoamiClient(t *testing.T, r rpcReply) string {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("whoami: error %d %s", r.Error.Code, r.Error.Message)
	}
	var res struct {
		IsError           bool `json:"isError"`
		StructuredContent struct {
			ClientID string `json:"client_id"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || res.IsError {
		t.Fatalf("whoami result %s (%v)", r.Result, err)
	}
	return res.StructuredContent.ClientID
}

func toolList(t *testing.T, r rpcReply) []string {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("tools/list: error %d %s", r.Error.Code, r.Error.Message)
	}
	var res struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

// A Go client authenticating with the Authorization header on the
// upgrade: the "mcp" subprotocol is chosen, and initialize, tools/list
// and whoami work as on /mcp.
func TestWebSocketHeaderAuth(t *testing.T) {
	s := startStack(t, stackOpts{})
	admin := s.mint(t, "admin-console", time.Hour, "admin")
	w := mustDialWS(t, s, admin)
	if got := w.c.Subprotocol(); got != "mcp" {
		t.Errorf("subprotocol %q, want mcp", got)
	}
	if r := w.rpc(initBody); r.Error != nil || !strings.Contains(string(r.Result), `"protocolVersion":"2025-11-25"`) {
		t.Fatalf("initialize: %+v %s", r.Error, r.Result)
	}
	w.send(wsInitialized)
	if got, want := toolList(t, w.rpc(wsList)), []string{"decode_token", "issue_token", "list_clients", "list_keys", "list_tokens", "revoke_token", "whoami"}; !slices.Equal(got, want) {
		t.Fatalf("tools = %v, want %v", got, want)
	}
	if got := whoamiClient(t, w.rpc(wsWhoami)); got != "admin-console" {
		t.Fatalf("whoami = %q", got)
	}
	// A bad Authorization header is refused before the upgrade, as on /mcp.
	if _, resp, err := dialWS(t, s, "not-a-token", nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad header: err=%v resp=%v, want 401", err, resp)
	}
}

// The official TypeScript SDK's WebSocketClientTransport connects with the
// token in each request's params.auth.token (the production setup
// document's form; the WHATWG WebSocket cannot set headers) and, on the
// ws package's WebSocket, in the upgrade's Authorization header; either
// way it lists tools and calls whoami, and the token never reaches the
// log.
func TestWebSocketTypeScriptSDK(t *testing.T) {
	node, dir := requireNode(t)
	for _, mode := range []string{"params", "headers"} {
		t.Run(mode, func(t *testing.T) {
			logs := &testutil.Buffer{}
			s := startStack(t, stackOpts{logs: logs})
			tok := s.mint(t, "ts-ws-client", time.Hour, "tools:call")

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := []string{filepath.Join(dir, "ws.mjs"), wsURL(s), mode}
			// Node 20 has the WHATWG WebSocket only behind a flag (22+: always).
			if v, err := exec.Command(node, "-p", "typeof WebSocket").Output(); err == nil && strings.TrimSpace(string(v)) != "function" {
				args = append([]string{"--experimental-websocket"}, args...)
			}
			cmd := exec.CommandContext(ctx, node, args...)
			cmd.Env = append(os.Environ(), "MCP_TOKEN="+tok)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("ws.mjs %s: %v: %s", mode, err, stderr.String())
			}
			var r struct {
				ProtocolVersion string   `json:"protocolVersion"`
				Tools           []string `json:"tools"`
				Whoami          struct {
					StructuredContent struct {
						ClientID string `json:"client_id"`
					} `json:"structuredContent"`
				} `json:"whoami"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("output %q: %v", stdout.String(), err)
			}
			if r.ProtocolVersion == "" {
				t.Error("no protocol version negotiated")
			}
			if !slices.Equal(r.Tools, []string{"whoami"}) {
				t.Errorf("tools = %v, want only whoami for a non-admin token", r.Tools)
			}
			if r.Whoami.StructuredContent.ClientID != "ts-ws-client" {
				t.Errorf("whoami = %+v", r.Whoami)
			}
			if strings.Contains(logs.String(), tok) {
				t.Error("the token appears in the log")
			}
		})
	}
}

// Refusals, frame by frame.
func TestWebSocketRefusals(t *testing.T) {
	logs := &testutil.Buffer{}
	// A short read timeout: net/http's deadlines must not reach an
	// upgraded connection.
	s := startStack(t, stackOpts{logs: logs, wsAuthTimeout: 300 * time.Millisecond, timeouts: transport.Timeouts{Read: 300 * time.Millisecond}})
	alpha := s.mint(t, "alpha", time.Hour, "tools:call")
	beta := s.mint(t, "beta", time.Hour, "tools:call")

	t.Run("first message without a token closes the connection", func(t *testing.T) {
		w := mustDialWS(t, s, "")
		r := w.rpc(initBody)
		if r.Error == nil || r.Error.Code != -32001 || !strings.Contains(r.Error.Message, "params.auth.token") {
			t.Fatalf("reply %+v", r.Error)
		}
		if code, reason := w.closed(5 * time.Second); code != websocket.StatusPolicyViolation || !strings.Contains(reason, "no valid token") {
			t.Fatalf("closed %v %q", code, reason)
		}
	})

	t.Run("a binary frame closes the connection", func(t *testing.T) {
		w := mustDialWS(t, s, alpha)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.c.Write(ctx, websocket.MessageBinary, []byte(wsWhoami)); err != nil {
			t.Fatal(err)
		}
		if code, reason := w.closed(5 * time.Second); code != websocket.StatusUnsupportedData || !strings.Contains(reason, "text frames") {
			t.Fatalf("closed %v %q", code, reason)
		}
	})

	t.Run("a first message that is not JSON closes the connection", func(t *testing.T) {
		w := mustDialWS(t, s, "")
		r := w.rpc(`{"jsonrpc":`)
		if r.Error == nil || r.Error.Code != -32700 {
			t.Fatalf("reply %+v", r.Error)
		}
		if code, _ := w.closed(5 * time.Second); code != websocket.StatusPolicyViolation {
			t.Fatalf("closed %v", code)
		}
	})

	t.Run("no message in time closes the connection", func(t *testing.T) {
		w := mustDialWS(t, s, "")
		if code, reason := w.closed(5 * time.Second); code != websocket.StatusPolicyViolation || reason != "no valid token received in time" {
			t.Fatalf("closed %v %q", code, reason)
		}
	})

	t.Run("bad token closes the connection and is audited without the token", func(t *testing.T) {
		w := mustDialWS(t, s, "")
		bad := alpha[:len(alpha)-4] + "AAAA"
		r := w.rpc(withAuth(t, initBody, bad))
		if r.Error == nil || r.Error.Code != -32001 || !strings.Contains(r.Error.Message, "Unauthorized") {
			t.Fatalf("reply %+v", r.Error)
		}
		if code, _ := w.closed(5 * time.Second); code != websocket.StatusPolicyViolation {
			t.Fatalf("closed %v", code)
		}
		l := logs.String()
		if !strings.Contains(l, `"event":"auth.failed"`) || !strings.Contains(l, `"via":"params.auth"`) || !strings.Contains(l, `"claimed_client_id":"alpha"`) {
			t.Errorf("no auth.failed record for the params token: %s", l)
		}
		if strings.Contains(l, bad) || strings.Contains(l, alpha) {
			t.Error("a token appears in the log")
		}
	})

	t.Run("another subject's token after binding is refused and changes nothing", func(t *testing.T) {
		w := mustDialWS(t, s, "")
		if r := w.rpc(withAuth(t, initBody, alpha)); r.Error != nil {
			t.Fatalf("initialize: %+v", r.Error)
		}
		w.send(wsInitialized)
		r := w.rpc(withAuth(t, wsWhoami, beta))
		if r.Error == nil || r.Error.Code != -32001 || !strings.Contains(r.Error.Message, "another client") || string(r.ID) != "3" {
			t.Fatalf("reply %+v", r.Error)
		}
		// Still alpha's connection, with or without the token.
		if got := whoamiClient(t, w.rpc(wsWhoami)); got != "alpha" {
			t.Fatalf("whoami = %q", got)
		}
		if got := whoamiClient(t, w.rpc(withAuth(t, wsWhoami, alpha))); got != "alpha" {
			t.Fatalf("whoami = %q", got)
		}
	})

	t.Run("a bound connection outlives the wait for a token", func(t *testing.T) {
		start := time.Now()
		w := mustDialWS(t, s, "")
		if got := whoamiClient(t, w.rpc(withAuth(t, wsWhoami, alpha))); got != "alpha" {
			t.Fatalf("whoami = %q", got)
		}
		// Keep using it until well past the 300ms token wait (and the
		// 300ms HTTP read timeout).
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for time.Since(start) < time.Second {
			<-tick.C
			if got := whoamiClient(t, w.rpc(wsWhoami)); got != "alpha" {
				t.Fatalf("whoami = %q", got)
			}
		}
	})

	t.Run("case-variant and duplicate members are refused, the connection stays", func(t *testing.T) {
		w := mustDialWS(t, s, alpha)
		for _, msg := range []string{
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"whoami","arguments":{},"Arguments":{"x":1}}}`,
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","Method":"tools/list","params":{"name":"whoami"}}`,
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"whoami","auth":{"token":"` + alpha + `"},"Auth":{"token":"` + beta + `"}}}`,
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"whoami","auth":{"token":"` + alpha + `","Token":"` + beta + `"}}}`,
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"whoami","auth":{"token":"` + alpha + `"},"auth":{"token":"` + beta + `"}}}`,
		} {
			r := w.rpc(msg)
			if r.Error == nil || r.Error.Code != -32600 || string(r.ID) != "5" {
				t.Fatalf("%s: reply %+v", msg, r.Error)
			}
		}
		if got := whoamiClient(t, w.rpc(wsWhoami)); got != "alpha" {
			t.Fatalf("whoami = %q", got)
		}
		if strings.Contains(logs.String(), beta) {
			t.Error("a token appears in the log")
		}
	})

	t.Run("a tool without its scope is refused naming the scope, and audited", func(t *testing.T) {
		w := mustDialWS(t, s, "")
		before := s.tokenCount(t)
		r := w.rpc(withAuth(t, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"escalated"}}}`, alpha))
		if r.Error == nil || r.Error.Code != -32003 || !strings.Contains(r.Error.Message, `"admin"`) || !strings.Contains(string(r.Error.Data), `"scope":"admin"`) {
			t.Fatalf("reply %+v", r.Error)
		}
		if after := s.tokenCount(t); after != before {
			t.Fatalf("registry went from %d to %d tokens", before, after)
		}
		l := logs.String()
		if !strings.Contains(l, `"event":"auth.forbidden"`) || !strings.Contains(l, `"via":"websocket"`) || !strings.Contains(l, `"required_scope":"admin"`) {
			t.Errorf("no auth.forbidden record: %s", l)
		}
		// The connection was bound by that message and still serves.
		if got := whoamiClient(t, w.rpc(wsWhoami)); got != "alpha" {
			t.Fatalf("whoami = %q", got)
		}
	})

	t.Run("an oversized message closes the connection", func(t *testing.T) {
		w := mustDialWS(t, s, alpha)
		big := `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"whoami","arguments":{"x":"` + strings.Repeat("a", 1<<20) + `"}}}`
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.c.Write(ctx, websocket.MessageText, []byte(big)) // may fail once the server closes
		if code, _ := w.closed(5 * time.Second); code != websocket.StatusMessageTooBig {
			t.Fatalf("closed %v, want %v", code, websocket.StatusMessageTooBig)
		}
	})

	t.Run("a foreign Origin is refused before the upgrade", func(t *testing.T) {
		_, resp, err := dialWS(t, s, alpha, http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("err=%v resp=%v, want 403", err, resp)
		}
		// The server's own loopback origin passes (as on /mcp).
		w, _, err := dialWS(t, s, alpha, http.Header{"Origin": {s.URL}})
		if err != nil {
			t.Fatalf("own origin: %v", err)
		}
		if got := whoamiClient(t, w.rpc(wsWhoami)); got != "alpha" {
			t.Fatalf("whoami = %q", got)
		}
	})
}

// Revoking the token a connection was bound with (header or params form)
// closes it, with a reason, within a second.
func TestWebSocketClosesOnRevocation(t *testing.T) {
	s := startStack(t, stackOpts{})
	for _, form := range []string{"header", "params"} {
		t.Run(form, func(t *testing.T) {
			tok := s.mint(t, "revoked-"+form, time.Hour, "tools:call")
			var w *wsClient
			if form == "header" {
				w = mustDialWS(t, s, tok)
				if got := whoamiClient(t, w.rpc(wsWhoami)); got != "revoked-"+form {
					t.Fatalf("whoami = %q", got)
				}
			} else {
				w = mustDialWS(t, s, "")
				if got := whoamiClient(t, w.rpc(withAuth(t, wsWhoami, tok))); got != "revoked-"+form {
					t.Fatalf("whoami = %q", got)
				}
			}
			start := time.Now()
			if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
				t.Fatal(err)
			}
			code, reason := w.closed(5 * time.Second)
			if took := time.Since(start); took > time.Second {
				t.Errorf("closed %s after revocation, want within 1s", took)
			}
			if code != websocket.StatusPolicyViolation || reason != "token revoked" {
				t.Fatalf("closed %v %q", code, reason)
			}
		})
	}
}

// A connection ends when its token expires, within a second of it.
func TestWebSocketClosesOnExpiry(t *testing.T) {
	s := startStack(t, stackOpts{})
	tok := s.mint(t, "short-lived", 2*time.Second, "tools:call")
	in := s.Verifier.Inspect(tok)
	exp, _ := in.Claims["exp"].(float64)
	w := mustDialWS(t, s, "")
	if got := whoamiClient(t, w.rpc(withAuth(t, wsWhoami, tok))); got != "short-lived" {
		t.Fatalf("whoami = %q", got)
	}
	code, reason := w.closed(10 * time.Second)
	if late := time.Since(time.Unix(int64(exp), 0)); late > time.Second {
		t.Errorf("closed %s after expiry, want within 1s", late)
	}
	if code != websocket.StatusPolicyViolation || reason != "token expired" {
		t.Fatalf("closed %v %q", code, reason)
	}
}

// Connections count against the client's stream limit: over it, a header
// upgrade gets 429 and a params-form connection is closed when it binds.
func TestWebSocketConnectionsPerClient(t *testing.T) {
	s := startStack(t, stackOpts{maxStreams: 2})
	tok := s.mint(t, "busy", time.Hour, "tools:call")
	mustDialWS(t, s, tok)
	second := mustDialWS(t, s, "")
	if got := whoamiClient(t, second.rpc(withAuth(t, wsWhoami, tok))); got != "busy" {
		t.Fatalf("whoami = %q", got)
	}
	if _, resp, err := dialWS(t, s, tok, nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third (header): err=%v resp=%v, want 429", err, resp)
	}
	third := mustDialWS(t, s, "")
	r := third.rpc(withAuth(t, wsWhoami, tok))
	if r.Error == nil || !strings.Contains(r.Error.Message, "too many open connections") {
		t.Fatalf("third (params): %+v", r.Error)
	}
	if code, _ := third.closed(5 * time.Second); code != websocket.StatusPolicyViolation {
		t.Fatalf("closed %v", code)
	}
	// Another client is not affected; closing one frees a place.
	if got := whoamiClient(t, mustDialWS(t, s, s.mint(t, "other", time.Hour)).rpc(wsWhoami)); got != "other" {
		t.Fatalf("whoami = %q", got)
	}
	if err := second.c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	// The server frees the place when its side of the connection ends,
	// just after the close handshake: retry until then.
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, resp, err := dialWS(t, s, tok, nil)
		if err == nil {
			if got := whoamiClient(t, w.rpc(wsWhoami)); got != "busy" {
				t.Fatalf("whoami = %q", got)
			}
			break
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after closing one: err=%v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The server pings every KeepAlive; the client's pong keeps it open.
func TestWebSocketKeepAlive(t *testing.T) {
	s := startStack(t, stackOpts{keepAlive: 50 * time.Millisecond})
	tok := s.mint(t, "pinged", time.Hour)
	pings := make(chan struct{}, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(s), &websocket.DialOptions{
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + tok}},
		Subprotocols: []string{"mcp"},
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// Control frames are handled while reading: read in the background.
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	for range 3 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatal("no keep-alive ping")
		}
	}
}

// A client that stops reading is dropped once a write has waited the
// write timeout: its answers are never buffered without limit.
func TestWebSocketSlowReaderIsDropped(t *testing.T) {
	logs := &testutil.Buffer{}
	s := startStack(t, stackOpts{logs: logs, sseWriteTimeout: 200 * time.Millisecond})
	tok := s.mint(t, "slow-reader", time.Hour, "admin")
	// A small receive buffer, so the server's writes block soon.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	// Shorter than the 15s keep-alive, whose unanswered ping would drop
	// the connection too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(s), &websocket.DialOptions{
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + tok}},
		Subprotocols: []string{"mcp"},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// Ask for tool lists and never read the answers: the writes fail once
	// the server has dropped the connection.
	for i := 0; ; i++ {
		if err := c.Write(ctx, websocket.MessageText, []byte(wsList)); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the server never dropped the connection (%d requests sent)", i)
			}
			break
		}
	}
	// The write that timed out closes the socket just before the drop is
	// logged: wait for the record.
	for !strings.Contains(logs.String(), "dropped a WebSocket connection whose client stopped reading") {
		if ctx.Err() != nil {
			t.Fatalf("connection ended without the slow-reader drop: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Connections waiting to authenticate in their first message are bounded
// per address (an IPv6 /64 is one), not only in all: one address holding
// its share cannot keep another's in-band sign-in out, and a connection
// that authenticates frees its place.
func TestWebSocketConnectionsWaitingToAuthenticateAreBoundedPerAddress(t *testing.T) {
	s := startStack(t, stackOpts{trustedProxies: []string{"127.0.0.1"}})
	from := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
	var waiting []*wsClient
	for i := range 16 {
		w, _, err := dialWS(t, s, "", from(fmt.Sprintf("2001:db8:7:7::%x", i+1)))
		if err != nil {
			t.Fatalf("waiting connection %d: %v", i, err)
		}
		waiting = append(waiting, w)
	}
	_, resp, err := dialWS(t, s, "", from("2001:db8:7:7::ffff"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a 17th from the same /64: err=%v resp=%v, want 429", err, resp)
	}
	// Another address signs in as usual.
	other, _, err := dialWS(t, s, "", from("198.51.100.20"))
	if err != nil {
		t.Fatalf("another address: %v", err)
	}
	tok := s.mint(t, "in-band", time.Hour)
	if got := whoamiClient(t, other.rpc(withAuth(t, wsWhoami, tok))); got != "in-band" {
		t.Fatalf("whoami = %q", got)
	}
	// One of the 16 authenticates: its place is free for another.
	if got := whoamiClient(t, waiting[0].rpc(withAuth(t, wsWhoami, tok))); got != "in-band" {
		t.Fatalf("whoami = %q", got)
	}
	if _, _, err := dialWS(t, s, "", from("2001:db8:7:7::ffff")); err != nil {
		t.Fatalf("after one authenticated: %v", err)
	}
}
