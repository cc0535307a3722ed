package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// t0 is the fixed "now" of these tests; no test reads the wall clock.
var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)

func openTemp(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func pragma(t *testing.T, s *SQLite, name string) string {
	t.Helper()
	var v string
	if err := s.db.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func tok(jti, client string, iat time.Time, exp time.Time, scopes ...string) auth.IssuedToken {
	return auth.IssuedToken{
		JTI:       jti,
		ClientID:  client,
		Scopes:    auth.Scopes(scopes),
		IssuedAt:  iat,
		ExpiresAt: exp,
		IssuedBy:  "admin-x",
	}
}

func mustRecord(t *testing.T, s *SQLite, toks ...auth.IssuedToken) {
	t.Helper()
	for _, tk := range toks {
		if err := s.Record(context.Background(), tk); err != nil {
			t.Fatalf("Record(%s): %v", tk.JTI, err)
		}
	}
}

func TestOpenSQLiteCreatesFileInWALMode(t *testing.T) {
	s, path := openTemp(t)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	if got := pragma(t, s, "journal_mode"); got != "wal" {
		t.Errorf("journal_mode = %q, want wal", got)
	}
	if got := pragma(t, s, "user_version"); got != fmt.Sprint(len(migrations)) {
		t.Errorf("user_version = %s, want %d", got, len(migrations))
	}
}

func TestOpenSQLiteAcceptsSQLiteURLPrefix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prefixed.db")
	s, err := OpenSQLite(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("sqlite:// prefix not stripped, file %s missing: %v", path, err)
	}
}

func TestOpenSQLiteRefusesEmptyPathAndURIMetacharacters(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"", "sqlite://", filepath.Join(dir, "a?b.db"), filepath.Join(dir, "x#y.db")} {
		if s, err := OpenSQLite(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded, want error", p)
		}
	}
}

func TestReopeningExistingDatabaseIsIdempotentAndKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reopen.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	want := tok("jti-1", "client-a", t0, t0.Add(time.Hour), "read", "write")
	mustRecord(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for i := range 2 { // twice: migrations must not be re-applied
		s, err = OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("reopen #%d: %v", i+1, err)
		}
		if got := pragma(t, s, "user_version"); got != fmt.Sprint(len(migrations)) {
			t.Errorf("reopen #%d: user_version = %s, want %d", i+1, got, len(migrations))
		}
		if got := pragma(t, s, "journal_mode"); got != "wal" {
			t.Errorf("reopen #%d: journal_mode = %q, want wal", i+1, got)
		}
		got, err := s.Get(ctx, "jti-1")
		if err != nil {
			t.Fatalf("reopen #%d: Get: %v", i+1, err)
		}
		if got.ClientID != want.ClientID || !got.IssuedAt.Equal(want.IssuedAt) {
			t.Errorf("reopen #%d: data changed: %+v", i+1, got)
		}
		all, err := s.ListTokens(ctx, "")
		if err != nil || len(all) != 1 {
			t.Errorf("reopen #%d: ListTokens = %d tokens, %v; want 1", i+1, len(all), err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestOpenSQLiteRefusesNewerSchemaVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "future.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	future := len(migrations) + 5
	if _, err := raw.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", future)); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s, err := OpenSQLite(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite accepted a database with a newer schema version")
	}
	msg := err.Error()
	for _, want := range []string{"newer than this binary supports", fmt.Sprint(future)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}

	// The refused database is left as it was.
	raw, err = sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var v int
	if err := raw.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != future {
		t.Errorf("user_version after refusal = %d, want %d (untouched)", v, future)
	}
}

