package tools

import (
	"encoding/json"
	"strings"
)

// configTemplates are every client kind's configuration for one server
// name and base URL, prepared once: a mint fills its token into typed
// values (structured content) and pre-rendered text instead of building
// six nested maps and encoding them (about 100 µs of issue_token's CPU).
// The output is byte for byte what encoding the maps gives (tested).
type configTemplates struct {
	serverName string
	ep         Endpoints
	// indented is each kind's indented JSON (the text's featured
	// config), split at the token; command is Claude Code's command line,
	// split likewise.
	indented map[string][]string
	command  []string
	// desktopArgs are Claude Desktop's mcp-remote arguments (no token;
	// shared, never modified).
	desktopArgs []string
}

// tokenPlaceholder stands for the token while templates are rendered; it
// cannot occur in a server name or URL that would also need it filled.
const tokenPlaceholder = "MCPAUTH.TOKEN.PLACEHOLDER.9d2f61"

func newConfigTemplates(serverName string, ep Endpoints) *configTemplates {
	ct := &configTemplates{serverName: serverName, ep: ep, indented: map[string][]string{}, desktopArgs: desktopArgs(ep)}
	for _, k := range ClientKinds {
		cfg := ClientConfig(k, serverName, tokenPlaceholder, ep)
		indented, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil || strings.Count(serverName+ep.Base, tokenPlaceholder) > 0 {
			return nil // never for maps of strings; the slow path serves
		}
		ct.indented[k] = strings.Split(string(indented), tokenPlaceholder)
		if k == ClientClaudeCode {
			ct.command = strings.Split(cfg["command"].(string), tokenPlaceholder)
		}
	}
	return ct
}

// serves reports whether the templates render i's configs: the same
// server name and URL, and a token that needs no escaping in JSON or a
// quoted command line (every JWT: base64url and dots).
func (ct *configTemplates) serves(i Issued) bool {
	if ct == nil || ct.serverName != i.ServerName || ct.ep != i.endpoints() || i.Token.Token == "" {
		return false
	}
	for _, c := range []byte(i.Token.Token) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func fill(parts []string, token string) string { return strings.Join(parts, token) }

// issueWire is IssueResult as the tool sends it: the configs as typed
// values whose encoding is byte for byte that of ClientConfig's maps
// (tested). Typed values rather than pre-encoded json.RawMessage: encoding/json
// re-scans (compacts) every Marshaler's output, which cost a mint about
// 30 µs for the seven configs, and mcp-go re-scans the whole result once
// more anyway. Its fields shadow IssueResult's, which stay empty; they
// come last in both, so the members keep their order.
type issueWire struct {
	IssueResult
	Config  any         `json:"config"`
	Configs wireConfigs `json:"configs"`
}

// wireConfigs is Configs for every kind, its members in the order of the
// map's sorted keys.
type wireConfigs struct {
	ClaudeCode    commandConfig              `json:"claude-code"`
	ClaudeDesktop mcpServers[desktopServer]  `json:"claude-desktop"`
	Cursor        mcpServers[urlServer]      `json:"cursor"`
	Generic       mcpServers[urlServer]      `json:"generic"`
	VSCode        vscodeConfig               `json:"vscode"`
	Windsurf      mcpServers[windsurfServer] `json:"windsurf"`
}

// The typed configs, members in sorted order as for a map (ClientConfig).
type (
	commandConfig struct {
		Command string `json:"command"`
	}
	mcpServers[S any] struct {
		MCPServers map[string]S `json:"mcpServers"`
	}
	vscodeConfig struct {
		Servers map[string]vscodeServer `json:"servers"`
	}
	desktopServer struct {
		Args    []string    `json:"args"`
		Command string      `json:"command"`
		Env     authEnvJSON `json:"env"`
	}
	urlServer struct {
		Headers authHeaders `json:"headers"`
		URL     string      `json:"url"`
	}
	windsurfServer struct {
		Headers   authHeaders `json:"headers"`
		ServerURL string      `json:"serverUrl"`
	}
	vscodeServer struct {
		Headers authHeaders `json:"headers"`
		Type    string      `json:"type"`
		URL     string      `json:"url"`
	}
	authHeaders struct {
		Authorization string `json:"Authorization"`
	}
	authEnvJSON struct {
		AuthHeader string `json:"AUTH_HEADER"`
	}
)

// wire is i's structured content rendered with ct (which serves i).
func (ct *configTemplates) wire(i Issued) issueWire {
	bearer := "Bearer " + i.Token.Token
	h := authHeaders{Authorization: bearer}
	name, mcp, sse := ct.serverName, ct.ep.MCP(), ct.ep.SSE()
	w := issueWire{IssueResult: i.result(), Configs: wireConfigs{
		ClaudeCode: commandConfig{Command: fill(ct.command, i.Token.Token)},
		ClaudeDesktop: mcpServers[desktopServer]{MCPServers: map[string]desktopServer{name: {
			Args: ct.desktopArgs, Command: "npx", Env: authEnvJSON{AuthHeader: bearer},
		}}},
		Cursor:   mcpServers[urlServer]{MCPServers: map[string]urlServer{name: {Headers: h, URL: mcp}}},
		Generic:  mcpServers[urlServer]{MCPServers: map[string]urlServer{name: {Headers: h, URL: sse}}},
		VSCode:   vscodeConfig{Servers: map[string]vscodeServer{name: {Headers: h, Type: "http", URL: mcp}}},
		Windsurf: mcpServers[windsurfServer]{MCPServers: map[string]windsurfServer{name: {Headers: h, ServerURL: mcp}}},
	}}
	switch c := &w.Configs; w.Client {
	case ClientClaudeCode:
		w.Config = c.ClaudeCode
	case ClientCursor:
		w.Config = c.Cursor
	case ClientWindsurf:
		w.Config = c.Windsurf
	case ClientVSCode:
		w.Config = c.VSCode
	case ClientGeneric:
		w.Config = c.Generic
	default:
		w.Config = c.ClaudeDesktop
	}
	return w
}
