package main

// The upstream MCP servers of the gateway benchmarks: the bench binary
// re-executes itself as `bench upstream http -addr A` (an mcp-go
// Streamable HTTP server with an "echo" tool) or `bench upstream stdio
// -delay D` (an mcp-go stdio server whose "wait" tool answers after D), so
// the upstream runs in a process of its own and its CPU time is counted
// apart from mcpauth's and the load generator's.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// reexecMode serves as role when the bench binary was re-executed as
// `bench <role> <kind> [flags]` (an upstream, a peer), until it is
// stopped; it never returns then. Otherwise it returns at once.
func reexecMode(role string, serve func(kind string, args []string) error) {
	if len(os.Args) < 3 || os.Args[1] != role {
		return
	}
	if err := serve(os.Args[2], os.Args[3:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveUntilStopped serves h on addr until the process is told to stop
// (SIGINT, SIGTERM), then shuts the server down, giving requests in
// flight grace to finish before it closes what is left.
func serveUntilStopped(addr string, h http.Handler, grace time.Duration) error {
	hs := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = hs.Shutdown(sctx)
		_ = hs.Close()
	}()
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serveUpstream(mode string, args []string) error {
	fs := flag.NewFlagSet("upstream "+mode, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (http)")
	delay := fs.Duration("delay", 0, "how long the wait tool waits before answering (stdio)")
	workers := fs.Int("workers", 100, "concurrent tool calls the stdio server handles (mcp-go's worker pool; it caps at 100)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := server.NewMCPServer("bench-upstream", "1", server.WithToolCapabilities(false))
	switch mode {
	case "http":
		s.AddTool(mcp.NewTool("echo", mcp.WithDescription("returns its text argument"), mcp.WithString("text")),
			func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText(req.GetString("text", "")), nil
			})
		// work burns gatewayWork of CPU before answering: an upstream
		// whose tool does work, beside echo's none.
		s.AddTool(mcp.NewTool("work", mcp.WithDescription("computes for a fixed CPU time, then answers")),
			func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText(burn(gatewayWork)), nil
			})
		mux := http.NewServeMux()
		mux.Handle("/mcp", server.NewStreamableHTTPServer(s))
		mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		return serveUntilStopped(*addr, mux, 5*time.Second)
	case "stdio":
		d := *delay
		s.AddTool(mcp.NewTool("wait", mcp.WithDescription("answers after a fixed delay")),
			func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return mcp.NewToolResultText("waited " + d.String()), nil
			})
		return server.ServeStdio(s, server.WithWorkerPoolSize(*workers))
	}
	return fmt.Errorf("unknown mode %q (http or stdio)", mode)
}

// burn computes SHA-256 over its own output until d has passed (on a CPU
// of its own that is d of CPU time) and returns the last digest.
func burn(d time.Duration) string {
	sum := sha256.Sum256([]byte("bench"))
	for end := time.Now().Add(d); time.Now().Before(end); {
		for range 64 {
			sum = sha256.Sum256(sum[:])
		}
	}
	return hex.EncodeToString(sum[:8])
}
