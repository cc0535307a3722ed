package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// contractDB is one fresh, empty database of a backend.
type contractDB struct {
	// open opens a new Store on this database, closed at cleanup; each
	// call is a separate instance (as another replica or a restart).
	open func(t *testing.T) Store
	// url is the PostgreSQL URL (postgres only).
	url string
}

type contractBackend struct {
	name string
	// notifies: Changes() reports revocations made by other instances.
	notifies bool
	fresh    func(t *testing.T) contractDB
}

var contractBackends = []contractBackend{
	{
		name: "sqlite",
		fresh: func(t *testing.T) contractDB {
			path := filepath.Join(t.TempDir(), "registry.db")
			return contractDB{open: func(t *testing.T) Store {
				t.Helper()
				s, err := OpenSQLite(context.Background(), path)
				if err != nil {
					t.Fatalf("OpenSQLite: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}}
		},
	},
	{
		name:     "postgres",
		notifies: true,
		fresh: func(t *testing.T) contractDB {
			_, dbURL := newPostgresSchema(t)
			return contractDB{url: dbURL, open: func(t *testing.T) Store {
				t.Helper()
				// Through Open, so the URL dispatch is covered too.
				s, err := Open(context.Background(), dbURL)
				if err != nil {
					t.Fatalf("Open(postgres): %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}}
		},
	},
}

type contractRule struct {
	name string
	only string // run only on this backend; empty: every backend
	run  func(t *testing.T, b contractBackend, db contractDB)
}

// TestStoreContract runs every rule of the Store contract against every
// backend, each rule on a fresh database.
func TestStoreContract(t *testing.T) {
	for _, b := range contractBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, r := range contractRules {
				if r.only != "" && r.only != b.name {
					continue
				}
				t.Run(r.name, func(t *testing.T) { r.run(t, b, b.fresh(t)) })
			}
		})
	}
}

func record(t *testing.T, s Store, toks ...auth.IssuedToken) {
	t.Helper()
	for _, tk := range toks {
		if err := s.Record(context.Background(), tk); err != nil {
			t.Fatalf("Record(%s): %v", tk.JTI, err)
		}
	}
}

func jtis(toks []Token) []string {
	out := []string{}
	for _, tk := range toks {
		out = append(out, tk.JTI)
	}
	return out
}

func mustGet(t *testing.T, s Store, jti string) Token {
	t.Helper()
	got, err := s.Get(context.Background(), jti)
	if err != nil {
		t.Fatalf("Get(%s): %v", jti, err)
	}
	return got
}

func sameToken(a, b Token) bool {
	return a.JTI == b.JTI && a.ClientID == b.ClientID && a.Scopes.String() == b.Scopes.String() &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.IssuedBy == b.IssuedBy &&
		a.RevokedAt.Equal(b.RevokedAt) && a.RevokedBy == b.RevokedBy && a.RevokeReason == b.RevokeReason && a.KeyID == b.KeyID
}

var contractRules = []contractRule{
	{name: "live tokens are counted by the key that signed them", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		now := t0.Add(time.Hour)
		for _, in := range []struct {
			jti, kid string
			exp      time.Time
		}{
			{"k1-live", "k1", now.Add(time.Hour)},
			{"k1-live2", "k1", time.Time{}},
			{"k1-expired", "k1", now},
			{"k1-revoked", "k1", now.Add(time.Hour)},
			{"k2-live", "k2", now.Add(time.Minute)},
			{"none-live", "", now.Add(time.Minute)},
		} {
			tk := tok(in.jti, "client-"+in.kid, t0, in.exp)
			tk.KeyID = in.kid
			record(t, s, tk)
		}
		if _, _, err := s.Revoke(context.Background(), "k1-revoked", "admin", "test", now); err != nil {
			t.Fatal(err)
		}
		got, err := s.LiveTokensByKey(context.Background(), now)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"k1": 2, "k2": 1, "": 1}; !maps.Equal(got, want) {
			t.Fatalf("LiveTokensByKey = %v, want %v", got, want)
		}
	}},
	{name: "record then get round-trips every field", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		for _, in := range []auth.IssuedToken{
			tok("j-exp", "client-a", t0, t0.Add(30*24*time.Hour), "tools:call", "admin"),
			tok("j-never", "client-b", t0.Add(time.Minute), time.Time{}, "read"),
			tok("j-noscope", "client-c", t0.Add(2*time.Minute), t0.Add(time.Hour)),
			tok("j-tz", "client-d", t0.In(time.FixedZone("X", 5*3600)), t0.Add(time.Hour).In(time.FixedZone("Y", -7*3600)), "a", "b"),
		} {
			in.IssuedBy, in.KeyID = "issuer-"+in.JTI, "kid-"+in.JTI
			record(t, s, in)
			got := mustGet(t, s, in.JTI)
			want := Token{JTI: in.JTI, ClientID: in.ClientID, Scopes: in.Scopes, IssuedAt: in.IssuedAt, ExpiresAt: in.ExpiresAt, IssuedBy: in.IssuedBy, KeyID: in.KeyID}
			if !sameToken(got, want) {
				t.Errorf("Get(%s):\n got %+v\nwant %+v", in.JTI, got, want)
			}
			if in.ExpiresAt.IsZero() != got.ExpiresAt.IsZero() {
				t.Errorf("Get(%s): ExpiresAt = %v, want zero %v", in.JTI, got.ExpiresAt, in.ExpiresAt.IsZero())
			}
			if got.IssuedAt.Location() != time.UTC || got.Revoked() {
				t.Errorf("Get(%s): IssuedAt location %v, revoked %v; want UTC, not revoked", in.JTI, got.IssuedAt.Location(), got.Revoked())
			}
		}
	}},

	{name: "get unknown jti is ErrNotFound", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		record(t, s, tok("known", "c", t0, t0.Add(time.Hour)))
		for _, jti := range []string{"unknown", "", "KNOWN", "known "} {
			if _, err := s.Get(context.Background(), jti); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) error = %v, want ErrNotFound", jti, err)
			}
		}
	}},

	{name: "duplicate jti is refused and the first record kept", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		ctx := context.Background()
		record(t, s, tok("dup", "client-first", t0, t0.Add(time.Hour), "read"))
		second := tok("dup", "client-evil", t0.Add(time.Minute), time.Time{}, "admin")
		second.IssuedBy = "someone-else"
		if err := s.Record(ctx, second); err == nil {
			t.Fatal("Record of a duplicate jti succeeded")
		}
		got := mustGet(t, s, "dup")
		want := rtok("dup", "client-first", t0, t0.Add(time.Hour), "read")
		if !sameToken(got, want) {
			t.Errorf("first record altered:\n got %+v\nwant %+v", got, want)
		}
		if all, err := s.ListTokens(ctx, ""); err != nil || len(all) != 1 {
			t.Errorf("ListTokens = %d tokens, %v; want 1", len(all), err)
		}
	}},

	{name: "list tokens newest first and filtered by client", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		record(t, s,
			tok("a-1", "alpha", t0, t0.Add(time.Hour)),
			tok("b-3", "beta", t0.Add(2*time.Hour), t0.Add(3*time.Hour)),
			tok("a-2", "alpha", t0.Add(3*time.Hour), time.Time{}),
			tok("b-1", "beta", t0.Add(time.Hour), t0.Add(3*time.Hour)),
			tok("b-2", "beta", t0.Add(2*time.Hour), t0.Add(3*time.Hour)),
			// Same issued_at: ordered by jti byte-wise ("B" < "_" < "a").
			tok("b-a", "beta", t0.Add(2*time.Hour), t0.Add(3*time.Hour)),
			tok("b-B", "beta", t0.Add(2*time.Hour), t0.Add(3*time.Hour)),
			tok("b-_", "beta", t0.Add(2*time.Hour), t0.Add(3*time.Hour)),
		)
		for _, tc := range []struct {
			client string
			want   []string
		}{
			{"", []string{"a-2", "b-2", "b-3", "b-B", "b-_", "b-a", "b-1", "a-1"}},
			{"alpha", []string{"a-2", "a-1"}},
			{"beta", []string{"b-2", "b-3", "b-B", "b-_", "b-a", "b-1"}},
			{"gamma", []string{}},
			{"ALPHA", []string{}},
		} {
			got, err := s.ListTokens(context.Background(), tc.client)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(jtis(got), tc.want) {
				t.Errorf("ListTokens(%q) = %v, want %v", tc.client, jtis(got), tc.want)
			}
		}
	}},

	{name: "list clients agrees with summarizing every token", run: func(t *testing.T, _ contractBackend, db contractDB) {
		// Random registries (fixed seeds): the SQL aggregation must say
		// exactly what Summarize says of the same tokens, at instants
		// that fall on, just before and just after expiries.
		s := db.open(t)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(7, 11))
		clients := []string{"Alpha", "alpha", "bot", "bot-2", "zed", "Z"}
		scopes := []string{"read", "write", "tools:call", "admin"}
		for i := range 120 {
			iat := t0.Add(-time.Duration(rng.IntN(72)) * time.Hour)
			var exp time.Time
			if rng.IntN(6) > 0 {
				exp = t0.Add(time.Duration(rng.IntN(96)-48) * time.Hour)
			}
			var sc []string
			for _, x := range scopes {
				if rng.IntN(3) == 0 {
					sc = append(sc, x)
				}
			}
			tk := tok(fmt.Sprintf("r%03d", i), clients[rng.IntN(len(clients))], iat, exp, sc...)
			record(t, s, tk)
			if rng.IntN(5) == 0 {
				if _, _, err := s.Revoke(ctx, tk.JTI, "admin", "random", t0); err != nil {
					t.Fatal(err)
				}
			}
		}
		all, err := s.ListTokens(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, now := range []time.Time{t0, t0.Add(-time.Second), t0.Add(time.Second), t0.Add(500 * time.Millisecond), t0.Add(30 * time.Hour)} {
			got, err := s.ListClients(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			want := Summarize(all, now)
			assertClients(t, got, want)
			for i := range min(len(got), len(want)) {
				if got[i].RevokedTokens != want[i].RevokedTokens {
					t.Errorf("at %v client %s revoked %d, want %d", now, got[i].ClientID, got[i].RevokedTokens, want[i].RevokedTokens)
				}
			}
		}
	}},

	{name: "list clients summarizes counts expiry scopes and last seen", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		ctx := context.Background()
		empty, err := s.ListClients(ctx, t0)
		if err != nil || empty == nil || len(empty) != 0 {
			t.Fatalf("empty registry: ListClients = %#v, %v; want empty non-nil slice", empty, err)
		}
		record(t, s,
			tok("b1", "bot", t0.Add(-72*time.Hour), t0.Add(-24*time.Hour), "stale"),
			tok("b2", "bot", t0.Add(-2*time.Hour), t0.Add(48*time.Hour), "tools:call"),
			tok("b3", "bot", t0.Add(-1*time.Hour), t0.Add(24*time.Hour), "read"),
			tok("b4", "bot", t0.Add(-30*time.Minute), t0.Add(99*time.Hour), "revoked-scope"),
			tok("a1", "alice", t0.Add(-5*time.Hour), time.Time{}, "admin"),
			tok("a2", "alice", t0.Add(-4*time.Hour), time.Time{}, "revoked-too"),
			tok("z1", "zed", t0.Add(-9*time.Hour), t0.Add(-8*time.Hour), "gone"),
		)
		for _, jti := range []string{"b4", "a2"} {
			if _, _, err := s.Revoke(ctx, jti, "admin", "test", t0.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TouchClients(ctx, map[string]time.Time{"bot": t0.Add(-time.Minute), "nobody": t0}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListClients(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := []Client{
			{ClientID: "alice", ActiveTokens: 1, RevokedTokens: 1, TotalTokens: 2, NeverExpires: true, LastIssued: t0.Add(-4 * time.Hour), Scopes: auth.Scopes{"admin"}},
			{ClientID: "bot", ActiveTokens: 2, RevokedTokens: 1, TotalTokens: 4, LatestExpiry: t0.Add(48 * time.Hour), LastIssued: t0.Add(-30 * time.Minute), Scopes: auth.Scopes{"tools:call", "read"}, LastSeen: t0.Add(-time.Minute)},
			{ClientID: "zed", TotalTokens: 1, LastIssued: t0.Add(-9 * time.Hour)},
		}
		assertClients(t, got, want)
		for i := range min(len(got), len(want)) {
			if got[i].RevokedTokens != want[i].RevokedTokens || !got[i].LastSeen.Equal(want[i].LastSeen) {
				t.Errorf("client %s: revoked %d last seen %v; want %d, %v", got[i].ClientID,
					got[i].RevokedTokens, got[i].LastSeen, want[i].RevokedTokens, want[i].LastSeen)
			}
		}
	}},

	{name: "revoke sets revoked fields and is idempotent", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		ctx := context.Background()
		record(t, s, tok("r1", "c", t0, t0.Add(time.Hour), "read"))
		at := t0.Add(10*time.Minute + 500*time.Millisecond)
		got, already, err := s.Revoke(ctx, "r1", "admin-1", "leaked", at)
		if err != nil || already {
			t.Fatalf("first Revoke = already %v, %v; want false, nil", already, err)
		}
		want := rtok("r1", "c", t0, t0.Add(time.Hour), "read")
		want.RevokedAt, want.RevokedBy, want.RevokeReason = at.Truncate(time.Second), "admin-1", "leaked"
		if !sameToken(got, want) {
			t.Errorf("Revoke returned\n %+v\nwant %+v", got, want)
		}
		if stored := mustGet(t, s, "r1"); !sameToken(stored, want) || !stored.Revoked() {
			t.Errorf("stored after Revoke\n %+v\nwant %+v", stored, want)
		}
		again, already, err := s.Revoke(ctx, "r1", "admin-2", "again", at.Add(time.Hour))
		if err != nil || !already {
			t.Fatalf("second Revoke = already %v, %v; want true, nil", already, err)
		}
		if !sameToken(again, want) {
			t.Errorf("second Revoke returned\n %+v\nwant the original %+v", again, want)
		}
		if stored := mustGet(t, s, "r1"); !sameToken(stored, want) {
			t.Errorf("second Revoke changed the record: %+v", stored)
		}
	}},

	{name: "revoke unknown jti is ErrNotFound and changes nothing", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		ctx := context.Background()
		record(t, s, tok("keep", "c", t0, t0.Add(time.Hour)))
		if _, _, err := s.Revoke(ctx, "nope", "admin", "x", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke(unknown) error = %v, want ErrNotFound", err)
		}
		if got := mustGet(t, s, "keep"); got.Revoked() {
			t.Errorf("unrelated token revoked: %+v", got)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(nope) after failed Revoke = %v, want ErrNotFound", err)
		}
		if revoked, err := s.ListRevoked(ctx, t0); err != nil || len(revoked) != 0 {
			t.Errorf("ListRevoked = %v, %v; want none", revoked, err)
		}
	}},

	{name: "revoke client revokes only its unrevoked tokens", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		ctx := context.Background()
		record(t, s,
			tok("c1", "target", t0, t0.Add(time.Hour)),
			tok("c2", "target", t0.Add(time.Minute), time.Time{}),
			tok("c3", "target", t0.Add(2*time.Minute), t0.Add(time.Hour)),
			tok("o1", "other", t0, t0.Add(time.Hour)),
		)
		if _, _, err := s.Revoke(ctx, "c2", "first", "earlier", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(5 * time.Minute)
		got, err := s.RevokeClient(ctx, "target", "admin", "offboarded", at)
		if err != nil {
			t.Fatalf("RevokeClient: %v", err)
		}
		if !slices.Equal(jtis(got), []string{"c3", "c1"}) {
			t.Errorf("RevokeClient returned %v, want [c3 c1]", jtis(got))
		}
		for _, tk := range got {
			if !tk.RevokedAt.Equal(at) || tk.RevokedBy != "admin" || tk.RevokeReason != "offboarded" || tk.ClientID != "target" {
				t.Errorf("returned token %+v lacks the new revocation", tk)
			}
			if stored := mustGet(t, s, tk.JTI); !sameToken(stored, tk) {
				t.Errorf("stored %+v\n differs from returned %+v", stored, tk)
			}
		}
		if c2 := mustGet(t, s, "c2"); c2.RevokedBy != "first" || c2.RevokeReason != "earlier" || !c2.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("already revoked token re-revoked: %+v", c2)
		}
		if o1 := mustGet(t, s, "o1"); o1.Revoked() {
			t.Errorf("other client's token revoked: %+v", o1)
		}
		again, err := s.RevokeClient(ctx, "target", "admin", "again", at.Add(time.Hour))
		if err != nil || len(again) != 0 {
			t.Errorf("second RevokeClient = %v, %v; want empty, nil", jtis(again), err)
		}
		if _, err := s.RevokeClient(ctx, "ghost", "admin", "x", at); !errors.Is(err, ErrNoSuchClient) {
			t.Errorf("RevokeClient(unknown) error = %v, want ErrNoSuchClient", err)
		}
	}},

	{name: "list revoked excludes expired and unrevoked tokens", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		ctx := context.Background()
		record(t, s,
			tok("live", "c", t0.Add(-time.Hour), t0.Add(time.Hour)),
			tok("never", "c", t0.Add(-time.Hour), time.Time{}),
			tok("expired", "c", t0.Add(-2*time.Hour), t0.Add(-time.Minute)),
			tok("at-now", "c", t0.Add(-2*time.Hour), t0),
			tok("unrevoked", "c", t0.Add(-time.Hour), t0.Add(time.Hour)),
		)
		for _, jti := range []string{"live", "never", "expired", "at-now"} {
			if _, _, err := s.Revoke(ctx, jti, "admin", "x", t0.Add(-90*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ListRevoked(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].JTI < got[j].JTI })
		want := []Revocation{{JTI: "live", ExpiresAt: t0.Add(time.Hour)}, {JTI: "never"}}
		if len(got) != len(want) {
			t.Fatalf("ListRevoked = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].JTI != want[i].JTI || !got[i].ExpiresAt.Equal(want[i].ExpiresAt) {
				t.Errorf("ListRevoked[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	}},

	{name: "touch clients never moves last seen backwards", run: func(t *testing.T, _ contractBackend, db contractDB) {
		s := db.open(t)
		ctx := context.Background()
		record(t, s, tok("t1", "c", t0, t0.Add(time.Hour)))
		lastSeen := func() time.Time {
			t.Helper()
			cs, err := s.ListClients(ctx, t0)
			if err != nil || len(cs) != 1 {
				t.Fatalf("ListClients = %+v, %v", cs, err)
			}
			return cs[0].LastSeen
		}
		if got := lastSeen(); !got.IsZero() {
			t.Errorf("LastSeen before any touch = %v, want zero", got)
		}
		if err := s.TouchClients(ctx, nil); err != nil {
			t.Errorf("TouchClients(nil) = %v", err)
		}
		for _, tc := range []struct {
			touch, want time.Time
		}{
			{t0.Add(10 * time.Minute), t0.Add(10 * time.Minute)},
			{t0.Add(5 * time.Minute), t0.Add(10 * time.Minute)}, // older: ignored
			{t0.Add(10 * time.Minute), t0.Add(10 * time.Minute)},
			{t0.Add(20 * time.Minute), t0.Add(20 * time.Minute)},
		} {
			if err := s.TouchClients(ctx, map[string]time.Time{"c": tc.touch}); err != nil {
				t.Fatal(err)
			}
			if got := lastSeen(); !got.Equal(tc.want) {
				t.Errorf("after touch at %v: LastSeen = %v, want %v", tc.touch, got, tc.want)
			}
		}
	}},

	{name: "concurrent records are all kept", run: func(t *testing.T, _ contractBackend, db contractDB) {
		// 16 writers at once also drive SQLite's group commit into
		// multi-record batches.
		s := db.open(t)
		ctx := context.Background()
		const workers, perWorker = 16, 50
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					tk := tok(fmt.Sprintf("w%02d-%03d", w, i), fmt.Sprintf("client-%02d", w), t0.Add(time.Duration(i)*time.Second), t0.Add(time.Hour))
					if err := s.Record(ctx, tk); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Record: %v", err)
		}
		all, err := s.ListTokens(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, tk := range all {
			seen[tk.JTI] = true
		}
		if len(all) != workers*perWorker || len(seen) != workers*perWorker {
			t.Fatalf("ListTokens has %d tokens (%d distinct), want %d", len(all), len(seen), workers*perWorker)
		}
		clients, err := s.ListClients(ctx, t0)
		if err != nil || len(clients) != workers {
			t.Fatalf("ListClients = %d clients, %v; want %d", len(clients), err, workers)
		}
		for _, c := range clients {
			if c.TotalTokens != perWorker || c.ActiveTokens != perWorker {
				t.Errorf("client %s: total %d active %d, want %d", c.ClientID, c.TotalTokens, c.ActiveTokens, perWorker)
			}
		}
	}},

	{name: "concurrent revokes of one token have exactly one winner", run: func(t *testing.T, _ contractBackend, db contractDB) {
		stores := []Store{db.open(t), db.open(t)}
		ctx := context.Background()
		record(t, stores[0], tok("contested", "c", t0, t0.Add(time.Hour)))
		const n = 8
		type result struct {
			tk      Token
			already bool
			err     error
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				tk, already, err := stores[i%2].Revoke(ctx, "contested", fmt.Sprintf("admin-%d", i), fmt.Sprintf("reason-%d", i), t0.Add(time.Duration(i)*time.Second))
				results[i] = result{tk, already, err}
			})
		}
		wg.Wait()
		stored := mustGet(t, stores[0], "contested")
		winners := 0
		for i, r := range results {
			if r.err != nil {
				t.Errorf("Revoke #%d: %v", i, r.err)
				continue
			}
			if !r.already {
				winners++
			}
			if !sameToken(r.tk, stored) {
				t.Errorf("Revoke #%d (already=%v) returned\n %+v\nbut the registry holds\n %+v", i, r.already, r.tk, stored)
			}
		}
		if winners != 1 {
			t.Errorf("%d revokes reported already=false, want exactly 1", winners)
		}
	}},

	{name: "concurrent revoke client revokes each token once", run: func(t *testing.T, _ contractBackend, db contractDB) {
		stores := []Store{db.open(t), db.open(t)}
		ctx := context.Background()
		const tokens = 30
		for i := range tokens {
			record(t, stores[0], tok(fmt.Sprintf("t%02d", i), "victim", t0.Add(time.Duration(i)*time.Second), t0.Add(time.Hour)))
		}
		const n = 4
		revokedBy := map[string]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				by := fmt.Sprintf("admin-%d", i)
				got, err := stores[i%2].RevokeClient(ctx, "victim", by, "bulk", t0)
				if err != nil {
					t.Errorf("RevokeClient #%d: %v", i, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, tk := range got {
					if prev, dup := revokedBy[tk.JTI]; dup {
						t.Errorf("token %s reported revoked by both %s and %s", tk.JTI, prev, by)
					}
					revokedBy[tk.JTI] = by
				}
			})
		}
		wg.Wait()
		if len(revokedBy) != tokens {
			t.Errorf("%d tokens reported revoked, want %d", len(revokedBy), tokens)
		}
		for jti, by := range revokedBy {
			if stored := mustGet(t, stores[0], jti); stored.RevokedBy != by {
				t.Errorf("token %s: reported revoked by %s, registry says %q", jti, by, stored.RevokedBy)
			}
		}
	}},

	{name: "data survives close and reopen", run: func(t *testing.T, _ contractBackend, db contractDB) {
		ctx := context.Background()
		s := db.open(t)
		record(t, s, tok("p1", "c", t0, t0.Add(time.Hour), "read"), tok("p2", "c", t0.Add(time.Second), time.Time{}))
		if _, _, err := s.Revoke(ctx, "p2", "admin", "gone", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchClients(ctx, map[string]time.Time{"c": t0.Add(2 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		before, err := s.ListTokens(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for i := range 2 { // twice: reopening must not re-apply migrations
			s = db.open(t)
			after, err := s.ListTokens(ctx, "")
			if err != nil {
				t.Fatalf("reopen #%d: %v", i+1, err)
			}
			if len(after) != len(before) {
				t.Fatalf("reopen #%d: %d tokens, want %d", i+1, len(after), len(before))
			}
			for j := range before {
				if !sameToken(after[j], before[j]) {
					t.Errorf("reopen #%d: token %d = %+v, want %+v", i+1, j, after[j], before[j])
				}
			}
			cs, err := s.ListClients(ctx, t0)
			if err != nil || len(cs) != 1 || !cs[0].LastSeen.Equal(t0.Add(2*time.Minute)) {
				t.Errorf("reopen #%d: ListClients = %+v, %v; want last seen kept", i+1, cs, err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("reopen #%d: Close: %v", i+1, err)
			}
		}
	}},

	{name: "changes reports revocations by another instance", run: func(t *testing.T, b contractBackend, db contractDB) {
		a, other := db.open(t), db.open(t)
		ctx := context.Background()
		if !b.notifies {
			if a.Changes() != nil {
				t.Error("Changes() is non-nil for a backend that cannot tell")
			}
			return
		}
		ch := a.Changes()
		if ch == nil {
			t.Fatal("Changes() is nil")
		}
		record(t, other, tok("n1", "c", t0, t0.Add(time.Hour)), tok("n2", "d", t0, t0.Add(time.Hour)))
		drain(ch)
		if _, _, err := other.Revoke(ctx, "n1", "admin", "x", t0); err != nil {
			t.Fatal(err)
		}
		waitChange(t, ch, time.Second, "Revoke through another instance")
		drain(ch)
		if _, err := other.RevokeClient(ctx, "d", "admin", "x", t0); err != nil {
			t.Fatal(err)
		}
		waitChange(t, ch, time.Second, "RevokeClient through another instance")
	}},

	{name: "concurrent opens apply each migration once", only: "postgres", run: func(t *testing.T, _ contractBackend, db contractDB) {
		const n = 4
		ctx := context.Background()
		stores := make([]*Postgres, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				stores[i], errs[i] = OpenPostgres(ctx, db.url)
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("concurrent OpenPostgres #%d: %v", i, errs[i])
			} else {
				t.Cleanup(func() { stores[i].Close() })
			}
		}
		if t.Failed() {
			return
		}
		rows, err := stores[0].db.QueryContext(ctx, `SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var v, c int
			if err := rows.Scan(&v, &c); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d×%d", v, c))
		}
		var want []string
		for v := 1; v <= len(postgresMigrations); v++ {
			want = append(want, fmt.Sprintf("%d×1", v))
		}
		if !slices.Equal(got, want) {
			t.Errorf("schema_migrations = %v, want %v", got, want)
		}
		record(t, stores[1], tok("m1", "c", t0, t0.Add(time.Hour)))
		if got := mustGet(t, stores[n-1], "m1"); got.ClientID != "c" {
			t.Errorf("Get through another instance = %+v", got)
		}
	}},
}
