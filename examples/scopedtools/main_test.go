package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	mcptransport "github.com/mcpauth/mcpauth/transport"
)

func TestEachToolNeedsItsScope(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv, err := newServer(ctx, []byte("example-test-secret-0123456789abcdef"), base, filepath.Join(t.TempDir(), "ex.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	done := make(chan error, 1)
	go func() { done <- mcptransport.Serve(ctx, ln, srv.HTTP, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()
	reader, err := mint(ctx, srv, "reader", "campaigns:read")
	if err != nil {
		t.Fatal(err)
	}

	c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + reader}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
	defer ccancel()
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(cctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ClientInfo: mcp.Implementation{Name: "t"}}}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListTools(cctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Contains(names, "list_campaigns") || slices.Contains(names, "export_campaigns") || slices.Contains(names, "issue_token") {
		t.Fatalf("reader sees %v", names)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "list_campaigns"
	res, err := c.CallTool(cctx, req)
	if err != nil || res.IsError {
		t.Fatalf("list_campaigns: %v %+v", err, res)
	}

	// The tool the reader lacks the scope for: the MCP scope challenge.
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"export_campaigns","arguments":{}}}`
	hr, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(body))
	hr.Header.Set("Authorization", "Bearer "+reader)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="campaigns:export"`) {
		t.Fatalf("export_campaigns as reader: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
