package revocation

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// fakeStore is an in-memory registry of revocations.
type fakeStore struct {
	mu       sync.Mutex
	tokens   map[string]registry.Token
	listErr  error
	changes  chan struct{}
	listHook func() // runs inside ListRevoked, before it reads
}

func newFake(toks ...registry.Token) *fakeStore {
	f := &fakeStore{tokens: map[string]registry.Token{}, changes: make(chan struct{}, 1)}
	for _, t := range toks {
		f.tokens[t.JTI] = t
	}
	return f
}

func (f *fakeStore) Revoke(_ context.Context, jti, by, reason string, at time.Time) (registry.Token, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[jti]
	if !ok {
		return registry.Token{}, false, registry.ErrNotFound
	}
	if t.Revoked() {
		return t, true, nil
	}
	t.RevokedAt, t.RevokedBy, t.RevokeReason = at, by, reason
	f.tokens[jti] = t
	return t, false, nil
}

func (f *fakeStore) RevokeClient(_ context.Context, clientID, by, reason string, at time.Time) ([]registry.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []registry.Token
	for id, t := range f.tokens {
		if t.ClientID == clientID && !t.Revoked() {
			t.RevokedAt, t.RevokedBy, t.RevokeReason = at, by, reason
			f.tokens[id] = t
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeStore) ListRevoked(_ context.Context, now time.Time) ([]registry.Revocation, error) {
	if f.listHook != nil {
		f.listHook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []registry.Revocation
	for _, t := range f.tokens {
		if t.Revoked() && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(now)) {
			out = append(out, registry.Revocation{JTI: t.JTI, ExpiresAt: t.ExpiresAt})
		}
	}
	return out, nil
}

func (f *fakeStore) Changes() <-chan struct{} { return f.changes }

// revokeElsewhere simulates another replica writing a revocation.
func (f *fakeStore) revokeElsewhere(jti string) {
	f.mu.Lock()
	t := f.tokens[jti]
	t.RevokedAt = time.Now()
	f.tokens[jti] = t
	f.mu.Unlock()
}

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func tok(jti, client string, exp time.Time) registry.Token {
	return registry.Token{JTI: jti, ClientID: client, ExpiresAt: exp}
}

func newService(f *fakeStore) *Service {
	return New(Config{Store: f, Set: auth.NewRevocationSet(), Leeway: 30 * time.Second, Now: func() time.Time { return now }, Resync: time.Hour})
}

func TestLocalRevocationsAreEnforcedImmediately(t *testing.T) {
	f := newFake(tok("a", "alpha", now.Add(time.Hour)), tok("b", "alpha", now.Add(time.Hour)), tok("c", "beta", time.Time{}))
	s := newService(f)
	if _, _, err := s.RevokeJTI(context.Background(), "a", "admin", "leak"); err != nil {
		t.Fatal(err)
	}
	if !s.Set().IsRevoked("a") || s.Set().IsRevoked("b") {
		t.Fatal("RevokeJTI did not update the set exactly")
	}
	if _, already, _ := s.RevokeJTI(context.Background(), "a", "admin", "again"); !already {
		t.Error("second revocation not reported as already revoked")
	}
	if _, _, err := s.RevokeJTI(context.Background(), "zzz", "admin", ""); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("unknown jti: %v", err)
	}
	toks, err := s.RevokeClient(context.Background(), "alpha", "admin", "")
	if err != nil || len(toks) != 1 || toks[0].JTI != "b" {
		t.Fatalf("RevokeClient = %v, %v", toks, err)
	}
	if !s.Set().IsRevoked("b") || s.Set().IsRevoked("c") {
		t.Fatal("RevokeClient did not update the set exactly")
	}
}

func TestSyncPicksUpOtherReplicasAndPrunesExpired(t *testing.T) {
	f := newFake(tok("live", "a", now.Add(time.Hour)), tok("gone", "a", now.Add(-time.Hour)), tok("never", "a", time.Time{}))
	s := newService(f)
	for _, id := range []string{"live", "gone", "never"} {
		f.revokeElsewhere(id)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"live": true, "gone": false, "never": true} {
		if s.Set().IsRevoked(id) != want {
			t.Errorf("IsRevoked(%q) = %v, want %v", id, !want, want)
		}
	}
}

func TestFailedSyncKeepsTheLastKnownSet(t *testing.T) {
	f := newFake(tok("a", "x", now.Add(time.Hour)))
	s := newService(f)
	if _, _, err := s.RevokeJTI(context.Background(), "a", "admin", ""); err != nil {
		t.Fatal(err)
	}
	f.listErr = errors.New("database down")
	if err := s.Sync(context.Background()); err == nil {
		t.Fatal("Sync hid a store error")
	}
	if !s.Set().IsRevoked("a") {
		t.Fatal("a failed sync dropped a revocation")
	}
}

func TestRunResyncsOnChangeNotification(t *testing.T) {
	f := newFake(tok("a", "x", now.Add(time.Hour)))
	s := newService(f) // Resync is an hour: only the notification can trigger
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	f.revokeElsewhere("a")
	f.changes <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for !s.Set().IsRevoked("a") {
		if time.Now().After(deadline) {
			t.Fatal("notification did not trigger a resync")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSnapshotReadBeforeALocalRevocationCannotUndoIt(t *testing.T) {
	f := newFake(tok("a", "x", now.Add(time.Hour)))
	s := newService(f)
	started := make(chan struct{})
	release := make(chan struct{})
	f.listHook = func() { close(started); <-release }
	syncDone := make(chan error, 1)
	go func() { syncDone <- s.Sync(context.Background()) }()
	<-started
	// The sync holds the lock while reading; a local revocation waits
	// for it and is applied after the snapshot, never before.
	revDone := make(chan error, 1)
	go func() { _, _, err := s.RevokeJTI(context.Background(), "a", "admin", ""); revDone <- err }()
	f.listHook = nil
	close(release)
	if err := <-syncDone; err != nil {
		t.Fatal(err)
	}
	if err := <-revDone; err != nil {
		t.Fatal(err)
	}
	if !s.Set().IsRevoked("a") {
		t.Fatal("a resync replaced a local revocation made during it")
	}
}
