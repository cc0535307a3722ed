package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/testutil"
	"github.com/mcpauth/mcpauth/transport"
)

// Rule: stdio applies the same strict JSON-RPC checks as HTTP (duplicate
// and case-folded member names, batches): a refused message gets a
// JSON-RPC error -32600 (with its id when that is unambiguous, else
// null) and the server keeps serving.
func TestStdioAppliesTheStrictJSONRPCChecks(t *testing.T) {
	s := startStack(t, stackOpts{})
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	admin := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	admin.Subject = "local-admin"
	go func() {
		done <- transport.ServeStdio(ctx, s.MCP, transport.StdioConfig{Identity: admin}, inR, outW, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("stdio server did not stop")
		}
		outR.Close()
	})
	exchange := testutil.Exchange(inW, outR, 5*time.Second)
	for _, tc := range []struct {
		name, msg string
		id        any // float64 or nil
		want      string
	}{
		{"duplicate method member", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`, 1.0, "given more than once"},
		{"Method spelled with a capital", `{"jsonrpc":"2.0","id":2,"Method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`, 2.0, `member "Method" must be spelled`},
		{"Params spelled with a capital", `{"jsonrpc":"2.0","id":3,"method":"tools/call","Params":{"name":"issue_token","arguments":{"client_id":"x"}}}`, 3.0, `member "Params" must be spelled`},
		{"arguments and ARGUMENTS", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"ok"},"ARGUMENTS":{"client_id":"evil"}}}`, 4.0, "given more than once"},
		{"client_id and CLIENT_ID", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"ok","CLIENT_ID":"evil"}}}`, 5.0, "given more than once"},
		{"duplicate id answers with a null id", `{"jsonrpc":"2.0","id":6,"id":7,"method":"ping"}`, nil, "given more than once"},
		{"id and ID answer with a null id", `{"jsonrpc":"2.0","id":8,"ID":9,"method":"ping"}`, nil, "given more than once"},
		{"batch", `[{"jsonrpc":"2.0","id":10,"method":"ping"}]`, nil, "batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := exchange(t, tc.msg)
			e, _ := m["error"].(map[string]any)
			if e == nil || e["code"] != -32600.0 || !strings.Contains(e["message"].(string), tc.want) {
				t.Fatalf("answer %v, want error -32600 mentioning %q", m, tc.want)
			}
			if id, has := m["id"]; !has || id != tc.id {
				t.Fatalf("id = %v (present %v), want %v", id, has, tc.id)
			}
		})
	}
	// The server is still serving, and nothing was minted.
	if m := exchange(t, `{"jsonrpc":"2.0","id":11,"method":"ping"}`); m["id"] != 11.0 || m["error"] != nil {
		t.Fatalf("ping after the refusals: %v", m)
	}
	if n := s.tokenCount(t); n != 0 {
		t.Fatalf("%d tokens minted", n)
	}
}

// Rule: over stdio, a tools/call the identity's scopes do not allow gets
// a JSON-RPC error -32003 naming the scope (the stdio form of the scope
// challenge) and an auth.forbidden audit record; nothing is minted.
func TestStdioRefusesAToolWithoutItsScopeNamingTheScope(t *testing.T) {
	s := startStack(t, stackOpts{})
	logs := &strings.Builder{}
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriterFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	reader := &auth.Claims{Scope: auth.Scopes{"crm:read"}}
	reader.Subject, reader.ID = "reader", "jti-reader"
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- transport.ServeStdio(ctx, s.MCP, transport.StdioConfig{Identity: reader, ToolScope: toolScope(s), Logger: logger}, inR, outW, io.Discard)
	}()
	defer func() { cancel(); inW.Close(); <-done; outR.Close() }()
	go func() {
		_, _ = io.WriteString(inW, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`+"\n")
	}()
	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		t.Fatal("no answer")
	}
	var m struct {
		ID    float64 `json:"id"`
		Error struct {
			Code    int               `json:"code"`
			Message string            `json:"message"`
			Data    map[string]string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != 7 || m.Error.Code != -32003 || m.Error.Data["error"] != "insufficient_scope" || m.Error.Data["scope"] != "admin" ||
		!strings.Contains(m.Error.Message, "issue_token requires the scope") {
		t.Fatalf("answer = %s", lines.Bytes())
	}
	mu.Lock()
	audit := logs.String()
	mu.Unlock()
	if !strings.Contains(audit, `"event":"auth.forbidden"`) || !strings.Contains(audit, `"via":"stdio"`) || !strings.Contains(audit, `"client_id":"reader"`) {
		t.Fatalf("audit = %s", audit)
	}
	if n := s.tokenCount(t); n != 0 {
		t.Fatalf("%d tokens recorded", n)
	}
}

type lockedWriterFunc func([]byte) (int, error)

func (f lockedWriterFunc) Write(p []byte) (int, error) { return f(p) }
