// Package testutil holds the helpers the tests of several packages share
// (cmd/mcpauth, transport, tools/upstream, auth/registry): a buffer safe
// for a server's log written from many goroutines, and mcp-go client
// calls that fail the test on a transport error. It is imported by tests
// only.
package testutil

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// Buffer collects output written from many goroutines (a server's log, a
// child process's stderr) while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// callTimeout bounds each call these helpers make.
const callTimeout = 30 * time.Second

// CallTool calls the tool name with args and fails the test when the
// call itself fails (a tool error is a result, returned).
func CallTool(t testing.TB, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

// Text is a tool result's text content, concatenated.
func Text(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// ToolNames lists the tools c is offered, sorted.
func ToolNames(t testing.TB, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

// Exchange talks JSON-RPC over line-delimited streams (a stdio server's
// stdin and stdout): each call writes msg and a newline to in and returns
// the next line read from out, decoded; the test fails when no line comes
// within timeout.
func Exchange(in io.Writer, out io.Reader, timeout time.Duration) func(t testing.TB, msg string) map[string]any {
	lines := bufio.NewScanner(out)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	return func(t testing.TB, msg string) map[string]any {
		t.Helper()
		go func() { _, _ = io.WriteString(in, msg+"\n") }()
		got := make(chan map[string]any, 1)
		go func() {
			var m map[string]any
			if lines.Scan() {
				_ = json.Unmarshal(lines.Bytes(), &m)
			}
			got <- m
		}()
		select {
		case m := <-got:
			return m
		case <-time.After(timeout):
			t.Fatal("no answer on stdout")
			return nil
		}
	}
}
