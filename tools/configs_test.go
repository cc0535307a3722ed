package tools

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestClientConfigsCarryTheTokenWhereEachClientReadsIt(t *testing.T) {
	ep := Endpoints{Base: "https://mcp.example.com"}
	const tok = "aaa.bbb.ccc"
	cases := []struct {
		kind string
		want []string // substrings of the JSON rendering
	}{
		{ClientClaudeDesktop, []string{`"mcpServers"`, `"command":"npx"`, `"args":["mcp-remote","https://mcp.example.com/sse","--header","Authorization:${AUTH_HEADER}"]`, `"env":{"AUTH_HEADER":"Bearer aaa.bbb.ccc"}`}},
		{ClientCursor, []string{`"mcpServers"`, `"url":"https://mcp.example.com/mcp"`, `"headers":{"Authorization":"Bearer aaa.bbb.ccc"}`}},
		{ClientWindsurf, []string{`"mcpServers"`, `"serverUrl":"https://mcp.example.com/mcp"`, `"headers":{"Authorization":"Bearer aaa.bbb.ccc"}`}},
		{ClientVSCode, []string{`"servers"`, `"type":"http"`, `"url":"https://mcp.example.com/mcp"`, `"headers":{"Authorization":"Bearer aaa.bbb.ccc"}`}},
		{ClientClaudeCode, []string{`claude mcp add --transport http srv https://mcp.example.com/mcp --header \"Authorization: Bearer aaa.bbb.ccc\"`}},
		{ClientGeneric, []string{`"mcpServers"`, `"url":"https://mcp.example.com/sse"`, `"headers":{"Authorization":"Bearer aaa.bbb.ccc"}`}},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			b, _ := json.Marshal(ClientConfig(c.kind, "srv", tok, ep))
			for _, w := range c.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s config %s lacks %s", c.kind, b, w)
				}
			}
		})
	}
	if len(cases) != len(ClientKinds) {
		t.Fatalf("%d kinds tested, %d exist", len(cases), len(ClientKinds))
	}
}

func TestCheckClientKind(t *testing.T) {
	if k, err := CheckClientKind(""); err != nil || k != ClientClaudeDesktop {
		t.Fatalf("default = %q, %v", k, err)
	}
	if _, err := CheckClientKind("emacs"); err == nil || !strings.Contains(err.Error(), "claude-desktop, cursor") {
		t.Fatalf("unknown kind error = %v", err)
	}
}