func TestRecordThenGetRoundTripsEveryField(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	tests := []struct {
		name string
		in   auth.IssuedToken
	}{
		{"expiring token with scopes", tok("j-exp", "client-a", t0, t0.Add(30*24*time.Hour), "tools:call", "admin")},
		{"never-expiring token keeps zero ExpiresAt", tok("j-never", "client-b", t0.Add(time.Minute), time.Time{}, "read")},
		{"token without scopes", tok("j-noscope", "client-c", t0.Add(2*time.Minute), t0.Add(time.Hour))},
		{"non-UTC times come back as the same instant", tok("j-tz", "client-d",
			t0.In(time.FixedZone("X", 5*3600)), t0.Add(time.Hour).In(time.FixedZone("Y", -7*3600)), "a", "b", "c")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.IssuedBy = "issuer-" + tc.in.JTI
			mustRecord(t, s, tc.in)
			got, err := s.Get(ctx, tc.in.JTI)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.JTI != tc.in.JTI || got.ClientID != tc.in.ClientID || got.IssuedBy != tc.in.IssuedBy {
				t.Errorf("identity fields: got %+v, want %+v", got, tc.in)
			}
			if !slices.Equal([]string(got.Scopes), []string(tc.in.Scopes)) {
				t.Errorf("Scopes = %q, want %q", got.Scopes, tc.in.Scopes)
			}
			if !got.IssuedAt.Equal(tc.in.IssuedAt) {
				t.Errorf("IssuedAt = %v, want %v", got.IssuedAt, tc.in.IssuedAt)
			}
			if tc.in.ExpiresAt.IsZero() {
				if !got.ExpiresAt.IsZero() {
					t.Errorf("ExpiresAt = %v, want zero (never expires)", got.ExpiresAt)
				}
			} else if !got.ExpiresAt.Equal(tc.in.ExpiresAt) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, tc.in.ExpiresAt)
			}
			if got.IssuedAt.Location() != time.UTC {
				t.Errorf("IssuedAt location = %v, want UTC", got.IssuedAt.Location())
			}
		})
	}
}

func TestGetUnknownJTIReturnsErrNotFound(t *testing.T) {
	s, _ := openTemp(t)
	mustRecord(t, s, tok("known", "c", t0, t0.Add(time.Hour)))
	for _, jti := range []string{"unknown", "", "KNOWN", "known "} {
		_, err := s.Get(context.Background(), jti)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", jti, err)
		}
	}
}

func TestRecordDuplicateJTIFailsAndKeepsFirstRecord(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	first := tok("dup", "client-first", t0, t0.Add(time.Hour), "read")
	mustRecord(t, s, first)

	second := tok("dup", "client-evil", t0.Add(time.Minute), time.Time{}, "admin")
	second.IssuedBy = "someone-else"
	if err := s.Record(ctx, second); err == nil {
		t.Fatal("Record of a duplicate jti succeeded")
	}

	got, err := s.Get(ctx, "dup")
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientID != "client-first" || got.IssuedBy != "admin-x" || !got.IssuedAt.Equal(t0) ||
		!got.ExpiresAt.Equal(t0.Add(time.Hour)) || got.Scopes.String() != "read" {
		t.Errorf("first record altered: %+v", got)
	}
	all, _ := s.ListTokens(ctx, "")
	if len(all) != 1 {
		t.Errorf("ListTokens has %d tokens, want 1", len(all))
	}
}

func TestListTokensNewestFirstAndFilteredByClient(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	// Recorded out of order on purpose; b-2 and b-3 share an issued_at and
	// are ordered by jti.
	mustRecord(t, s,
		tok("a-1", "alpha", t0, t0.Add(time.Hour)),
		tok("b-3", "beta", t0.Add(2*time.Hour), t0.Add(3*time.Hour)),
		tok("a-2", "alpha", t0.Add(3*time.Hour), time.Time{}),
		tok("b-1", "beta", t0.Add(time.Hour), t0.Add(3*time.Hour)),
		tok("b-2", "beta", t0.Add(2*time.Hour), t0.Add(3*time.Hour)),
	)
	tests := []struct {
		client string
		want   []string
	}{
		{"", []string{"a-2", "b-2", "b-3", "b-1", "a-1"}},
		{"alpha", []string{"a-2", "a-1"}},
		{"beta", []string{"b-2", "b-3", "b-1"}},
		{"gamma", nil},
		{"ALPHA", nil}, // client ids are case-sensitive
	}
	for _, tc := range tests {
		t.Run("client="+tc.client, func(t *testing.T) {
			got, err := s.ListTokens(ctx, tc.client)
			if err != nil {
				t.Fatal(err)
			}
			var jtis []string
			for _, tk := range got {
				jtis = append(jtis, tk.JTI)
				if tc.client != "" && tk.ClientID != tc.client {
					t.Errorf("token %s of client %q leaked into filter %q", tk.JTI, tk.ClientID, tc.client)
				}
			}
			if !slices.Equal(jtis, tc.want) {
				t.Errorf("ListTokens(%q) = %v, want %v", tc.client, jtis, tc.want)
			}
		})
	}
}

