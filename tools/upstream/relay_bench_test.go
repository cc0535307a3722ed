package upstream

import (
	"context"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// BenchmarkRelayToolsCall is one tools/call relayed to a Streamable HTTP
// upstream (an mcp-go server with an echo tool, as bench/upstream.go's, in
// this process), called through an in-process client of the gateway's
// server: the relay's cost (mcp-go's client, net/http both ways, the
// upstream's answer, the gateway's server encoding it), without the
// caller's HTTP hop. Profile with -cpuprofile and focus on callTool.
func BenchmarkRelayToolsCall(b *testing.B) {
	up := server.NewMCPServer("bench-upstream", "1", server.WithToolCapabilities(false))
	up.AddTool(mcp.NewTool("echo", mcp.WithString("text")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("text", "")), nil
		})
	hs := httptest.NewServer(server.NewStreamableHTTPServer(up))
	defer hs.Close()
	g := New([]Entry{{Name: "up", URL: hs.URL + "/mcp", Type: "http"}}, Options{})
	ctx := context.Background()
	if err := g.Start(ctx, nil); err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	c, err := client.NewInProcessClient(gatewayServer(g))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_LEGACY_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "bench"}}}); err != nil {
		b.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "up__echo"
	req.Params.Arguments = map[string]any{"text": "hello from the gateway benchmark"}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.CallTool(ctx, req)
			if err != nil || res.IsError {
				b.Fatalf("call: %v %v", err, res)
			}
		}
	})
	b.StopTimer()
	// The wall clock is shared with whatever else runs on the machine;
	// the process's CPU time per call (both sides of the relay, the
	// upstream included) is the steadier measure.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
