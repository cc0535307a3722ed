package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

const browserHint = "apt-get install -y chromium && npm ci --prefix transport/testdata/browser"

// requireBrowser returns node and the browser script's directory, skipping
// when node, Debian's Chromium or playwright-core is absent, except where
// MCPAUTH_REQUIRE_BROWSER is set (then the absence fails the test).
func requireBrowser(t *testing.T) (node, dir string) {
	t.Helper()
	dir, _ = filepath.Abs(filepath.Join("testdata", "browser"))
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(chromiumPath)
	}
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json"))
	}
	if err != nil {
		if os.Getenv("MCPAUTH_REQUIRE_BROWSER") != "" {
			t.Fatalf("browser test unavailable (%v); run: %s", err, browserHint)
		}
		t.Skipf("browser test unavailable (%v); run: %s", err, browserHint)
	}
	return node, dir
}

// TestConsentPageInARealBrowser signs a client in the way a person does:
// Chromium loads the consent page, the enrollment code is typed in, Approve
// is pressed, and the browser follows the redirect back to the client
// (which the CSP's form-action must allow). The code it carries is then
// exchanged for a token.
func TestConsentPageInARealBrowser(t *testing.T) {
	node, dir := requireBrowser(t)
	s := startStack(t, stackOpts{oauth: true})
	c := newOAuthClient(t, s)
	code := enroll(t, s, "browser-user", "tools:call")
	shot := filepath.Join(t.TempDir(), "consent.png")

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "consent.mjs"), c.authorizeURL(nil), code, shot)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			t.Fatalf("consent.mjs timed out: %s", stderr.String())
		}
		t.Fatalf("consent.mjs: %v\nstderr: %s", err, stderr.String())
	}
	t.Logf("browser run took %s", time.Since(start).Round(time.Millisecond))

	var out struct {
		Redirect string `json:"redirect"`
		Title    string `json:"title"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("consent.mjs output %q: %v", stdout.String(), err)
	}
	if out.Title != "Allow Test Assistant to connect" {
		t.Errorf("page title = %q", out.Title)
	}
	loc, err := url.Parse(out.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if loc.Scheme+"://"+loc.Host+loc.Path != c.redirect || q.Get("code") == "" || q.Get("state") != "xyz-state" || q.Get("iss") != s.URL {
		t.Fatalf("redirect = %s", out.Redirect)
	}

	status, tok := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}, "resource": {s.URL + "/mcp"}})
	if status != 200 || tok["token_type"] != "Bearer" {
		t.Fatalf("token: %d %v", status, tok)
	}
	access, _ := tok["access_token"].(string)
	claims, err := s.Verifier.Verify(access)
	if err != nil || claims.Subject != "browser-user" || claims.Scope.String() != "tools:call" {
		t.Fatalf("access token claims %+v, %v", claims, err)
	}

	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) <= 10*1024 {
		t.Fatalf("screenshot: %d bytes, PNG signature %v", len(png), bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")))
	}
	if os.Getenv("MCPAUTH_UPDATE_SCREENSHOT") != "" {
		dst := filepath.Join("..", "docs", "consent.png")
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", dst, len(png))
	}
}
