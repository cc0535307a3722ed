package registry

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// defaultPostgresURL is the test server when MCPAUTH_TEST_POSTGRES_URL is
// unset.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var postgresProbe struct {
	once sync.Once
	err  error
}

// postgresURL returns the URL of the test PostgreSQL server
// (MCPAUTH_TEST_POSTGRES_URL, default defaultPostgresURL). When the server
// does not answer the test is skipped, or fails when
// MCPAUTH_REQUIRE_POSTGRES is set.
func postgresURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("MCPAUTH_TEST_POSTGRES_URL")
	if raw == "" {
		raw = defaultPostgresURL
	}
	postgresProbe.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", raw)
		if err != nil {
			postgresProbe.err = err
			return
		}
		defer db.Close()
		postgresProbe.err = db.PingContext(ctx)
	})
	if err := postgresProbe.err; err != nil {
		shown := redact(raw, urlSecrets(raw)...)
		if os.Getenv("MCPAUTH_REQUIRE_POSTGRES") != "" {
			t.Fatalf("PostgreSQL required (MCPAUTH_REQUIRE_POSTGRES) but not reachable at %s: %s", shown, redact(err.Error(), urlSecrets(raw)...))
		}
		t.Skipf("PostgreSQL not reachable at %s (set MCPAUTH_TEST_POSTGRES_URL; MCPAUTH_REQUIRE_POSTGRES=1 makes this fatal): %s", shown, redact(err.Error(), urlSecrets(raw)...))
	}
	return raw
}

