package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the registry's driver, to look at its rows
)

// TestServeDeletesExpiredOAuthState: serve runs the OAuth state pruner
// every MCP_OAUTH_PRUNE_INTERVAL; expired rows go, live ones stay.
func TestServeDeletesExpiredOAuthState(t *testing.T) {
	e := testEnv(t, "MCP_OAUTH_PRUNE_INTERVAL=1s")
	if _, errOut, code := run(t, e, "", "token", "list"); code != 0 { // creates the registry
		t.Fatalf("token list: %d %s", code, errOut)
	}
	var path string
	for _, kv := range e {
		if v, ok := strings.CutPrefix(kv, "MCP_DATABASE_URL="); ok {
			path = v
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	now := time.Now().Unix()
	if _, err := db.ExecContext(ctx, `INSERT INTO oauth_state (kind, key, grp, value, expires_at) VALUES
		('oauth.request', 'expired', '', '{}', ?), ('oauth.request', 'live', '', '{}', ?)`, now-60, now+3600); err != nil {
		t.Fatal(err)
	}
	startServer(t, e)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var keys []string
		rows, err := db.QueryContext(ctx, `SELECT key FROM oauth_state ORDER BY key`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			_ = rows.Scan(&k)
			keys = append(keys, k)
		}
		rows.Close()
		if strings.Join(keys, ",") == "live" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows %v after 15s, want only the live one", keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
