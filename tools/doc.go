// Package tools defines mcpauth's MCP tools (issue_token, decode_token,
// list_clients, whoami): their schemas, argument validation and handlers.
// Handlers read the caller's verified identity from the context
// (auth.ClaimsFrom) and call into auth and the registry through small
// interfaces. Nothing here speaks HTTP, and no handler ever logs a token.
package tools
