package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// issueResult is one latency series of minting tokens.
type issueResult struct {
	name     string
	via      string
	callers  int
	n        int
	wall     time.Duration
	p50, p99 time.Duration
	p90, max time.Duration
	// serverCPU is the server process's CPU time over the series (only
	// for series against the binary; zero in-process).
	serverCPU time.Duration
}

// serverCPUPerMint is the server's CPU time per mint, zero when unknown.
func (r issueResult) serverCPUPerMint() time.Duration {
	if r.n == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(r.n)
}

func newIssueResult(name, via string, callers int, wall time.Duration, lats []time.Duration) issueResult {
	slices.Sort(lats)
	r := issueResult{name: name, via: via, callers: callers, n: len(lats), wall: wall,
		p50: pct(lats, 50), p90: pct(lats, 90), p99: pct(lats, 99)}
	if len(lats) > 0 {
		r.max = lats[len(lats)-1]
	}
	return r
}

func (r issueResult) throughput() float64 { return float64(r.n) / r.wall.Seconds() }

func benchAdmin() *auth.Claims {
	c := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	c.Subject, c.ID = "bench-admin", "bench"
	return c
}

// mintSeries calls issue n times from callers goroutines and records the
// latency of each call.
func mintSeries(ctx context.Context, n, callers int, issue func(ctx context.Context, i int) error) (time.Duration, []time.Duration, error) {
	lats := make([]time.Duration, n)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += callers {
				if ctx.Err() != nil {
					errs[c] = ctx.Err()
					return
				}
				t0 := time.Now()
				if err := issue(ctx, i); err != nil {
					errs[c] = err
					return
				}
				lats[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, nil, err
		}
	}
	return wall, lats, nil
}

// issueInProcess mints through the auth.Issuer that mcpauth.New builds on
// the SQLite registry (its recorder) (WAL, synchronous=FULL: each mint is a durable commit),
// sequentially and with callers concurrent callers. The sequential
// series' tokens are then revoked, so the registry holds n revoked jtis
// for the servers started on it later.
func issueInProcess(ctx context.Context, dbPath string, n, callers int) ([]issueResult, error) {
	reg, err := registry.OpenSQLite(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	srv, err := issueServer(ctx, reg)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	iss := srv.Issuer
	admin := benchAdmin()
	mint := func(client string) func(ctx context.Context, i int) error {
		return func(ctx context.Context, _ int) error {
			_, err := iss.Issue(ctx, auth.IssueRequest{ClientID: client, Expiry: auth.Expiry{Duration: 24 * time.Hour}, Scopes: []string{"tools:call"}, Caller: admin})
			return err
		}
	}
	// A few unmeasured mints warm the connection pool and the page cache.
	if _, _, err := mintSeries(ctx, 20, 1, mint("bench-warmup")); err != nil {
		return nil, err
	}
	var out []issueResult
	wall, lats, err := mintSeries(ctx, n, 1, mint("bench-seq"))
	if err != nil {
		return nil, err
	}
	out = append(out, newIssueResult("auth.Issuer + SQLite, sequential", "in-process", 1, wall, lats))
	wall, lats, err = mintSeries(ctx, n, callers, mint("bench-conc"))
	if err != nil {
		return nil, err
	}
	out = append(out, newIssueResult(fmt.Sprintf("auth.Issuer + SQLite, %d concurrent callers", callers), "in-process", callers, wall, lats))
	revoked, err := reg.RevokeClient(ctx, "bench-seq", "bench", "benchmark revocation set", time.Now())
	if err != nil {
		return nil, err
	}
	if len(revoked) != n {
		return nil, fmt.Errorf("revoked %d tokens, want %d", len(revoked), n)
	}
	return out, nil
}

// seedRevoked records and revokes n tokens without measuring (used when
// the issue_token test is skipped).
func seedRevoked(ctx context.Context, dbPath string, n int) error {
	_, err := issueInProcess(ctx, dbPath, n, 1)
	return err
}

// issueViaTool mints through tools/call issue_token on a running mcpauth
// (Streamable HTTP session, admin token): the tool's validation, the
// issuer, the durable write, the result with its client config, and the
// transport.
func issueViaTool(ctx context.Context, env *serverEnv, token string, n, callers int) ([]issueResult, error) {
	srv, err := startMcpauth(ctx, env, "mcpauth-issue", false, "")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	hc := newHTTPClient(callers*2 + 4)
	defer hc.CloseIdleConnections()
	clients := make([]*streamableClient, callers)
	for i := range clients {
		c, err := openStreamable(ctx, hc, srv.url, token)
		if err != nil {
			return nil, err
		}
		defer c.close()
		clients[i] = c
	}
	args := `{"client_id":"bench-tool-mint","expires_in":"1h","scopes":["tools:call"]}`
	series := func(k int) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			c := clients[i%k]
			body, err := c.call(ctx, "issue_token", args)
			if err != nil {
				return err
			}
			if !strings.Contains(string(body), `"jti"`) {
				return fmt.Errorf("issue_token returned no jti: %.300s", body)
			}
			return nil
		}
	}
	if _, _, err := mintSeries(ctx, 20, 1, series(1)); err != nil {
		return nil, err
	}
	var out []issueResult
	cpu0 := srv.cpuTime()
	wall, lats, err := mintSeries(ctx, n, 1, series(1))
	if err != nil {
		return nil, err
	}
	seq := newIssueResult("tools/call issue_token, sequential", "Streamable HTTP", 1, wall, lats)
	cpu1 := srv.cpuTime()
	seq.serverCPU = cpu1 - cpu0
	out = append(out, seq)
	wall, lats, err = mintSeries(ctx, n, callers, series(callers))
	if err != nil {
		return nil, err
	}
	conc := newIssueResult(fmt.Sprintf("tools/call issue_token, %d concurrent callers", callers), "Streamable HTTP", callers, wall, lats)
	conc.serverCPU = srv.cpuTime() - cpu1
	out = append(out, conc)
	return out, nil
}

// issueServer builds the server on reg with mcpauth.New, as the binary
// does; the in-process series mint through its Issuer.
func issueServer(ctx context.Context, reg registry.Store) (*mcpauth.Server, error) {
	return mcpauth.New(ctx, mcpauth.Config{Secret: []byte(strings.Repeat("s", 32) + "bench-only"), PublicURL: "http://127.0.0.1", Registry: reg, Version: "bench"})
}
