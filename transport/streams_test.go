package transport_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// openStream sends a GET that opens an event stream and returns a channel
// closed when the server ends it. The request is cancelled at test end.
func openStream(t *testing.T, url, token string, hdr map[string]string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
	return ended
}

// initSession opens a 2025-11-25 Streamable HTTP session and returns its id.
func initSession(t *testing.T, s *stack, token string) string {
	t.Helper()
	r := do(t, "POST", s.URL+"/mcp", token, initBody, nil)
	sid := r.Header.Get(server.HeaderKeySessionID)
	if r.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q", r.StatusCode, sid)
	}
	return sid
}

const legacyVersion = "2025-11-25"

// streamKinds are every way a client holds an event stream open; open
// returns the stream opened with token (other is another valid token of
// the same subject).
var streamKinds = []struct {
	name string
	open func(t *testing.T, s *stack, token, other string) <-chan struct{}
}{
	{"legacy SSE", func(t *testing.T, s *stack, token, _ string) <-chan struct{} {
		return openStream(t, s.URL+"/sse", token, nil)
	}},
	{"Streamable HTTP GET without a session", func(t *testing.T, s *stack, token, _ string) <-chan struct{} {
		return openStream(t, s.URL+"/mcp", token, map[string]string{"Mcp-Protocol-Version": legacyVersion})
	}},
	{"Streamable HTTP GET in its token's session", func(t *testing.T, s *stack, token, _ string) <-chan struct{} {
		sid := initSession(t, s, token)
		return openStream(t, s.URL+"/mcp", token, map[string]string{"Mcp-Protocol-Version": legacyVersion, server.HeaderKeySessionID: sid})
	}},
	{"Streamable HTTP GET in a session another token opened", func(t *testing.T, s *stack, token, other string) <-chan struct{} {
		sid := initSession(t, s, other)
		return openStream(t, s.URL+"/mcp", token, map[string]string{"Mcp-Protocol-Version": legacyVersion, server.HeaderKeySessionID: sid})
	}},
}

// TestEveryStreamEndsWithinASecondOfRevocation: whatever kind of stream a
// token holds open, revoking that token ends it within a second.
func TestEveryStreamEndsWithinASecondOfRevocation(t *testing.T) {
	s := startStack(t, stackOpts{})
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			tok := s.mint(t, "streamer", time.Hour)
			other := s.mint(t, "streamer", time.Hour)
			ended := k.open(t, s, tok, other)
			if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
				t.Fatal(err)
			}
			revoked := time.Now()
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream of a revoked token stayed open")
			}
			if el := time.Since(revoked); el > time.Second {
				t.Fatalf("stream ended %v after revocation, want within 1s", el)
			}
		})
	}
}

// TestEveryStreamEndsWithinASecondOfExpiry: whatever kind of stream a
// token holds open, it ends within a second of the token's expiry.
func TestEveryStreamEndsWithinASecondOfExpiry(t *testing.T) {
	s := startStack(t, stackOpts{})
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			tok := s.mint(t, "brief", 2*time.Second)
			other := s.mint(t, "brief", time.Hour)
			exp := time.Unix(int64(s.Verifier.Inspect(tok).Claims["exp"].(float64)), 0)
			ended := k.open(t, s, tok, other)
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream outlived its token")
			}
			if late := time.Since(exp); late > time.Second {
				t.Fatalf("stream ended %v after its token expired, want within 1s", late)
			}
		})
	}
}
