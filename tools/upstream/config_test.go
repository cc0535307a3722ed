package upstream

import (
	"strings"
	"testing"
)

func lookup(k string) (string, bool) {
	v, ok := map[string]string{"CRM_KEY": "s3cret"}[k]
	return v, ok
}

func TestParseReadsClientConfigs(t *testing.T) {
	// A Claude Desktop config pasted as is, plus a URL entry.
	f, err := Parse([]byte(`{"mcpServers": {
		"files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"], "env": {"DEBUG": "1"}},
		"crm": {"url": "https://crm.example/mcp", "headers": {"Authorization": "Bearer ${CRM_KEY}"}, "timeout": "5s"},
		"raw": {"type": "stdio", "command": "./srv", "prefix": ""}
	}, "policy": {"default": "deny"}}`), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Servers) != 3 || f.Servers[0].Name != "crm" || f.Servers[1].Name != "files" || f.Servers[2].Name != "raw" {
		t.Fatalf("servers = %+v", f.Servers)
	}
	crm := f.Servers[0]
	if crm.Headers["Authorization"] != "Bearer s3cret" || crm.NamePrefix() != "crm__" || crm.Timeout.String() != "5s" {
		t.Fatalf("crm = %+v", crm)
	}
	if f.Servers[2].NamePrefix() != "" || !f.Servers[1].IsStdio() {
		t.Fatalf("raw prefix %q", f.Servers[2].NamePrefix())
	}
	if string(f.Policy) != `{"default": "deny"}` {
		t.Fatalf("policy = %s", f.Policy)
	}
}

func TestParseRefusesBadEntriesNamingThem(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{}`, `no "mcpServers"`},
		{`{"mcpServers": {}, "extra": 1}`, `unknown field "extra"`},
		{`{"mcpServers": {"a": {"command": "x", "cwd": "/"}}}`, `mcpServers "a": json: unknown field "cwd"`},
		{`{"mcpServers": {"a": {}}}`, `mcpServers "a": needs "command"`},
		{`{"mcpServers": {"a": {"command": "x", "url": "http://h"}}}`, `has both`},
		{`{"mcpServers": {"a": {"url": "ftp://h"}}}`, `not an http(s) URL`},
		{`{"mcpServers": {"a": {"url": "http://u:p@h/mcp"}}}`, `must not carry credentials`},
		{`{"mcpServers": {"a": {"url": "http://h", "args": ["x"]}}}`, `apply to "command" servers only`},
		{`{"mcpServers": {"a": {"command": "x", "headers": {"A": "b"}}}}`, `apply to "url" servers only`},
		{`{"mcpServers": {"a": {"command": "x", "type": "sse"}}}`, `does not fit`},
		{`{"mcpServers": {"a": {"url": "http://h", "type": "websocket"}}}`, `is not one of`},
		{`{"mcpServers": {"a__b": {"command": "x"}}}`, `without "__"`},
		{`{"mcpServers": {"a b": {"command": "x"}}}`, `a name is`},
		{`{"mcpServers": {"a": {"url": "http://h", "headers": {"K": "${NOPE}"}}}}`, `names ${NOPE}, which is not set`},
		{`{"mcpServers": {"a": {"command": "x", "timeout": "soon"}}}`, `not a positive duration`},
		{`{"mcpServers": {"a": {"command": "x", "prefix": "p"}, "b": {"command": "y", "prefix": "p"}}}`, `"a" and "b" both serve names prefixed "p__"`},
		{`{"mcpServers": {"a": {"command": "x"}, "b": {"command": "y", "prefix": "a"}}}`, `both serve names prefixed "a__"`},
		{`{"mcpServers": {"a": {"url": "http://h", "headers": {"Mcp-Session-Id": "1"}}}}`, `transport's to set`},
		{`{"mcpServers": {"a": {"command": "x"}}} trailing`, `unexpected data`},
	} {
		_, err := Parse([]byte(tc.doc), lookup)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tc.doc, err, tc.want)
		}
	}
}
