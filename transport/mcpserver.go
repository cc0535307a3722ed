package transport

import (
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/tools"
)

// NewMCPServer builds the mcp-go server with the toolset registered and its
// scope enforcement installed.
func NewMCPServer(ts *tools.Toolset, version string) *server.MCPServer {
	opts := []server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions("mcpauth issues and inspects JWTs for MCP clients. " +
			"Admins can mint tokens with issue_token, inspect them with decode_token and see who holds tokens with list_clients; " +
			"anyone can call whoami."),
	}
	opts = append(opts, ts.ServerOptions()...)
	s := server.NewMCPServer("mcpauth", version, opts...)
	ts.Register(s)
	return s
}
