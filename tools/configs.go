package tools

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Client kinds a ready configuration can be rendered for.
const (
	ClientClaudeDesktop = "claude-desktop"
	ClientCursor        = "cursor"
	ClientWindsurf      = "windsurf"
	ClientVSCode        = "vscode"
	ClientClaudeCode    = "claude-code"
	ClientGeneric       = "generic"
)

// ClientKinds lists every kind, the default first.
var ClientKinds = []string{ClientClaudeDesktop, ClientCursor, ClientWindsurf, ClientVSCode, ClientClaudeCode, ClientGeneric}

// clientNames are the human names of the kinds.
var clientNames = map[string]string{
	ClientClaudeDesktop: "Claude Desktop (claude_desktop_config.json, through mcp-remote)",
	ClientCursor:        "Cursor (~/.cursor/mcp.json)",
	ClientWindsurf:      "Windsurf (~/.codeium/windsurf/mcp_config.json)",
	ClientVSCode:        "VS Code (.vscode/mcp.json)",
	ClientClaudeCode:    "Claude Code (run in a terminal)",
	ClientGeneric:       "any client that takes a URL and headers",
}

// CheckClientKind validates a client kind ("" means the default).
func CheckClientKind(kind string) (string, error) {
	if kind == "" {
		return ClientClaudeDesktop, nil
	}
	if !slices.Contains(ClientKinds, kind) {
		return "", fmt.Errorf("unknown client %q; choose one of %s", untrusted.Clip(kind, 40), strings.Join(ClientKinds, ", "))
	}
	return kind, nil
}

// Endpoints are the URLs a client config points at.
type Endpoints struct {
	// Base is the server's public base URL, without a trailing slash.
	Base string
}

// MCP is the Streamable HTTP endpoint.
func (e Endpoints) MCP() string { return e.Base + "/mcp" }

// SSE is the legacy SSE endpoint.
func (e Endpoints) SSE() string { return e.Base + "/sse" }

// desktopArgs are Claude Desktop's arguments to mcp-remote.
func desktopArgs(ep Endpoints) []string {
	return []string{"mcp-remote", ep.SSE(), "--header", "Authorization:${AUTH_HEADER}"}
}

// ClientConfig renders the configuration of one client kind for a token.
// JSON configs are maps; Claude Code's is a command line under "command".
func ClientConfig(kind, serverName, token string, ep Endpoints) map[string]any {
	bearer := "Bearer " + token
	headers := map[string]string{"Authorization": bearer}
	switch kind {
	case ClientClaudeDesktop:
		// Claude Desktop launches local commands; mcp-remote bridges to
		// the remote server. The header goes through an env var so the
		// space in "Bearer <token>" survives argument handling.
		return map[string]any{"mcpServers": map[string]any{serverName: map[string]any{
			"command": "npx",
			"args":    desktopArgs(ep),
			"env":     map[string]string{"AUTH_HEADER": bearer},
		}}}
	case ClientCursor:
		return map[string]any{"mcpServers": map[string]any{serverName: map[string]any{
			"url": ep.MCP(), "headers": headers,
		}}}
	case ClientWindsurf:
		return map[string]any{"mcpServers": map[string]any{serverName: map[string]any{
			"serverUrl": ep.MCP(), "headers": headers,
		}}}
	case ClientVSCode:
		return map[string]any{"servers": map[string]any{serverName: map[string]any{
			"type": "http", "url": ep.MCP(), "headers": headers,
		}}}
	case ClientClaudeCode:
		return map[string]any{"command": fmt.Sprintf("claude mcp add --transport http %s %s --header %q", serverName, ep.MCP(), "Authorization: "+bearer)}
	default: // generic, as the token guide's script prints it
		return map[string]any{"mcpServers": map[string]any{serverName: map[string]any{
			"url": ep.SSE(), "headers": headers,
		}}}
	}
}
