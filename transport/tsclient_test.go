package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// requireNode returns the node binary and the TypeScript client directory,
// skipping when they are absent, except where MCPAUTH_REQUIRE_NODE is set
// (the test command sets it, so CI never skips silently).
func requireNode(t *testing.T) (node, dir string) {
	t.Helper()
	return requireNodePackage(t, "tsclient", filepath.Join("@modelcontextprotocol", "sdk"))
}

// requireNodePackage returns the node binary and testdata/<dir>, where
// package pkg must be installed; it skips or (MCPAUTH_REQUIRE_NODE) fails
// as requireNode does.
func requireNodePackage(t *testing.T, dir, pkg string) (node, abs string) {
	t.Helper()
	abs, _ = filepath.Abs(filepath.Join("testdata", dir))
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(abs, "node_modules", pkg))
	}
	if err != nil {
		if os.Getenv("MCPAUTH_REQUIRE_NODE") != "" {
			t.Fatalf("Node package %s unavailable (%v); run: npm ci --prefix transport/testdata/%s", pkg, err, dir)
		}
		t.Skipf("Node package %s unavailable (%v); run: npm ci --prefix transport/testdata/%s", pkg, err, dir)
	}
	return node, abs
}

type tsResult struct {
	ProtocolVersion string   `json:"protocolVersion"`
	Tools           []string `json:"tools"`
	Whoami          struct {
		StructuredContent struct {
			ClientID string `json:"client_id"`
		} `json:"structuredContent"`
	} `json:"whoami"`
	Issue *struct {
		IsError           bool `json:"isError"`
		StructuredContent struct {
			Token    string `json:"token"`
			ClientID string `json:"client_id"`
		} `json:"structuredContent"`
	} `json:"issue"`
}

func runTSClient(t *testing.T, url, mode, token string, callIssue bool) (tsResult, error) {
	t.Helper()
	node, dir := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"), url, mode)
	cmd.Env = append(os.Environ(), "MCP_TOKEN="+token)
	if callIssue {
		cmd.Env = append(cmd.Env, "CALL_ISSUE=1")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return tsResult{}, &tsError{err: err, stderr: stderr.String()}
	}
	var r tsResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("TypeScript client output %q: %v", stdout.String(), err)
	}
	return r, nil
}

type tsError struct {
	err    error
	stderr string
}

func (e *tsError) Error() string { return e.err.Error() + ": " + e.stderr }

func TestTypeScriptSDKClientMintsOverBothHTTPTransports(t *testing.T) {
	s := startStack(t, stackOpts{})
	admin := s.mint(t, "ts-admin", time.Hour, "admin")
	for _, tc := range []struct{ mode, path string }{{"streamable", "/mcp"}, {"sse", "/sse"}} {
		t.Run(tc.mode, func(t *testing.T) {
			before := s.tokenCount(t)
			r, err := runTSClient(t, s.URL+tc.path, tc.mode, admin, true)
			if err != nil {
				t.Fatal(err)
			}
			if r.ProtocolVersion == "" {
				t.Error("no protocol version negotiated")
			}
			if want := []string{"decode_token", "issue_token", "list_clients", "list_keys", "list_tokens", "revoke_token", "whoami"}; !slices.Equal(sorted(r.Tools), want) {
				t.Errorf("tools = %v, want %v", r.Tools, want)
			}
			if r.Whoami.StructuredContent.ClientID != "ts-admin" {
				t.Errorf("whoami client_id = %q", r.Whoami.StructuredContent.ClientID)
			}
			if r.Issue == nil || r.Issue.IsError || r.Issue.StructuredContent.ClientID != "ts-client" {
				t.Fatalf("issue_token = %+v", r.Issue)
			}
			if _, err := s.Verifier.Verify(r.Issue.StructuredContent.Token); err != nil {
				t.Errorf("minted token does not verify: %v", err)
			}
			if got := s.tokenCount(t); got != before+1 {
				t.Errorf("registry count %d, want %d", got, before+1)
			}
		})
	}
}

func TestTypeScriptSDKClientIsRefusedWithoutAValidToken(t *testing.T) {
	s := startStack(t, stackOpts{})
	for _, tc := range []struct{ mode, path string }{{"streamable", "/mcp"}, {"sse", "/sse"}} {
		for name, tok := range map[string]string{"none": "", "forged": signedWith(t, "another-secret-another-secret-0123456789", "x")} {
			t.Run(tc.mode+"/"+name, func(t *testing.T) {
				if _, err := runTSClient(t, s.URL+tc.path, tc.mode, tok, false); err == nil {
					t.Fatal("TypeScript client connected without a valid token")
				}
			})
		}
	}
}

func sorted(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}
