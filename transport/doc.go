// Package transport serves mcpauth's MCP server over stdio, legacy SSE
// (GET /sse + POST /message) and Streamable HTTP (/mcp) on one HTTP
// listener, all behind bearer.Middleware. It owns the routes, the health
// endpoint, and session binding: a session is usable only by the subject
// that opened it. It never logs tokens.
package transport
