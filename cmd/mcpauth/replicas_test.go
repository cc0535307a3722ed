package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" database/sql driver

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// postgresDB returns a URL for a fresh, private schema of the test
// PostgreSQL database (dropped at test end). Without PostgreSQL the test
// is skipped, or fails where MCPAUTH_REQUIRE_POSTGRES is set (CI).
func postgresDB(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MCPAUTH_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("MCPAUTH_REQUIRE_POSTGRES") != "" {
			t.Fatalf("PostgreSQL required but unreachable: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "mcpauth_cmd_" + hex.EncodeToString(b[:])
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		db.Close()
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func mcpClient(t *testing.T, addr, token string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient("http://"+addr+"/mcp", transportHeaders(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRevocationOnOneReplicaIsEnforcedByAnotherWithinOneSecond(t *testing.T) {
	db := postgresDB(t)
	// A long resync: only LISTEN/NOTIFY can deliver the revocation in time.
	e := testEnv(t, "MCP_DATABASE_URL="+db, "MCP_REVOCATION_RESYNC=1m")
	a := startServer(t, e)
	b := startServer(t, e)
	admin := issue(t, e, "ops", "1h", "--scope", "admin")
	user := issue(t, e, "roaming-client", "1h")
	if r := postMCP(t, b, user.Token, initJSON); r.StatusCode != 200 {
		t.Fatalf("replica B before revocation: %d", r.StatusCode)
	}

	c := mcpClient(t, a, admin.Token)
	res := testutil.CallTool(t, c, "revoke_token", map[string]any{"jti": user.JTI, "reason": "replica test"})
	if res.IsError {
		t.Fatalf("revoke_token on A: %+v", res.Content)
	}
	revoked := time.Now()
	for {
		r := postMCP(t, b, user.Token, initJSON)
		if r.StatusCode == http.StatusUnauthorized {
			if !strings.Contains(r.Header.Get("WWW-Authenticate"), "revoked") {
				t.Fatalf("B refused for another reason: %s", r.Header.Get("WWW-Authenticate"))
			}
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("replica B still accepts the token %v after A revoked it", time.Since(revoked))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("replica B refused the revoked token %v after A revoked it", time.Since(revoked))
	// A refuses it too, at once.
	if r := postMCP(t, a, user.Token, initJSON); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replica A: %d", r.StatusCode)
	}
}

func TestSIGKILLDuringConcurrentMintsLosesNoIssuedToken(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "kill.db") },
		"postgres": postgresDB,
	}
	for name, mkDB := range backends {
		t.Run(name, func(t *testing.T) {
			e := testEnv(t, "MCP_DATABASE_URL="+mkDB(t))
			admin := issue(t, e, "minter", "1h", "--scope", "admin")
			addr, proc := startServerProc(t, e)

			const workers = 16
			var (
				mu       sync.Mutex
				received []string
				wg       sync.WaitGroup
			)
			enough := make(chan struct{})
			var once sync.Once
			clients := make([]*client.Client, workers)
			for w := range clients {
				clients[w] = mcpClient(t, addr, admin.Token)
			}
			for _, c := range clients {
				wg.Add(1)
				go func(c *client.Client) {
					defer wg.Done()
					for i := 0; i < 500; i++ { // bounded; the kill ends it sooner
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						req := mcp.CallToolRequest{}
						req.Params.Name = "issue_token"
						req.Params.Arguments = map[string]any{"client_id": "burst", "expires_in": "1h"}
						res, err := c.CallTool(ctx, req)
						cancel()
						if err != nil || res.IsError {
							return // the server is gone
						}
						b, _ := json.Marshal(res.StructuredContent)
						var out struct {
							JTI string `json:"jti"`
						}
						_ = json.Unmarshal(b, &out)
						mu.Lock()
						received = append(received, out.JTI)
						if len(received) >= 200 {
							once.Do(func() { close(enough) })
						}
						mu.Unlock()
					}
				}(c)
			}
			select {
			case <-enough:
			case <-time.After(60 * time.Second):
				t.Fatal("the burst did not reach 200 mints")
			}
			if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = proc.Wait()
			wg.Wait()

			mu.Lock()
			got := append([]string(nil), received...)
			mu.Unlock()
			// Restart on the same registry and check every token a caller
			// received is recorded.
			startServer(t, e)
			recorded := recordedJTIs(t, e, "burst")
			for _, jti := range got {
				if !recorded[jti] {
					t.Fatalf("token %s was handed to a caller but is not in the registry after SIGKILL", jti)
				}
			}
			t.Logf("%d tokens received before SIGKILL, %d recorded; none lost", len(got), len(recorded))
		})
	}
}

// TestOAuthFlowHopsAcrossReplicas runs one sign-in across two server
// processes sharing PostgreSQL: every step lands on the other replica,
// so registrations, pending requests, codes and refresh tokens must live
// in the registry.
func TestOAuthFlowHopsAcrossReplicas(t *testing.T) {
	db := postgresDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	portA := ln.Addr().String()
	ln.Close()
	public := "http://" + portA // what a load balancer would be
	e := testEnv(t, "MCP_DATABASE_URL="+db, "MCP_PUBLIC_URL="+public)
	a := startServer(t, e, "--addr", portA)
	b := startServer(t, e)
	out, errOut, code := run(t, e, "", "enrollment", "create", "roamer", "--scope", "tools:call", "--json")
	if code != 0 {
		t.Fatalf("enrollment: %s", errOut)
	}
	var enr struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal([]byte(out), &enr)

	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(addr, path, ctype, body string) *http.Response {
		r, err := hc.Post("http://"+addr+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Body.Close() })
		return r
	}
	redirect := "http://127.0.0.1:33419/cb"
	r := post(a, "/register", "application/json", `{"client_name":"Roaming App","application_type":"native","redirect_uris":["`+redirect+`"]}`)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&reg)
	verifier := "replica-hopping-pkce-verifier-0123456789abcdefghijklmnop"
	h := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {redirect}, "state": {"s"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(h[:])}, "code_challenge_method": {"S256"}}
	page, err := hc.Get("http://" + b + "/authorize?" + q.Encode()) // registered on A, authorized on B
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 {
		t.Fatalf("authorize on B: %d %s", page.StatusCode, body)
	}
	form := url.Values{"enrollment_code": {enr.Code}, "action": {"approve"}}
	for _, m := range regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`).FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], m[2])
	}
	r = post(a, "/authorize", "application/x-www-form-urlencoded", form.Encode()) // consent on A
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != 302 || loc.Query().Get("code") == "" || loc.Query().Get("iss") != public {
		t.Fatalf("consent on A: %d %s", r.StatusCode, loc)
	}
	r = post(b, "/token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"client_id": {reg.ClientID}, "redirect_uri": {redirect}, "code_verifier": {verifier}}.Encode()) // token on B
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&tok)
	if r.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token on B: %d", r.StatusCode)
	}
	if r := postMCP(t, a, tok.AccessToken, initJSON); r.StatusCode != 200 { // used on A
		t.Fatalf("MCP on A with B's token: %d", r.StatusCode)
	}
	r = post(a, "/token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_id": {reg.ClientID}}.Encode()) // refreshed on A
	if r.StatusCode != 200 {
		t.Fatalf("refresh on A: %d", r.StatusCode)
	}
}

// recordedJTIs is the set of jtis the registry holds for client.
func recordedJTIs(t *testing.T, environ []string, client string) map[string]bool {
	t.Helper()
	out, errOut, code := run(t, environ, "", "token", "list", "--all", "--json", "--client", client)
	if code != 0 {
		t.Fatalf("token list: %s", errOut)
	}
	var rows []struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, r := range rows {
		recorded[r.JTI] = true
	}
	return recorded
}
