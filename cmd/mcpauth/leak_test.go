package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// TestLogsNeverContainTokensSecretsOrKeys runs a full session (issue over
// every path, use, fail, revoke, decode) and checks every byte the server
// and the CLI logged: no token, secret or API key, nor a recognisable part
// of one, appears; and the audit records are there.
func TestLogsNeverContainTokensSecretsOrKeys(t *testing.T) {
	const apiKey = "leak-test-api-key-0123456789abcdefghijklmnop"
	e := testEnv(t, "API_KEY="+apiKey, "MCP_REVOCATION_RESYNC=200ms", "MCP_LOG_LEVEL=debug")
	var serverLog testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--env-file=", "serve", "--addr", "127.0.0.1:0")
	cmd.Env = e
	pr, pw, _ := os.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"`)
		for sc.Scan() {
			serverLog.Write(append(sc.Bytes(), '\n'))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(20 * time.Second):
		t.Fatalf("no address:\n%s", serverLog.String())
	}

	var secrets []string // everything that must never be logged
	secrets = append(secrets, testSecret, apiKey)
	var cliLogs strings.Builder

	// Issue through the CLI, the tool and the token API.
	cliIssue := func(args ...string) issuedJSON {
		out, errOut, code := run(t, e, "", append([]string{"token", "issue", "--json"}, args...)...)
		cliLogs.WriteString(errOut)
		if code != 0 {
			t.Fatalf("token issue: %s", errOut)
		}
		var j issuedJSON
		_ = json.Unmarshal([]byte(out), &j)
		secrets = append(secrets, j.Token)
		return j
	}
	admin := cliIssue("leak-admin", "1h", "--scope", "admin")
	c := mcpClient(t, addr, admin.Token)
	res := testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": "leak-tool", "expires_in": "1h"})
	toolTok, _ := structuredField(t, res, "token").(string)
	secrets = append(secrets, toolTok)
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/mcp/auth/token", strings.NewReader(`{"client_id":"leak-api"}`))
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Data struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	secrets = append(secrets, api.Data.AccessToken)

	// Use, fail in every way, decode, revoke.
	postMCP(t, addr, toolTok, initJSON)
	forged := toolTok[:len(toolTok)-4] + "AAAA"
	secrets = append(secrets, forged)
	postMCP(t, addr, forged, initJSON)
	postMCP(t, addr, "not-a-token-at-all-but-secret-looking-0123456789", initJSON)
	secrets = append(secrets, "not-a-token-at-all-but-secret-looking-0123456789")
	bad, _ := http.NewRequest("POST", "http://"+addr+"/api/auth/token", strings.NewReader(`{"client_id":"x"}`))
	bad.Header.Set("X-Admin-Key", apiKey+"-wrong")
	bad.Header.Set("Content-Type", "application/json")
	if r, err := http.DefaultClient.Do(bad); err == nil {
		r.Body.Close()
	}
	secrets = append(secrets, apiKey+"-wrong")
	testutil.CallTool(t, c, "decode_token", map[string]any{"token": toolTok})
	testutil.CallTool(t, c, "revoke_token", map[string]any{"token": toolTok, "reason": "leak test"})
	postMCP(t, addr, toolTok, initJSON) // refused as revoked
	_, errOut, _ := run(t, e, api.Data.AccessToken, "token", "decode")
	cliLogs.WriteString(errOut)
	_, errOut, _ = run(t, e, "", "token", "revoke", "--client", "leak-api", "--reason", "done")
	cliLogs.WriteString(errOut)
	// The server's last event is its refusal of the revoked token: wait
	// until that audit record has come through the pipe.
	waitUntil(t, "the audit record refusing the revoked token", func() bool {
		for _, line := range strings.Split(serverLog.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["event"] == "auth.failed" && rec["reason"] == "Token has been revoked" {
				return true
			}
		}
		return false
	})

	logs := serverLog.String() + cliLogs.String()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		// The whole value, and every 16-character window of it (a
		// signature, a payload, a key fragment), must be absent.
		for i := 0; i+16 <= len(s); i += 4 {
			if part := s[i : i+16]; strings.Contains(logs, part) && !boring(part) {
				t.Fatalf("logs contain part of a token, secret or key: %q", part)
			}
		}
	}

	// Audit records: structured JSON with event, remote and the ids.
	events := map[string]int{}
	for _, line := range strings.Split(serverLog.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "audit" {
			continue
		}
		ev, _ := rec["event"].(string)
		events[ev]++
		if rec["remote"] == nil {
			t.Errorf("audit record without remote: %s", line)
		}
		switch ev {
		case "token.issued", "token.revoked":
			if rec["jti"] == nil || rec["client_id"] == nil {
				t.Errorf("audit record without jti/client_id: %s", line)
			}
		case "auth.failed":
			if rec["reason"] == nil {
				t.Errorf("auth.failed without reason: %s", line)
			}
		}
	}
	for _, ev := range []string{"token.issued", "token.revoked", "auth.failed"} {
		if events[ev] == 0 {
			t.Errorf("no %s audit record in:\n%s", ev, serverLog.String())
		}
	}
	if events["token.issued"] < 2 || events["auth.failed"] < 3 {
		t.Errorf("audit counts %v: want >= 2 issued (tool, API) and >= 3 failures", events)
	}
}

// boring reports whether a 16-character window is not a fragment worth
// guarding: JWT headers all start with the same base64 of {"alg":"HS256".
func boring(part string) bool {
	return strings.HasPrefix("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", part) || strings.Count(part, part[:1]) == len(part)
}

// Behind a reverse proxy named in MCP_TRUSTED_PROXIES, audit records name
// the client from X-Forwarded-For; without it they name the TCP peer and
// the header is ignored.
func TestAuditNamesTheClientBehindATrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name, proxies, want string
	}{
		{"trusted", "MCP_TRUSTED_PROXIES=127.0.0.1/32,::1", "198.51.100.7"},
		{"not trusted", "MCP_TRUSTED_PROXIES=", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _, logs := startServerLogged(t, testEnv(t, tc.proxies))
			req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(initJSON))
			req.Header.Set("Authorization", "Bearer not.a.token")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", "203.0.113.66, 198.51.100.7")
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				for _, line := range strings.Split(logs.String(), "\n") {
					var rec map[string]any
					if json.Unmarshal([]byte(line), &rec) == nil && rec["event"] == "auth.failed" {
						if rec["remote"] != tc.want {
							t.Fatalf("auth.failed remote = %v, want %s: %s", rec["remote"], tc.want, line)
						}
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no auth.failed audit record:\n%s", logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
