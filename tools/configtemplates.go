package tools

import (
	"encoding/json"
	"strings"
)

// configTemplates are every client kind's configuration for one server
// name and base URL, rendered once around a placeholder token: a mint
// fills its token in instead of building six nested maps and encoding
// them (about 100 µs of issue_token's CPU). The output is byte for byte
// what encoding the maps gives (tested).
type configTemplates struct {
	serverName string
	ep         Endpoints
	// compact and indented are each kind's JSON, split at the token;
	// command is Claude Code's command line, split likewise.
	compact, indented map[string][]string
	command           []string
}

// tokenPlaceholder stands for the token while templates are rendered; it
// cannot occur in a server name or URL that would also need it filled.
const tokenPlaceholder = "MCPAUTH.TOKEN.PLACEHOLDER.9d2f61"

func newConfigTemplates(serverName string, ep Endpoints) *configTemplates {
	ct := &configTemplates{serverName: serverName, ep: ep, compact: map[string][]string{}, indented: map[string][]string{}}
	for _, k := range ClientKinds {
		cfg := ClientConfig(k, serverName, tokenPlaceholder, ep)
		compact, err1 := json.Marshal(cfg)
		indented, err2 := json.MarshalIndent(cfg, "", "  ")
		if err1 != nil || err2 != nil || strings.Count(serverName+ep.Base, tokenPlaceholder) > 0 {
			return nil // never for maps of strings; the slow path serves
		}
		ct.compact[k] = strings.Split(string(compact), tokenPlaceholder)
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

// issueWire is IssueResult as the tool sends it: the configs already
// encoded (its fields shadow IssueResult's, which stay empty; they come
// last in both, so the members keep their order).
type issueWire struct {
	IssueResult
	Config  json.RawMessage            `json:"config"`
	Configs map[string]json.RawMessage `json:"configs"`
}

// wire is i's structured content rendered with ct (which serves i).
func (ct *configTemplates) wire(i Issued) issueWire {
	tok := i.Token.Token
	w := issueWire{IssueResult: i.result(), Configs: make(map[string]json.RawMessage, len(ClientKinds))}
	w.Config = json.RawMessage(fill(ct.compact[w.Client], tok))
	for _, k := range ClientKinds {
		w.Configs[k] = json.RawMessage(fill(ct.compact[k], tok))
	}
	return w
}