// withSearchPath returns base with its search_path parameter set.
func withSearchPath(t testing.TB, base, schema string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("MCPAUTH_TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// newPostgresSchema creates an empty schema mcpauth_test_<random>, dropped
// (with everything in it) when the test ends, and returns its name and a
// URL whose search_path selects it.
func newPostgresSchema(t testing.TB) (schema, dbURL string) {
	t.Helper()
	base := postgresURL(t)
	var b [6]byte
	rand.Read(b[:])
	schema = "mcpauth_test_" + hex.EncodeToString(b[:])
	admin := openPostgresSQL(t, base)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// Registered before any store is opened, so it runs after they
		// are closed (cleanups run last-in first-out).
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema, withSearchPath(t, base, schema)
}

// openPostgresSQL opens a plain database/sql handle, closed at cleanup.
func openPostgresSQL(t testing.TB, dbURL string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatalf("open %s: %v", dbURL, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens a store, closed at cleanup.
func openPostgres(t testing.TB, dbURL string) *Postgres {
	t.Helper()
	s, err := OpenPostgres(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitChange waits up to d for a value on ch.
func waitChange(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("no value on Changes() within %v after %s", d, what)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestOpenPostgresCreatesTablesInSearchPathSchema(t *testing.T) {
	schema, dbURL := newPostgresSchema(t)
	s := openPostgres(t, dbURL)
	ctx := context.Background()

	var cur string
	if err := s.db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if cur != schema {
		t.Errorf("current_schema() = %q, want %q: search_path from the URL not applied", cur, schema)
	}
	admin := openPostgresSQL(t, postgresURL(t))
	rows, err := admin.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if got, want := strings.Join(tables, ","), "client_seen,oauth_state,schema_migrations,signing_keys,tokens"; got != want {
		t.Errorf("tables in %s = %s, want %s", schema, got, want)
	}

	var versions []int
	vrows, err := admin.QueryContext(ctx, `SELECT version FROM `+schema+`.schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer vrows.Close()
	for vrows.Next() {
		var v int
		if err := vrows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if len(versions) != len(postgresMigrations) || versions[len(versions)-1] != len(postgresMigrations) {
		t.Errorf("schema_migrations versions = %v, want 1..%d", versions, len(postgresMigrations))
	}
}

func TestOpenReturnsPostgresForPostgresURLs(t *testing.T) {
	_, dbURL := newPostgresSchema(t)
	for _, u := range []string{dbURL, "postgresql://" + strings.TrimPrefix(dbURL, "postgres://")} {
		s, err := Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		if _, ok := s.(*Postgres); !ok {
			t.Errorf("Open(%s) = %T, want *Postgres", u, s)
		}
		s.Close()
	}
}

func TestOpenPostgresRefusesNewerSchemaVersion(t *testing.T) {
	schema, dbURL := newPostgresSchema(t)
	ctx := context.Background()
	s, err := OpenPostgres(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	admin := openPostgresSQL(t, postgresURL(t))
	future := len(postgresMigrations) + 5
	if _, err := admin.ExecContext(ctx, `INSERT INTO `+schema+`.schema_migrations (version) VALUES ($1)`, future); err != nil {
		t.Fatal(err)
	}

	s, err = OpenPostgres(ctx, dbURL)
	if err == nil {
		s.Close()
		t.Fatal("OpenPostgres accepted a database with a newer schema version")
	}
	for _, want := range []string{"newer than this binary supports", fmt.Sprint(future)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	var n, maxV int
	if err := admin.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM `+schema+`.schema_migrations`).Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(postgresMigrations)+1 || maxV != future {
		t.Errorf("schema_migrations after refusal: %d rows, max %d; want untouched (%d rows, max %d)", n, maxV, len(postgresMigrations)+1, future)
	}
}

func TestOpenPostgresExplainsMissingSearchPathSchema(t *testing.T) {
	dbURL := withSearchPath(t, postgresURL(t), "mcpauth_test_no_such_schema")
	s, err := OpenPostgres(context.Background(), dbURL)
	if err == nil {
		s.Close()
		t.Fatal("OpenPostgres succeeded with a search_path naming no existing schema")
	}
	for _, want := range []string{"registry: ", "search_path", "mcpauth_test_no_such_schema"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenPostgresErrorsDoNotRevealThePassword(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{
		// Nothing listens on port 1: connection refused.
		"postgres://postgres:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=2",
		"postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2&password=" + pw,
		// Unparsable.
		"postgres://postgres:" + pw + "@127.0.0.1:notaport/test",
		"postgres://postgres:" + pw + "@[::1/test",
		"postgres://postgres:" + pw + "@127.0.0.1:5432/test?sslmode=bogus",
		"postgres://postgres:" + url.PathEscape(pw+"/?#@") + "@127.0.0.1:1/test?connect_timeout=2",
	} {
		s, err := OpenPostgres(ctx, u)
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%s) succeeded, want error", u)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, pw) || strings.Contains(msg, url.PathEscape(pw)) {
			t.Errorf("error reveals the password: %s", msg)
		}
		if !strings.HasPrefix(msg, "registry: ") {
			t.Errorf("error %q lacks the registry: prefix", msg)
		}
	}
}

func TestPostgresChangesResyncsAfterListenerConnectionLoss(t *testing.T) {
	_, dbURL := newPostgresSchema(t)
	var logs testutil.Buffer
	a, err := openPostgresWith(context.Background(), dbURL, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b := openPostgres(t, dbURL)
	ctx := context.Background()
	admin := openPostgresSQL(t, dbURL)

	pid := a.listenerPID.Load()
	if pid == 0 {
		t.Fatal("no listener connection after OpenPostgres")
	}
	drain(a.Changes())
	var ok bool
	if err := admin.QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, int(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	// The reconnect itself sends one value: notifications may have been
	// missed while disconnected.
	waitChange(t, a.Changes(), 3*time.Second, "the listener connection was killed")
	newPID := a.listenerPID.Load()
	if newPID == 0 || newPID == pid {
		t.Fatalf("listener pid after reconnect = %d (was %d), want a new connection", newPID, pid)
	}

	// And notifications flow again on the new connection.
	drain(a.Changes())
	if err := b.Record(ctx, tok("after-reconnect", "c", t0, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Revoke(ctx, "after-reconnect", "admin", "test", t0); err != nil {
		t.Fatal(err)
	}
	waitChange(t, a.Changes(), time.Second, "a revocation after reconnecting")
	// Losing and regaining the connection are audited (so counted).
	for _, ev := range []string{`"event":"revocation.listen_lost"`, `"event":"revocation.listen_restored"`} {
		if !strings.Contains(logs.String(), ev) {
			t.Fatalf("log lacks %s:\n%s", ev, logs.String())
		}
	}
}

func TestPostgresChangesCoalescesBurstsWithoutBlocking(t *testing.T) {
	_, dbURL := newPostgresSchema(t)
	a := openPostgres(t, dbURL)
	ctx := context.Background()
	if c := cap(a.Changes()); c != 1 {
		t.Errorf("cap(Changes()) = %d, want 1", c)
	}
	// Nobody reads: the listener must not block, and revocations go on.
	before := a.notified.Load()
	for i := range 5 {
		jti := fmt.Sprintf("burst-%d", i)
		if err := a.Record(ctx, tok(jti, "c", t0, t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Revoke(ctx, jti, "admin", "burst", t0); err != nil {
			t.Fatal(err)
		}
	}
	waitChange(t, a.Changes(), time.Second, "a burst of revocations")
	// Still listening after the burst.
	if err := a.Record(ctx, tok("later", "c", t0, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	// Every notification of the burst has arrived before the channel is
	// emptied, so the value awaited below is the later revocation's.
	deadline := time.Now().Add(5 * time.Second)
	for a.notified.Load() < before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("the listener received %d of the burst's 5 notifications", a.notified.Load()-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	drain(a.Changes())
	if _, _, err := a.Revoke(ctx, "later", "admin", "x", t0); err != nil {
		t.Fatal(err)
	}
	waitChange(t, a.Changes(), time.Second, "a revocation after the burst")
}

func TestPostgresCloseStopsListenerAndIsIdempotent(t *testing.T) {
	_, dbURL := newPostgresSchema(t)
	s, err := OpenPostgres(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pid := s.listenerPID.Load()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("listener goroutine still running after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Get(context.Background(), "x"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Close = %v, want a closed-database error", err)
	}
	admin := openPostgresSQL(t, postgresURL(t))
	deadline := time.Now().Add(3 * time.Second)
	for {
		var n int
		if err := admin.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1`, int(pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener backend %d still connected after Close", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestURLSecretsFindsPasswordsInMalformedURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:pw1@h/db", "pw1"},
		{"postgres://u:p@w2@h:bad/db", "p@w2"},
		{"postgres://u:p/w3@h/db", "p/w3"},
		{"postgres://u@h/db?password=pw4&sslmode=disable", "pw4"},
		{"postgres://u@h/db?sslpassword=pw5", "pw5"},
	} {
		found := false
		for _, s := range urlSecrets(tc.in) {
			if s == tc.want {
				found = true
			}
		}
		if !found {
			t.Errorf("urlSecrets(%q) = %q, want it to include %q", tc.in, urlSecrets(tc.in), tc.want)
		}
		if got := redact("x "+tc.in+" y", urlSecrets(tc.in)...); strings.Contains(got, tc.want) {
			t.Errorf("redact left %q in %q", tc.want, got)
		}
	}
}
