package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	out, _, code := run(t, testEnv(t), "", "version")
	if code != 0 || out != "mcpauth dev ("+runtime.Version()+")\n" {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

// Rule: NODE_ENV (the production setup document's switch) is read as
// MCP_ENV when that is not set; MCP_ENV wins when both are.
func TestNodeEnvIsReadAsMCPEnvUnlessMCPEnvIsSet(t *testing.T) {
	noSecret := testEnv(t, "MCP_JWT_SECRET=")
	// Development: no secret needed (a dev secret is generated).
	if _, errOut, code := run(t, mergeEnv(noSecret, []string{"NODE_ENV=development"}), "", "token", "issue", "dev-app", "1d", "--json"); code != 0 {
		t.Fatalf("NODE_ENV=development: exit %d, %s", code, errOut)
	}
	for _, env := range [][]string{
		{"NODE_ENV=production"},
		{"NODE_ENV=development", "MCP_ENV=production"},
	} {
		_, errOut, code := run(t, mergeEnv(noSecret, env), "", "token", "issue", "prod-app", "1d", "--json")
		if code == 0 || !strings.Contains(errOut, "MCP_JWT_SECRET") {
			t.Fatalf("%v without a secret: exit %d, %s", env, code, errOut)
		}
	}
}

// Rule: serve on an empty registry says how to mint the first token.
func TestFirstStartSaysHowToGetTheFirstToken(t *testing.T) {
	_, _, logs := startServerLogged(t, testEnv(t))
	waitUntil(t, "the first-token hint", func() bool {
		return strings.Contains(logs.String(), "no tokens yet") && strings.Contains(logs.String(), "mcpauth token issue <your-name> 30d --scope admin")
	})
}
