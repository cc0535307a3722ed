package transport

import (
	"context"
	"io"
	"log"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
)

// ServeStdio serves s over in/out as identity until ctx ends or in closes.
// Only protocol messages are written to out; errors go to errOut.
func ServeStdio(ctx context.Context, s *server.MCPServer, identity *auth.Claims, in io.Reader, out, errOut io.Writer) error {
	std := server.NewStdioServer(s)
	std.SetErrorLogger(log.New(errOut, "mcpauth stdio: ", log.LstdFlags))
	std.SetContextFunc(func(ctx context.Context) context.Context {
		return auth.WithClaims(ctx, identity)
	})
	return std.Listen(ctx, in, out)
}
