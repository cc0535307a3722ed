package auth

import (
	"sync"
	"sync/atomic"
	"time"
)

// RevocationSet is the in-memory set of revoked token ids checked on every
// request: an O(1) lock-free lookup. Writers replace the whole map (copy on
// write); revocations are rare, lookups constant. The revocation service
// (package auth/revocation) fills it and keeps it in step with the
// registry.
type RevocationSet struct {
	mu sync.Mutex // serializes writers
	m  atomic.Pointer[map[string]time.Time]
	// version increases with every change, so watchers can tell.
	version atomic.Uint64
	// synced is when the set was last known to match the registry (unix
	// nanoseconds; 0: never).
	synced atomic.Int64
}

// MarkSynced records that the set matched the registry at t.
func (s *RevocationSet) MarkSynced(t time.Time) { s.synced.Store(t.UnixNano()) }

// SyncedAt is when the set last matched the registry (zero: never).
func (s *RevocationSet) SyncedAt() time.Time {
	if n := s.synced.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// NewRevocationSet returns an empty set.
func NewRevocationSet() *RevocationSet {
	s := &RevocationSet{}
	empty := map[string]time.Time{}
	s.m.Store(&empty)
	return s
}

// IsRevoked reports whether jti is revoked.
func (s *RevocationSet) IsRevoked(jti string) bool {
	_, ok := (*s.m.Load())[jti]
	return ok
}

// Len is the number of revoked ids held.
func (s *RevocationSet) Len() int { return len(*s.m.Load()) }

// Version changes whenever the set does.
func (s *RevocationSet) Version() uint64 { return s.version.Load() }

// Add marks ids revoked; exp is when each would have expired anyway
// (zero: never), after which Prune may drop it.
func (s *RevocationSet) Add(exp map[string]time.Time) {
	if len(exp) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	next := make(map[string]time.Time, len(old)+len(exp))
	for k, v := range old {
		next[k] = v
	}
	for k, v := range exp {
		next[k] = v
	}
	s.m.Store(&next)
	s.version.Add(1)
}

// Replace swaps in a full snapshot (a resync from the registry). The
// registry is written before Add is called, so a snapshot read after a
// local revocation always contains it.
func (s *RevocationSet) Replace(snapshot map[string]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	if sameKeys(old, snapshot) {
		return
	}
	next := make(map[string]time.Time, len(snapshot))
	for k, v := range snapshot {
		next[k] = v
	}
	s.m.Store(&next)
	s.version.Add(1)
}

// Prune drops ids whose tokens have expired by now (beyond leeway): they
// are refused as expired anyway.
func (s *RevocationSet) Prune(now time.Time, leeway time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	cut := now.Add(-leeway)
	var drop int
	for _, exp := range old {
		if !exp.IsZero() && exp.Before(cut) {
			drop++
		}
	}
	if drop == 0 {
		return
	}
	next := make(map[string]time.Time, len(old)-drop)
	for k, exp := range old {
		if exp.IsZero() || !exp.Before(cut) {
			next[k] = exp
		}
	}
	s.m.Store(&next)
	s.version.Add(1)
}

func sameKeys(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return false
		}
	}
	return true
}
