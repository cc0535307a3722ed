package transport

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// A session's requests to its client are bounded: a client that never
// answers holds at most maxClientRequests of them, the next is refused at
// once, and every one still waiting fails when the session ends.
func TestClientRequestsAreBounded(t *testing.T) {
	sent := make(chan []byte, maxClientRequests+1)
	sess := &sseSession{id: "s", done: make(chan struct{}), emit: func(b []byte) error { sent <- b; return nil }}
	var wg sync.WaitGroup
	errs := make(chan error, maxClientRequests)
	for range maxClientRequests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := sess.ListRoots(context.Background(), mcp.ListRootsRequest{})
			errs <- err
		}()
	}
	for range maxClientRequests {
		select {
		case <-sent:
		case <-time.After(10 * time.Second):
			t.Fatal("requests were not sent")
		}
	}
	if _, err := sess.ListRoots(context.Background(), mcp.ListRootsRequest{}); !errors.Is(err, errTooManyRequests) {
		t.Fatalf("request beyond the bound: %v, want %v", err, errTooManyRequests)
	}
	sess.end()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil || !strings.Contains(err.Error(), "session ended") {
			t.Fatalf("waiting request after the session ended: %v", err)
		}
	}
	if n := len(sess.asks.pending); n != 0 {
		t.Fatalf("%d requests left pending", n)
	}
}

// reply takes JSON-RPC responses only; requests and notifications go on
// to mcp-go.
func TestReplyTakesOnlyResponses(t *testing.T) {
	sess := &sseSession{id: "s", done: make(chan struct{})}
	for msg, want := range map[string]bool{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"error":"result"}}}`: false,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`:                                              false,
		`{"jsonrpc":"2.0","id":1,"result":{}}`:                                                                true,
		`{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"no"}}`:                                        true,
		`{"jsonrpc":"2.0","id":1,"result":{}`:                                                                 false, // not JSON: mcp-go's parse error
	} {
		if got := sess.reply([]byte(msg)); got != want {
			t.Errorf("reply(%s) = %v, want %v", msg, got, want)
		}
	}
}

// A session that cannot reach its client (no emit) refuses at once.
func TestClientRequestsWithoutChannel(t *testing.T) {
	sess := &sseSession{id: "s", done: make(chan struct{})}
	if _, err := sess.ListRoots(context.Background(), mcp.ListRootsRequest{}); !errors.Is(err, errNoRequestChannel) {
		t.Fatalf("err = %v", err)
	}
}
