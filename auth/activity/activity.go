// Package activity tracks when each client was last seen without a
// database write per request: sightings are kept in memory and flushed to
// the registry in batches.
package activity

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Toucher stores last-seen times in one batch.
type Toucher interface {
	TouchClients(ctx context.Context, seen map[string]time.Time) error
}

// Tracker batches last-seen times.
type Tracker struct {
	store Toucher
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	pending map[string]time.Time
}

// New returns a Tracker writing to store.
func New(store Toucher, logger *slog.Logger) *Tracker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Tracker{store: store, now: time.Now, log: logger, pending: map[string]time.Time{}}
}

// Seen notes that clientID authenticated now. It never blocks on I/O.
func (t *Tracker) Seen(clientID string) {
	now := t.now()
	t.mu.Lock()
	t.pending[clientID] = now
	t.mu.Unlock()
}

// Flush writes pending sightings. On failure they are kept for the next
// flush (newer sightings win).
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	batch := t.pending
	t.pending = map[string]time.Time{}
	t.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := t.store.TouchClients(ctx, batch); err != nil {
		t.mu.Lock()
		for id, at := range batch {
			if cur, ok := t.pending[id]; !ok || at.After(cur) {
				t.pending[id] = at
			}
		}
		t.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every interval until ctx ends, then flushes once more.
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := t.Flush(fctx); err != nil {
				t.log.Warn("final last-seen flush failed", "err", err)
			}
			cancel()
			return
		case <-tick.C:
			if err := t.Flush(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("last-seen flush failed; will retry", "err", err)
			}
		}
	}
}
