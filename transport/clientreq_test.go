package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth"
)

// askClient is a tool that asks its caller's client to sample, as the
// gateway does for an upstream, and answers with what the client said.
func askClient() mcpauth.Tool {
	return mcpauth.Tool{
		Tool: mcp.NewTool("ask_client"),
		Handler: func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			req := mcp.CreateMessageRequest{}
			req.Messages = []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("hi")}}
			req.MaxTokens = 5
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			res, err := server.ServerFromContext(ctx).RequestSampling(ctx, req)
			if err != nil {
				return mcp.NewToolResultError("sampling failed: " + err.Error()), nil
			}
			return mcp.NewToolResultText(fmt.Sprintf("model %s said %v", res.Model, res.Content)), nil
		},
	}
}

// samplingAnswer is a client's JSON-RPC result for sampling request id.
func samplingAnswer(id any, text string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
		"model": "raw-model", "role": "assistant", "content": map[string]any{"type": "text", "text": text}}})
	return string(b)
}

// A legacy SSE client gets the server's sampling request on its stream
// and POSTs its answer to the message endpoint: the answer reaches the
// tool that asked. An answer naming no pending request is accepted and
// dropped; an error answer reaches the tool as an error. (Before, legacy
// SSE sessions could not carry requests to the client at all.)
func TestLegacySSEClientAnswersServerRequests(t *testing.T) {
	s := startStack(t, stackOpts{tools: []mcpauth.Tool{askClient()}})
	tok := s.mint(t, "sse-asker", time.Hour)
	ep, events := rawSSE(t, s.URL, tok)
	initSSE(t, s, ep, tok, events)

	for _, tc := range []struct {
		name   string
		answer func(id any) string
		want   string
	}{
		{"result", func(id any) string { return samplingAnswer(id, "from the raw SSE client") }, "from the raw SSE client"},
		{"error", func(id any) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%v,"error":{"code":-1,"message":"user rejected sampling"}}`, id)
		}, "sampling failed: the client answered sampling/createMessage with error -1: user rejected sampling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The POST of a message is answered once its answer is queued
			// on the stream, so this one waits for the client's answer.
			posted := make(chan int, 1)
			go func() {
				req, _ := http.NewRequest("POST", s.URL+ep, strings.NewReader(`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"ask_client","arguments":{}}}`))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					posted <- 0
					return
				}
				r.Body.Close()
				posted <- r.StatusCode
			}()
			req := nextMessage(t, events)
			if req["method"] != "sampling/createMessage" || req["id"] == nil {
				t.Fatalf("expected the sampling request on the stream, got %v", req)
			}
			// An answer to a request nobody made changes nothing.
			postMessage(t, s, ep, tok, samplingAnswer(987654, "stray"))
			postMessage(t, s, ep, tok, tc.answer(req["id"]))
			res := nextMessage(t, events)
			if code := <-posted; code != 202 {
				t.Fatalf("POST of the tool call: %d", code)
			}
			if res["id"] != "call-1" {
				t.Fatalf("expected the tool result, got %v", res)
			}
			text := fmt.Sprint(res["result"])
			if !strings.Contains(text, tc.want) || strings.Contains(text, "stray") || (tc.name == "result" && !strings.Contains(text, "model raw-model said")) {
				t.Fatalf("tool result %s, want %q", text, tc.want)
			}
		})
	}
}

// A WebSocket client gets the server's sampling request on the
// connection and answers on it.
func TestWebSocketClientAnswersServerRequests(t *testing.T) {
	s := startStack(t, stackOpts{tools: []mcpauth.Tool{askClient()}})
	tok := s.mint(t, "ws-asker", time.Hour)
	w := mustDialWS(t, s, tok)
	w.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"sampling":{}},"clientInfo":{"name":"raw-ws","version":"1"}}}`)
	if r := w.recv(); r.Error != nil {
		t.Fatalf("initialize: %+v", r.Error)
	}
	w.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	w.send(`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"ask_client","arguments":{}}}`)
	req := w.recv()
	if req.Method != "sampling/createMessage" {
		t.Fatalf("expected the sampling request, got %+v", req)
	}
	var id any
	_ = json.Unmarshal(req.ID, &id)
	w.send(samplingAnswer(123456, "stray")) // no such request: dropped, no answer
	w.send(samplingAnswer(id, "from the raw WebSocket client"))
	res := w.recv()
	if string(res.ID) != `"call-1"` || !strings.Contains(string(res.Result), "from the raw WebSocket client") {
		t.Fatalf("tool result %s %s", res.ID, res.Result)
	}
}

// notifyThenAnswer is a tool that sends a progress notification and
// answers at once.
func notifyThenAnswer() mcpauth.Tool {
	return mcpauth.Tool{
		Tool: mcp.NewTool("notify_then_answer"),
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress",
				map[string]any{"progressToken": req.Params.Meta.ProgressToken, "progress": 1, "total": 1})
			return mcp.NewToolResultText("answered"), nil
		},
	}
}

// Rule: on a legacy SSE stream a notification the server sent during a
// call comes before the call's answer (the stream's writer took the
// answer and the notification from two queues, in either order).
func TestLegacySSENotificationsPrecedeTheAnswer(t *testing.T) {
	s := startStack(t, stackOpts{tools: []mcpauth.Tool{notifyThenAnswer()}})
	tok := s.mint(t, "sse-order", time.Hour)
	ep, events := rawSSE(t, s.URL, tok)
	initSSE(t, s, ep, tok, events)
	for i := range 50 {
		postMessage(t, s, ep, tok, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"notify_then_answer","arguments":{},"_meta":{"progressToken":"p-%d"}}}`, i+1, i))
		if m := nextMessage(t, events); m["method"] != "notifications/progress" {
			t.Fatalf("call %d: first message after the call is %v, want its progress", i, m)
		}
		if m := nextMessage(t, events); m["id"] != float64(i+1) {
			t.Fatalf("call %d: then %v, want the answer", i, m)
		}
	}
}

// Rule: on a WebSocket connection a notification the server sent during
// a call comes before the call's answer.
func TestWebSocketNotificationsPrecedeTheAnswer(t *testing.T) {
	s := startStack(t, stackOpts{tools: []mcpauth.Tool{notifyThenAnswer()}})
	w := mustDialWS(t, s, s.mint(t, "ws-order", time.Hour))
	w.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw-ws","version":"1"}}}`)
	if r := w.recv(); r.Error != nil {
		t.Fatalf("initialize: %+v", r.Error)
	}
	w.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	next := func() map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, b, err := w.c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i := range 50 {
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"notify_then_answer","arguments":{},"_meta":{"progressToken":"p-%d"}}}`, i+1, i))
		if m := next(); m["method"] != "notifications/progress" {
			t.Fatalf("call %d: first message after the call is %v, want its progress", i, m)
		}
		if m := next(); m["id"] != float64(i+1) {
			t.Fatalf("call %d: then %v, want the answer", i, m)
		}
	}
}
