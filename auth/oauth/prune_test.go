package oauth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

type noMinter struct{}

func (noMinter) Issue(context.Context, auth.IssueRequest) (auth.IssuedToken, error) {
	return auth.IssuedToken{}, nil
}

// stateBackends open an empty registry on each backend, with a plain SQL
// handle on the same database to see rows the store no longer returns.
var stateBackends = []struct {
	name string
	open func(t *testing.T) (registry.Store, *sql.DB)
}{
	{"sqlite", func(t *testing.T) (registry.Store, *sql.DB) {
		path := filepath.Join(t.TempDir(), "reg.db")
		st, err := registry.OpenSQLite(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, openSQL(t, "sqlite", path)
	}},
	{"postgres", func(t *testing.T) (registry.Store, *sql.DB) {
		base := os.Getenv("MCPAUTH_TEST_POSTGRES_URL")
		if base == "" {
			base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		admin := openSQL(t, "pgx", base)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := admin.PingContext(ctx); err != nil {
			if os.Getenv("MCPAUTH_REQUIRE_POSTGRES") != "" {
				t.Fatalf("PostgreSQL required (MCPAUTH_REQUIRE_POSTGRES) but not reachable: %v", err)
			}
			t.Skipf("PostgreSQL not reachable (set MCPAUTH_TEST_POSTGRES_URL): %v", err)
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "mcpauth_oauth_" + hex.EncodeToString(b[:])
		if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
		u, _ := url.Parse(base)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		st, err := registry.Open(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, openSQL(t, "pgx", u.String())
	}},
}

func openSQL(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPrunerDeletesExpiredStateOnBothBackends: the background loop the
// server's owner starts deletes expired OAuth state (pending requests,
// codes, enrollments…) every interval and keeps live state.
func TestPrunerDeletesExpiredStateOnBothBackends(t *testing.T) {
	for _, b := range stateBackends {
		t.Run(b.name, func(t *testing.T) {
			store, raw := b.open(t)
			var now atomic.Int64
			now.Store(time.Now().Unix())
			s, err := New(Config{Issuer: "https://as.example", Resources: []string{"https://as.example/mcp"}, Store: store, Minter: noMinter{},
				Now: func() time.Time { return time.Unix(now.Load(), 0) }})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			t0 := time.Unix(now.Load(), 0)
			for i, exp := range []time.Duration{time.Minute, 2 * time.Minute, time.Hour} {
				if err := store.PutState(ctx, registry.State{Kind: kindRequest, Key: "k" + string(rune('0'+i)), Value: []byte("{}"), ExpiresAt: t0.Add(exp)}); err != nil {
					t.Fatal(err)
				}
			}
			rows := func() int {
				var n int
				if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_state`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			loop, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); s.RunPruner(loop, 10*time.Millisecond) }()
			now.Store(t0.Add(5 * time.Minute).Unix()) // two of three have expired
			deadline := time.Now().Add(5 * time.Second)
			for rows() != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("%d rows left after the pruner ran, want the 1 live one", rows())
				}
				time.Sleep(10 * time.Millisecond)
			}
			stop()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the pruner did not stop with its context")
			}
		})
	}
}
