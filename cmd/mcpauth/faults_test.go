package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// cutProxy is a TCP proxy on loopback between one replica and PostgreSQL
// that a test can cut (every connection closed, new ones refused) and
// restore: a database outage as that replica sees it, while the other
// replica keeps its own connections.
type cutProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cut closes every proxied connection and refuses new ones until restore.
func (p *cutProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) restore() { p.down.Store(false) }

// through rewrites a postgres:// URL to reach its server through p.
func (p *cutProxy) through(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// Rule: a replica cut off from PostgreSQL keeps serving verified requests
// from memory, refuses mints with a clear error (never returning a token
// it could not record), and once the database is back it enforces every
// revocation made meanwhile and mints again.
func TestReplicaCutOffFromPostgresKeepsServingAndCatchesUpOnRevocations(t *testing.T) {
	db := postgresDB(t)
	u, _ := url.Parse(db)
	proxy := startCutProxy(t, u.Host)
	e := testEnv(t, "MCP_DATABASE_URL="+db, "MCP_REVOCATION_RESYNC=300ms")
	// Every caller here shares one loopback address: the failures the
	// load meets once its token is revoked must not throttle the checks.
	eB := testEnv(t, "MCP_DATABASE_URL="+proxy.through(t, db), "MCP_REVOCATION_RESYNC=300ms", "MCP_AUTH_FAIL_BURST=1000000",
		"MCP_MAX_SESSIONS_PER_CLIENT=100000") // every check opens a session
	a := startServer(t, e)
	b, _, bLogs := startServerLogged(t, eB)
	admin := issue(t, e, "ops", "1h", "--scope", "admin")
	user := issue(t, e, "field-client", "1h")
	adminB := mcpClient(t, b, admin.Token)
	before := listCount(t, e)

	// Load on B for the whole test: 8 callers minting and 8 making
	// verified calls, before, during and after the outage.
	load := startLoad(t, b, admin.Token, user.Token)

	proxy.cut()
	if r := postMCP(t, b, user.Token, initJSON); r.StatusCode != http.StatusOK {
		t.Fatalf("B refused a valid token while cut off from the database: %d", r.StatusCode)
	}
	res := testutil.CallTool(t, adminB, "issue_token", map[string]any{"client_id": "during-outage", "expires_in": "1h"})
	if !res.IsError || strings.Contains(testutil.Text(res), "eyJ") || !strings.Contains(testutil.Text(res), "Cannot issue token") {
		t.Fatalf("a mint during the outage: %+v", res)
	}

	// Revoked through the other replica while B is cut off.
	if res := testutil.CallTool(t, mcpClient(t, a, admin.Token), "revoke_token", map[string]any{"jti": user.JTI, "reason": "outage test"}); res.IsError {
		t.Fatalf("revoke_token on A: %+v", res)
	}
	proxy.restore()
	restored := time.Now()
	for postMCP(t, b, user.Token, initJSON).StatusCode != http.StatusUnauthorized {
		if time.Since(restored) > 15*time.Second {
			logs := bLogs.String()
			t.Fatalf("B still accepts a token revoked while it was cut off, 15s after the database came back (last answer %d); B's log ends:\n%s",
				postMCPQuiet(b, user.Token, initJSON), logs[max(0, len(logs)-3000):])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("B enforced the revocation %v after the database came back", time.Since(restored))

	// And mints again, recorded.
	res = testutil.CallTool(t, adminB, "issue_token", map[string]any{"client_id": "after-outage", "expires_in": "1h"})
	if res.IsError {
		t.Fatalf("a mint after the outage: %+v", res)
	}
	minted, refused, verified := load.stop()
	if refused == 0 || len(minted) == 0 || verified == 0 {
		t.Fatalf("the load saw %d mints, %d refusals, %d verified calls: it did not span the outage", len(minted), refused, verified)
	}
	// Every token a caller received under load is recorded.
	recorded := recordedJTIs(t, e, "under-load")
	for _, jti := range minted {
		if !recorded[jti] {
			t.Fatalf("token %s was handed to a caller during the outage test but is not recorded", jti)
		}
	}
	// A mint whose answer the outage swallowed was refused to its caller;
	// if its row was committed anyway, B withdraws it once it reconnects.
	want := before + 1 + len(minted)
	waitUntil(t, "refused mints to be withdrawn", func() bool { return listCount(t, e) == want })
	t.Logf("under load: %d mints delivered and recorded, %d refused during the outage, %d verified calls", len(minted), refused, verified)
}

// load keeps minting and verified calls going against one server.
type load struct {
	stopCh   chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	minted   []string
	refused  int
	verified atomic.Int64
}

func startLoad(t *testing.T, addr, adminToken, userToken string) *load {
	t.Helper()
	l := &load{stopCh: make(chan struct{})}
	for range 8 {
		c := mcpClient(t, addr, adminToken)
		l.wg.Add(2)
		go func() {
			defer l.wg.Done()
			for l.running() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				req := mcp.CallToolRequest{}
				req.Params.Name = "issue_token"
				req.Params.Arguments = map[string]any{"client_id": "under-load", "expires_in": "1h"}
				res, err := c.CallTool(ctx, req)
				cancel()
				l.mu.Lock()
				switch {
				case err != nil:
				case res.IsError:
					l.refused++
				default:
					b, _ := json.Marshal(res.StructuredContent)
					var out struct {
						JTI string `json:"jti"`
					}
					_ = json.Unmarshal(b, &out)
					l.minted = append(l.minted, out.JTI)
				}
				l.mu.Unlock()
			}
		}()
		go func() {
			defer l.wg.Done()
			for l.running() {
				if r := postMCPQuiet(addr, userToken, initJSON); r == http.StatusOK {
					l.verified.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) running() bool {
	select {
	case <-l.stopCh:
		return false
	default:
		return true
	}
}

func (l *load) stop() (minted []string, refused int, verified int64) {
	close(l.stopCh)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.minted, l.refused, l.verified.Load()
}

// postMCPQuiet posts a JSON-RPC body and returns the status (0 on error).
func postMCPQuiet(addr, token, body string) int {
	req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Rule: while another process holds the SQLite registry's write lock, a
// mint waits at most MCP_REGISTRY_BUSY_TIMEOUT and is then refused as
// busy: 503 registry_busy with Retry-After on the token API, a tool error
// in MCP, and nothing recorded.
func TestLockedSQLiteRegistryRefusesMintsAsBusyAndRecordsNothing(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "locked.db")
	apiKey := strings.Repeat("k", 40)
	e := testEnv(t, "MCP_DATABASE_URL="+dbPath, "MCP_REGISTRY_BUSY_TIMEOUT=200ms", "API_KEY="+apiKey)
	admin := issue(t, e, "ops", "1h", "--scope", "admin")
	addr := startServer(t, e)
	c := mcpClient(t, addr, admin.Token)
	before := listCount(t, e)

	locker, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	conn, err := locker.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/mcp/auth/token", strings.NewReader(`{"client_id":"while-locked"}`))
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "registry_busy") || strings.Contains(string(body), "eyJ") {
		t.Fatalf("token API while locked: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	res := testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": "while-locked-too"})
	if !res.IsError || !strings.Contains(testutil.Text(res), "registry busy") {
		t.Fatalf("issue_token while locked: %+v", res)
	}

	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := listCount(t, e); n != before {
		t.Fatalf("registry went from %d to %d tokens: a refused mint was recorded", before, n)
	}
	if res := testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": "after-lock"}); res.IsError {
		t.Fatalf("issue_token after the lock: %+v", res)
	}
}

// Rule: a replica whose revocation set has not matched the registry for
// longer than MCP_REVOCATION_MAX_STALENESS refuses every token with 503
// and Retry-After (it cannot tell revoked ones apart) and reports
// "degraded" in /health; losing and regaining the registry are logged;
// once it resyncs it serves again with every revocation made meanwhile.
// With MCP_REVOCATION_FAIL_OPEN it keeps serving instead.
func TestStaleRevocationSetFailsClosedWithinItsBound(t *testing.T) {
	db := postgresDB(t)
	u, _ := url.Parse(db)
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{false: "fail closed", true: "fail open"}[failOpen]
		t.Run(name, func(t *testing.T) {
			proxy := startCutProxy(t, u.Host)
			e := testEnv(t, "MCP_DATABASE_URL="+db, "MCP_REVOCATION_RESYNC=200ms")
			eB := testEnv(t, "MCP_DATABASE_URL="+proxy.through(t, db), "MCP_REVOCATION_RESYNC=200ms",
				"MCP_REVOCATION_MAX_STALENESS=1s", "MCP_REVOCATION_FAIL_OPEN="+map[bool]string{false: "false", true: "true"}[failOpen])
			a := startServer(t, e)
			b, _, logs := startServerLogged(t, eB)
			admin := issue(t, e, "ops", "1h", "--scope", "admin")
			user := issue(t, e, "field-client", "1h")
			other := issue(t, e, "other-client", "1h")

			proxy.cut()
			cut := time.Now()
			if failOpen {
				waitUntil(t, "the lost registry in the log", func() bool { return strings.Contains(logs.String(), "revocation.sync_lost") })
				waitUntil(t, "the bound to pass", func() bool { return time.Since(cut) > 1500*time.Millisecond })
				if r := postMCP(t, b, user.Token, initJSON); r.StatusCode != http.StatusOK {
					t.Fatalf("fail-open replica refused a valid token: %d", r.StatusCode)
				}
			} else {
				var r *http.Response
				waitUntil(t, "B to refuse tokens", func() bool {
					r = postMCP(t, b, user.Token, initJSON)
					return r.StatusCode == http.StatusServiceUnavailable
				})
				if since := time.Since(cut); since > 5*time.Second {
					t.Errorf("B refused only %v after the cut (bound 1s)", since)
				}
				if r.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				hr, err := http.Get("http://" + b + "/health")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(hr.Body)
				hr.Body.Close()
				if hr.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"degraded"`) || !strings.Contains(string(body), `"stale":true`) {
					t.Fatalf("/health of a stale replica: %d %s", hr.StatusCode, body)
				}
			}
			if res := testutil.CallTool(t, mcpClient(t, a, admin.Token), "revoke_token", map[string]any{"jti": user.JTI, "reason": "stale test"}); res.IsError {
				t.Fatalf("revoke_token on A: %+v", res)
			}
			proxy.restore()
			if failOpen {
				// Failing open, B keeps the revoked token until it resyncs.
				waitUntil(t, "B to enforce the revocation", func() bool { return postMCP(t, b, user.Token, initJSON).StatusCode == http.StatusUnauthorized })
			} else {
				// Failing closed, B serves nothing before it has resynced,
				// so the first token it accepts again comes after the
				// revocation is in force.
				waitUntil(t, "B to serve again", func() bool { return postMCP(t, b, other.Token, initJSON).StatusCode == http.StatusOK })
				if r := postMCP(t, b, user.Token, initJSON); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("B serves again but accepts a token revoked during the cut: %d", r.StatusCode)
				}
			}
			if r := postMCP(t, b, other.Token, initJSON); r.StatusCode != http.StatusOK {
				t.Fatalf("B after the cut: %d for a valid token", r.StatusCode)
			}
			waitUntil(t, "the regained registry in the log", func() bool { return strings.Contains(logs.String(), "revocation.sync_restored") })
		})
	}
}
