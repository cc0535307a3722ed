package keyring

import (
	"bytes"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *registry.SQLite {
	t.Helper()
	s, err := registry.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "reg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sealer(t *testing.T, b byte) *keys.Sealer {
	t.Helper()
	s, err := keys.NewSealer(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRing(t *testing.T, cfg Config) *Ring {
	t.Helper()
	r, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	return r
}

func record(t *testing.T, s *registry.SQLite, jti, kid string, exp time.Time) {
	t.Helper()
	if err := s.Record(t.Context(), auth.IssuedToken{JTI: jti, ClientID: "c", IssuedAt: t0, ExpiresAt: exp, IssuedBy: "root", KeyID: kid}); err != nil {
		t.Fatal(err)
	}
}

// state is the registry's record of kid, after r reloaded (so its set
// reflects the record too).
func state(t *testing.T, r *Ring, kid string) registry.SigningKey {
	t.Helper()
	if err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, err := r.cfg.Store.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.ID == kid {
			return rec
		}
	}
	t.Fatalf("no record of key %s", kid)
	return registry.SigningKey{}
}

// Rule: with registry-kept keys, the first start makes the key, every
// replica opens the same one, a rotation makes a new one active on all of
// them, and the old key verifies until its last token expires (plus the
// leeway), then is retired on every replica.
func TestRotationGraceAndRetirementAcrossReplicas(t *testing.T) {
	st, clk := openStore(t), &clock{t: t0}
	cfg := Config{Store: st, Sealer: sealer(t, 'k'), Alg: keys.ES256, Leeway: 30 * time.Second, Now: clk.Now}
	a, b := newRing(t, cfg), newRing(t, cfg)
	first := a.Keys().Active()
	if first.Alg() != keys.ES256 || b.Keys().Active().ID() != first.ID() {
		t.Fatalf("replicas sign with %s (%s) and %s, want one ES256 key", first.ID(), first.Alg(), b.Keys().Active().ID())
	}
	record(t, st, "old-1", first.ID(), t0.Add(time.Hour))
	record(t, st, "old-2", first.ID(), t0.Add(20*time.Minute))
	record(t, st, "old-revoked", first.ID(), t0.Add(10*time.Hour))
	if _, _, err := st.Revoke(t.Context(), "old-revoked", "root", "test", t0); err != nil {
		t.Fatal(err)
	}

	clk.Add(time.Minute)
	rot, err := a.Rotate(t.Context(), keys.EdDSA, "root")
	if err != nil {
		t.Fatal(err)
	}
	if rot.Alg != keys.EdDSA || len(rot.Previous) != 1 || rot.Previous[0] != first.ID() {
		t.Fatalf("Rotate = %+v, want EdDSA replacing %s", rot, first.ID())
	}
	if err := b.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Ring{"a": a, "b": b} {
		if got := r.Keys().Active().ID(); got != rot.KeyID {
			t.Errorf("replica %s signs with %s, want the new %s", name, got, rot.KeyID)
		}
		if _, ok := r.Keys().Lookup(first.ID()); !ok {
			t.Errorf("replica %s dropped the old key during its grace", name)
		}
	}

	// The grace is decided: the last live token's expiry plus the leeway
	// (the revoked token does not count).
	if err := b.Retire(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := t0.Add(time.Hour + 30*time.Second)
	if s := state(t, a, first.ID()); s.State != registry.KeyVerifying || !s.RetireAt.Equal(want) {
		t.Fatalf("old key after the rotation: %+v, want verifying until %s", s, want)
	}
	if until, ok := a.Keys().Set().Until(first.ID()); !ok || !until.Equal(want) {
		t.Errorf("the set says the old key verifies until %v (%v), want %s", until, ok, want)
	}

	// Before the end nothing changes; after it, both retire it.
	clk.Add(time.Hour - 2*time.Minute)
	if err := a.Retire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := state(t, a, first.ID()); s.State != registry.KeyVerifying {
		t.Fatalf("old key retired early: %+v", s)
	}
	clk.Add(2 * time.Minute)
	if err := a.Retire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Retire(t.Context()); err != nil { // the other replica finds it done
		t.Fatal(err)
	}
	for name, r := range map[string]*Ring{"a": a, "b": b} {
		if err := r.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Keys().Lookup(first.ID()); ok {
			t.Errorf("replica %s still verifies with the retired key", name)
		}
		if _, ok := r.Keys().Set().Retired(first.ID()); !ok {
			t.Errorf("replica %s does not know the old key was retired", name)
		}
	}
}

// Rule: a key whose tokens never expire verifies for GraceMax at most;
// a token minted late with the old key (a replica that had not yet seen
// the rotation) extends the grace within that cap.
func TestGraceIsCappedAndExtendedByLateTokens(t *testing.T) {
	st, clk := openStore(t), &clock{t: t0}
	cfg := Config{Store: st, Sealer: sealer(t, 'k'), Alg: keys.HS256, GraceMax: 2 * time.Hour, Now: clk.Now}
	r := newRing(t, cfg)
	first := r.Keys().Active().ID()
	record(t, st, "forever", first, time.Time{})
	if _, err := r.Rotate(t.Context(), "", "root"); err != nil {
		t.Fatal(err)
	}
	if got := r.Keys().Active().Alg(); got != keys.HS256 {
		t.Fatalf("a rotation without an algorithm made %s, want the current HS256", got)
	}
	if err := r.Retire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := state(t, r, first); !s.RetireAt.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("a never-expiring token's key: %+v, want retiring at the cap %s", s, t0.Add(2*time.Hour))
	}

	second := r.Keys().Active().ID()
	record(t, st, "short", second, t0.Add(10*time.Minute))
	clk.Add(time.Minute)
	if _, err := r.Rotate(t.Context(), "", "root"); err != nil {
		t.Fatal(err)
	}
	if err := r.Retire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := state(t, r, second); !s.RetireAt.Equal(t0.Add(10 * time.Minute)) {
		t.Fatalf("second key: %+v, want retiring at its last token's expiry", s)
	}
	record(t, st, "late", second, t0.Add(40*time.Minute)) // minted by a lagging replica
	clk.Add(10 * time.Minute)
	if err := r.Retire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := state(t, r, second); s.State != registry.KeyVerifying || !s.RetireAt.Equal(t0.Add(40*time.Minute)) {
		t.Fatalf("second key after a late token: %+v, want verifying until %s", s, t0.Add(40*time.Minute))
	}
}

// Rule: configured keys get the same lifecycle: the previous HS256
// secret verifies through its grace and is then retired, while the
// configured signing key is never retired.
func TestPreviousSecretIsRetiredAfterItsGrace(t *testing.T) {
	st, clk := openStore(t), &clock{t: t0}
	prev, err := keys.NewHMAC(bytes.Repeat([]byte("p"), 32))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := keys.NewHMAC(bytes.Repeat([]byte("c"), 32))
	if err != nil {
		t.Fatal(err)
	}
	// The previous secret signed alone first.
	newRing(t, Config{Store: st, Active: prev, Now: clk.Now})
	record(t, st, "p1", prev.ID(), t0.Add(time.Hour))

	clk.Add(time.Minute)
	r := newRing(t, Config{Store: st, Active: cur, Verify: []*keys.Key{prev}, Leeway: time.Second, Now: clk.Now})
	if s := state(t, r, prev.ID()); s.State != registry.KeyVerifying || !s.GraceFrom.Equal(t0.Add(time.Minute)) {
		t.Fatalf("previous secret: %+v, want verifying from now", s)
	}
	if _, err := r.Rotate(t.Context(), "", "root"); !errors.Is(err, ErrNotManaged) {
		t.Errorf("rotating configured keys: %v, want ErrNotManaged", err)
	}
	clk.Add(2 * time.Hour)
	if err := r.Retire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Keys().Lookup(prev.ID()); ok {
		t.Error("the previous secret still verifies after its grace")
	}
	if r.Keys().Active().ID() != cur.ID() {
		t.Error("the configured secret stopped signing")
	}
}

// Rule: registry-kept keys open only with their key-encryption secret.
func TestAnotherKeyEncryptionSecretIsRefused(t *testing.T) {
	st := openStore(t)
	newRing(t, Config{Store: st, Sealer: sealer(t, 'k'), Alg: keys.ES256})
	_, err := New(t.Context(), Config{Store: st, Sealer: sealer(t, 'x'), Alg: keys.ES256})
	if !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("another key-encryption secret: %v, want ErrUnseal", err)
	}
}

// Rule: reloads asked for by unknown kids happen at most once per
// RefreshEvery.
func TestRefreshIsRateLimited(t *testing.T) {
	st, clk := openStore(t), &clock{t: t0}
	cfg := Config{Store: st, Sealer: sealer(t, 'k'), Alg: keys.ES256, RefreshEvery: 5 * time.Second, Now: clk.Now}
	a, b := newRing(t, cfg), newRing(t, cfg)
	if b.Refresh("made-up") {
		t.Fatal("a made-up kid was found")
	}
	rot, err := a.Rotate(t.Context(), "", "root")
	if err != nil {
		t.Fatal(err)
	}
	if b.Refresh(rot.KeyID) {
		t.Fatal("a second reload within RefreshEvery ran")
	}
	clk.Add(5 * time.Second)
	if !b.Refresh(rot.KeyID) {
		t.Fatal("the new key was not found after RefreshEvery")
	}
}