func rtok(jti, client string, iat, exp time.Time, scopes ...string) Token {
	return Token{JTI: jti, ClientID: client, Scopes: auth.Scopes(scopes), IssuedAt: iat, ExpiresAt: exp, IssuedBy: "admin-x"}
}

func sortedScopes(s auth.Scopes) []string {
	out := slices.Clone([]string(s))
	slices.Sort(out)
	return out
}

func TestSummarizeCountsActiveAndExpiredAtNow(t *testing.T) {
	now := t0
	tests := []struct {
		name   string
		tokens []Token
		want   []Client
	}{
		{
			name:   "no tokens gives an empty list",
			tokens: nil,
			want:   []Client{},
		},
		{
			name: "expired tokens count in total but not active, scopes or expiry",
			tokens: []Token{
				rtok("1", "c", now.Add(-48*time.Hour), now.Add(-time.Hour), "old-scope"),
				rtok("2", "c", now.Add(-24*time.Hour), now.Add(time.Hour), "read"),
			},
			want: []Client{{
				ClientID: "c", ActiveTokens: 1, TotalTokens: 2,
				LatestExpiry: now.Add(time.Hour), LastIssued: now.Add(-24 * time.Hour),
				Scopes: auth.Scopes{"read"},
			}},
		},
		{
			name: "token expiring exactly at now is expired",
			tokens: []Token{
				rtok("1", "c", now.Add(-time.Hour), now, "read"),
			},
			want: []Client{{
				ClientID: "c", ActiveTokens: 0, TotalTokens: 1,
				LastIssued: now.Add(-time.Hour),
			}},
		},
		{
			name: "LatestExpiry is the latest among active tokens, scopes are the union",
			tokens: []Token{
				rtok("1", "c", now.Add(-3*time.Hour), now.Add(10*time.Hour), "a", "b"),
				rtok("2", "c", now.Add(-2*time.Hour), now.Add(50*time.Hour), "b", "c"),
				rtok("3", "c", now.Add(-1*time.Hour), now.Add(20*time.Hour), "d"),
			},
			want: []Client{{
				ClientID: "c", ActiveTokens: 3, TotalTokens: 3,
				LatestExpiry: now.Add(50 * time.Hour), LastIssued: now.Add(-time.Hour),
				Scopes: auth.Scopes{"a", "b", "c", "d"},
			}},
		},
		{
			name: "never-expiring active token sets NeverExpires",
			tokens: []Token{
				rtok("1", "c", now.Add(-time.Hour), time.Time{}, "x"),
			},
			want: []Client{{
				ClientID: "c", ActiveTokens: 1, TotalTokens: 1, NeverExpires: true,
				LastIssued: now.Add(-time.Hour), Scopes: auth.Scopes{"x"},
			}},
		},
		{
			name: "LastIssued considers expired tokens too",
			tokens: []Token{
				rtok("1", "c", now.Add(-time.Minute), now.Add(-time.Second), "x"),
				rtok("2", "c", now.Add(-time.Hour), now.Add(time.Hour), "y"),
			},
			want: []Client{{
				ClientID: "c", ActiveTokens: 1, TotalTokens: 2,
				LatestExpiry: now.Add(time.Hour), LastIssued: now.Add(-time.Minute),
				Scopes: auth.Scopes{"y"},
			}},
		},
		{
			name: "clients are ordered by client id regardless of input order",
			tokens: []Token{
				rtok("1", "zeta", now.Add(-time.Hour), now.Add(time.Hour)),
				rtok("2", "Alpha", now.Add(-time.Hour), now.Add(time.Hour)),
				rtok("3", "mid", now.Add(-time.Hour), now.Add(time.Hour)),
				rtok("4", "alpha", now.Add(-time.Hour), now.Add(time.Hour)),
			},
			want: []Client{
				{ClientID: "Alpha", ActiveTokens: 1, TotalTokens: 1, LatestExpiry: now.Add(time.Hour), LastIssued: now.Add(-time.Hour)},
				{ClientID: "alpha", ActiveTokens: 1, TotalTokens: 1, LatestExpiry: now.Add(time.Hour), LastIssued: now.Add(-time.Hour)},
				{ClientID: "mid", ActiveTokens: 1, TotalTokens: 1, LatestExpiry: now.Add(time.Hour), LastIssued: now.Add(-time.Hour)},
				{ClientID: "zeta", ActiveTokens: 1, TotalTokens: 1, LatestExpiry: now.Add(time.Hour), LastIssued: now.Add(-time.Hour)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Summarize(tc.tokens, now)
			if got == nil {
				t.Fatal("Summarize returned nil, want a non-nil (possibly empty) slice")
			}
			assertClients(t, got, tc.want)
		})
	}
}

func assertClients(t *testing.T, got, want []Client) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d clients %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ClientID != w.ClientID || g.ActiveTokens != w.ActiveTokens || g.TotalTokens != w.TotalTokens ||
			g.NeverExpires != w.NeverExpires || !g.LatestExpiry.Equal(w.LatestExpiry) || !g.LastIssued.Equal(w.LastIssued) {
			t.Errorf("client %d:\n got %+v\nwant %+v", i, g, w)
		}
		if !slices.Equal(sortedScopes(g.Scopes), sortedScopes(w.Scopes)) {
			t.Errorf("client %s scopes = %q, want %q", g.ClientID, g.Scopes, w.Scopes)
		}
	}
}

