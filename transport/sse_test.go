package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseEvent is one event read from a raw SSE stream; comment lines
// (": ping") come through as events named ":".
type sseEvent struct{ name, data string }

// rawSSE opens GET /sse and returns the message endpoint and a channel of
// the events that follow (unread events are dropped once the test ends).
// The stream closes when the test ends.
func rawSSE(t *testing.T, base, token string) (string, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /sse: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 256)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					select {
					case events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				select {
				case events <- sseEvent{name: ":", data: strings.TrimSpace(line[1:])}:
				case <-ctx.Done():
					return
				}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[len("data: "):]
			}
		}
	}()
	select {
	case ev := <-events:
		if ev.name != "endpoint" || !strings.HasPrefix(ev.data, "/message?sessionId=") {
			t.Fatalf("first event %+v, want the endpoint", ev)
		}
		return ev.data, events
	case <-time.After(10 * time.Second):
		t.Fatal("no endpoint event")
		return "", nil
	}
}

// nextMessage returns the next "message" event's JSON, skipping comments.
func nextMessage(t *testing.T, events <-chan sseEvent) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.name != "message" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
				t.Fatalf("event data %q: %v", ev.data, err)
			}
			return m
		case <-deadline:
			t.Fatal("no message event within 10s")
			return nil
		}
	}
}

func postMessage(t *testing.T, s *stack, ep, tok, body string) {
	t.Helper()
	r := do(t, "POST", s.URL+ep, tok, body, nil)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d", ep, r.StatusCode)
	}
}

func initSSE(t *testing.T, s *stack, ep, tok string, events <-chan sseEvent) {
	t.Helper()
	postMessage(t, s, ep, tok, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"raw-sse","version":"1"}}}`)
	if m := nextMessage(t, events); m["id"] != 0.0 || m["result"] == nil {
		t.Fatalf("initialize answer %v", m)
	}
	postMessage(t, s, ep, tok, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// Many calls in flight on one session (more than its event queue holds)
// all get their answer, each on the stream, none lost or mixed up.
func TestSSEAnswersEveryConcurrentCallOnItsStream(t *testing.T) {
	s := startStack(t, stackOpts{})
	tok := s.mint(t, "busy-client", time.Hour)
	ep, events := rawSSE(t, s.URL, tok)
	initSSE(t, s, ep, tok, events)

	const calls = 100
	var wg sync.WaitGroup
	for i := 1; i <= calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`, i)
			req, _ := http.NewRequest("POST", s.URL+ep, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("call %d: %d", i, resp.StatusCode)
			}
		}()
	}
	seen := map[float64]bool{}
	for len(seen) < calls {
		m := nextMessage(t, events)
		id, _ := m["id"].(float64)
		if seen[id] || id < 1 || id > calls {
			t.Fatalf("unexpected or repeated answer %v", m)
		}
		if !strings.Contains(fmt.Sprint(m["result"]), "busy-client") {
			t.Fatalf("answer %v does not come from whoami for busy-client", m)
		}
		seen[id] = true
	}
	wg.Wait()
}

// Server notifications reach the session's stream, and idle streams get
// SSE comment keep-alives (which clients ignore) rather than JSON-RPC
// pings they would have to answer.
func TestSSEStreamCarriesNotificationsAndKeepAlives(t *testing.T) {
	s := startStack(t, stackOpts{keepAlive: 100 * time.Millisecond})
	tok := s.mint(t, "listener", time.Hour)
	ep, events := rawSSE(t, s.URL, tok)
	initSSE(t, s, ep, tok, events)

	s.MCP.SendNotificationToAllClients("notifications/tools/list_changed", nil)
	if m := nextMessage(t, events); m["method"] != "notifications/tools/list_changed" || m["id"] != nil {
		t.Fatalf("notification %v", m)
	}
	deadline := time.After(5 * time.Second)
	for pings := 0; pings < 2; {
		select {
		case ev := <-events:
			switch ev.name {
			case ":":
				if ev.data != "ping" {
					t.Fatalf("comment %q", ev.data)
				}
				pings++
			case "message":
				t.Fatalf("unexpected message on an idle stream: %s", ev.data)
			}
		case <-deadline:
			t.Fatal("no keep-alive comments within 5s at a 100ms interval")
		}
	}
}

// Once its stream has ended, a session's message endpoint answers 404 and
// the session is forgotten.
func TestSSEMessageAfterTheStreamEndsIs404(t *testing.T) {
	s := startStack(t, stackOpts{})
	tok := s.mint(t, "leaver", time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var ep string
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			ep = strings.TrimSpace(d)
			break
		}
	}
	if ep == "" {
		t.Fatal("no endpoint")
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.HTTP.OpenSessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still open after the stream ended", s.HTTP.OpenSessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := do(t, "POST", s.URL+ep, tok, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("POST after the stream ended: %d, want 404", r.StatusCode)
	}
}

// The SSE stream answers a browser with its own allowed origin, never the
// wildcard mcp-go's SSE server used to add, and refuses other origins.
func TestSSEStreamOriginPolicy(t *testing.T) {
	s := startStack(t, stackOpts{cors: []string{"https://app.example.com"}})
	tok := s.mint(t, "browser-app", time.Hour)
	for _, tc := range []struct {
		origin string
		want   int
	}{{"https://app.example.com", 200}, {"https://evil.example", 403}} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/sse", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Origin", tc.origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		acao := resp.Header.Get("Access-Control-Allow-Origin")
		resp.Body.Close()
		cancel()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s: status %d, want %d", tc.origin, resp.StatusCode, tc.want)
		}
		if want := map[int]string{200: tc.origin, 403: ""}[tc.want]; acao != want {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", tc.origin, acao, want)
		}
	}
}
