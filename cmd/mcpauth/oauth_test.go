package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// TestOAuthSignInWithACLIEnrollmentCodeIsOneSystem signs a native client
// in against the real binary with an enrollment code made by the CLI,
// then lists and revokes its token with the same CLI commands as any
// other token.
func TestOAuthSignInWithACLIEnrollmentCodeIsOneSystem(t *testing.T) {
	e := testEnv(t)
	addr := startServer(t, e)
	base := "http://" + addr
	out, errOut, code := run(t, e, "", "enrollment", "create", "claude-ai", "--scope", "tools:call", "--json")
	if code != 0 {
		t.Fatalf("enrollment create: %s", errOut)
	}
	var enr struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal([]byte(out), &enr); err != nil || len(enr.Code) != 11 {
		t.Fatalf("enrollment JSON %q: %v", out, err)
	}

	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path, ctype, body string) *http.Response {
		r, err := hc.Post(base+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Body.Close() })
		return r
	}
	redirect := "http://127.0.0.1:33418/callback"
	r := post("/register", "application/json", `{"client_name":"Desktop App","application_type":"native","redirect_uris":["`+redirect+`"]}`)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&reg)
	if r.StatusCode != 201 || reg.ClientID == "" {
		t.Fatalf("register: %d", r.StatusCode)
	}
	verifier := "a-long-enough-pkce-verifier-0123456789-abcdefghijkl"
	h := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {redirect}, "state": {"s1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(h[:])}, "code_challenge_method": {"S256"}, "resource": {base + "/mcp"}}
	page, err := hc.Get(base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	form := url.Values{"enrollment_code": {strings.ToLower(enr.Code)}, "action": {"approve"}} // typed in lower case
	for _, m := range regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`).FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], m[2])
	}
	r = post("/authorize", "application/x-www-form-urlencoded", form.Encode())
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != 302 || loc.Query().Get("code") == "" {
		t.Fatalf("consent: %d %s", r.StatusCode, loc)
	}
	r = post("/token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"client_id": {reg.ClientID}, "redirect_uri": {redirect}, "code_verifier": {verifier}}.Encode())
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&tok)
	if r.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token: %d", r.StatusCode)
	}
	if r := postMCP(t, addr, tok.AccessToken, initJSON); r.StatusCode != 200 {
		t.Fatalf("MCP with the OAuth token: %d", r.StatusCode)
	}
	lst, _, _ := run(t, e, "", "token", "list", "--client", "claude-ai", "--json")
	if !strings.Contains(lst, `"client_id": "claude-ai"`) || !strings.Contains(lst, `"issued_by": "oauth:local-admin"`) {
		t.Fatalf("token list does not show the OAuth token:\n%s", lst)
	}
	if _, errOut, code := run(t, e, "", "token", "revoke", "--client", "claude-ai", "--reason", "test"); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	deadline := time.Now().Add(5 * time.Second)
	for postMCP(t, addr, tok.AccessToken, initJSON).StatusCode != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the OAuth token still works after token revoke --client")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMetricsCountEveryPathAndNeedAnAdmin(t *testing.T) {
	e := testEnv(t)
	addr, _, logs := startServerLogged(t, e)
	admin := issue(t, e, "metrics-admin", "1h", "--scope", "admin")
	user := issue(t, e, "metrics-user", "1h")
	c := mcpClient(t, addr, admin.Token)
	testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": "via-tool", "expires_in": "1h"})
	postMCP(t, addr, "forged.token.value", initJSON)
	// A non-admin calling an admin tool gets the scope challenge and an
	// auth.forbidden audit record.
	if r := postMCP(t, addr, user.Token, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"escalated"}}}`); r.StatusCode != http.StatusForbidden {
		t.Fatalf("non-admin issue_token: %d, want 403", r.StatusCode)
	}
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if status, _ := get(""); status != http.StatusUnauthorized {
		t.Fatalf("metrics without a token: %d", status)
	}
	if status, _ := get(user.Token); status != http.StatusForbidden {
		t.Fatalf("metrics with a non-admin token: %d", status)
	}
	status, body := get(admin.Token)
	for _, want := range []string{`mcpauth_events_total{event="token.issued",via="issue_token"} 1`, `mcpauth_events_total{event="auth.failed",via=""}`, "mcpauth_open_sessions",
		`mcpauth_events_total{event="auth.forbidden",via="tools/call"} 1`, `mcpauth_events_total{event="auth.forbidden",via="metrics"} 1`} {
		if status != 200 || !strings.Contains(body, want) {
			t.Fatalf("metrics lack %q (status %d)", want, status)
		}
	}
	if strings.Contains(body, admin.Token[:20]) || strings.Contains(body, "metrics-user") {
		t.Fatal("metrics expose a token or a client id")
	}
	var forbidden []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["event"] == "auth.forbidden" {
			forbidden = append(forbidden, rec)
		}
	}
	if len(forbidden) != 2 {
		t.Fatalf("%d auth.forbidden records, want 2 (tools/call, metrics):\n%s", len(forbidden), logs.String())
	}
	for _, rec := range forbidden {
		if rec["client_id"] != "metrics-user" || rec["jti"] != user.JTI || rec["required_scope"] != "admin" || rec["remote"] != "127.0.0.1" {
			t.Errorf("auth.forbidden record %v", rec)
		}
		if rec["via"] == "tools/call" && rec["tool"] != "issue_token" {
			t.Errorf("auth.forbidden record for tools/call lacks the tool: %v", rec)
		}
	}
}