func TestListClientsSummarizesRegistryAtFixedNow(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()

	empty, err := s.ListClients(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if empty == nil || len(empty) != 0 {
		t.Fatalf("empty registry: ListClients = %#v, want empty non-nil slice", empty)
	}

	mustRecord(t, s,
		tok("b1", "bot", t0.Add(-72*time.Hour), t0.Add(-24*time.Hour), "stale"),
		tok("b2", "bot", t0.Add(-2*time.Hour), t0.Add(48*time.Hour), "tools:call"),
		tok("b3", "bot", t0.Add(-1*time.Hour), t0.Add(24*time.Hour), "read"),
		tok("a1", "alice", t0.Add(-5*time.Hour), time.Time{}, "admin"),
		tok("z1", "zed", t0.Add(-9*time.Hour), t0.Add(-8*time.Hour), "gone"),
	)
	got, err := s.ListClients(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	assertClients(t, got, []Client{
		{ClientID: "alice", ActiveTokens: 1, TotalTokens: 1, NeverExpires: true, LastIssued: t0.Add(-5 * time.Hour), Scopes: auth.Scopes{"admin"}},
		{ClientID: "bot", ActiveTokens: 2, TotalTokens: 3, LatestExpiry: t0.Add(48 * time.Hour), LastIssued: t0.Add(-time.Hour), Scopes: auth.Scopes{"tools:call", "read"}},
		{ClientID: "zed", ActiveTokens: 0, TotalTokens: 1, LastIssued: t0.Add(-9 * time.Hour)},
	})

	// Later, everything but the never-expiring token has expired.
	later, err := s.ListClients(ctx, t0.Add(49*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	assertClients(t, later, []Client{
		{ClientID: "alice", ActiveTokens: 1, TotalTokens: 1, NeverExpires: true, LastIssued: t0.Add(-5 * time.Hour), Scopes: auth.Scopes{"admin"}},
		{ClientID: "bot", ActiveTokens: 0, TotalTokens: 3, LastIssued: t0.Add(-time.Hour)},
		{ClientID: "zed", ActiveTokens: 0, TotalTokens: 1, LastIssued: t0.Add(-9 * time.Hour)},
	})
}

func TestGroupCommitFailsOnlyTheBadRecordOfABatch(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			jti := fmt.Sprintf("g%02d", i)
			if i == 39 {
				jti = "g00" // duplicate of the first
			}
			errs[i] = s.Record(ctx, auth.IssuedToken{JTI: jti, ClientID: "c", IssuedAt: time.Unix(1, 0), IssuedBy: "t"})
		}(i)
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	toks, err := s.ListTokens(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if failed != 1 || len(toks) != 39 {
		t.Fatalf("%d records failed and %d are stored; want exactly the duplicate to fail and 39 stored", failed, len(toks))
	}
}

// Rule: Record is honest about what it wrote. A caller that gives up (its
// context ends) while its record waits behind a held lock gets an error
// and the row never lands; a record the writer had already started is
// waited for, so its caller learns the real outcome. Either way a token
// is recorded exactly when Record returned nil.
func TestRecordGivenUpWhileWaitingNeverLandsAndATakenOneIsWaitedFor(t *testing.T) {
	s, path := openTemp(t)
	locker, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
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
	results := make(map[string]chan error)
	for _, jti := range []string{"taken", "queued"} {
		ch := make(chan error, 1)
		results[jti] = ch
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		go func() { defer cancel(); ch <- s.Record(ctx, tok(jti, "c", t0, t0.Add(time.Hour))) }()
		if jti == "taken" {
			// Let the writer take "taken" and block on the lock before
			// "queued" arrives behind it.
			waitUntil(t, func() bool { return len(s.records) == 0 && s.busyWriting.Load() })
		}
	}
	queuedErr := <-results["queued"] // its context ended while it waited
	if queuedErr == nil {
		t.Fatal("Record returned nil for a record still queued behind the lock")
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	takenErr := <-results["taken"]
	// Whatever the writer still had in hand is committed by now.
	mustRecord(t, s, tok("after", "c", t0, t0.Add(time.Hour)))
	for jti, err := range map[string]error{"taken": takenErr, "queued": queuedErr} {
		_, gerr := s.Get(context.Background(), jti)
		if recorded := gerr == nil; recorded != (err == nil) {
			t.Errorf("%s: Record returned %v but recorded = %v", jti, err, recorded)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Rule: when the database cannot grow (a full disk; here SQLite's page
// limit, which fails the same way), Record refuses with ErrFull, every
// token recorded before stays, and nothing refused is half-written.
func TestFullRegistryRefusesRecordsAndLosesNothing(t *testing.T) {
	s, _ := openTemp(t)
	s.db.SetMaxOpenConns(1) // the page limit is per connection
	var pages int
	if err := s.db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+2)); err != nil {
		t.Fatal(err)
	}
	var recorded []string
	var full error
	for i := 0; i < 5000 && full == nil; i++ {
		jti := fmt.Sprintf("jti-%04d-%s", i, strings.Repeat("x", 200))
		if err := s.Record(context.Background(), tok(jti, "c", t0, t0.Add(time.Hour))); err != nil {
			full = err
			if _, gerr := s.Get(context.Background(), jti); !errors.Is(gerr, ErrNotFound) {
				t.Fatalf("the refused record is readable: %v", gerr)
			}
			continue
		}
		recorded = append(recorded, jti)
	}
	if !errors.Is(full, ErrFull) {
		t.Fatalf("Record on a full database: %v, want ErrFull", full)
	}
	for _, jti := range recorded {
		if _, err := s.Get(context.Background(), jti); err != nil {
			t.Fatalf("%s was recorded before the disk filled but is now %v", jti[:8], err)
		}
	}
	if len(recorded) == 0 {
		t.Fatal("the limit left no room at all; the test proves nothing")
	}
}
