package transport

import (
	"github.com/mark3labs/mcp-go/server"
)

// Part is something the MCP server offers: mcpauth's own tools (with the
// policy that guards everything), or a relay of what other MCP servers
// offer (the gateway's upstreams).
type Part interface {
	// ServerOptions are the options (capabilities, filters, providers)
	// the part needs on the server; a relay's apply after the tools'.
	ServerOptions() []server.ServerOption
	// Attach adds the part's tools (and anything else it serves) to s.
	Attach(s *server.MCPServer)
}

// Instructions tell the assistant what the server offers; they name
// every tool of mcpauth's own.
const Instructions = "mcpauth issues, inspects and revokes JWTs for MCP clients. " +
	"Admins mint tokens with issue_token, inspect one with decode_token, see who holds tokens with list_clients and list_tokens, " +
	"and revoke with revoke_token; list_keys shows the keys that sign and verify tokens; they let clients sign in with create_enrollment, list_pending_authorizations, " +
	"approve_authorization and deny_authorization, and see the relayed servers with list_upstreams. " +
	"Anyone can call whoami to see their identity and the tools their token may call. " +
	"Tools named <upstream>__<tool> are relayed from the MCP servers mcpauth guards."

// NewMCPServer builds the mcp-go server with own (mcpauth's tools and the
// policy enforced on everything the server offers) and each relay
// attached.
func NewMCPServer(own Part, version string, relays ...Part) *server.MCPServer {
	opts := []server.ServerOption{
		// Relayed upstreams can change their lists at any time.
		server.WithToolCapabilities(len(relays) > 0),
		server.WithRecovery(),
		server.WithInstructions(Instructions),
	}
	if len(relays) > 0 {
		opts = append(opts, server.WithPromptCapabilities(true), server.WithResourceCapabilities(false, true))
	}
	opts = append(opts, own.ServerOptions()...)
	for _, r := range relays {
		opts = append(opts, r.ServerOptions()...)
	}
	s := server.NewMCPServer("mcpauth", version, opts...)
	own.Attach(s)
	for _, r := range relays {
		r.Attach(s)
	}
	return s
}
