// Package revocation keeps the in-memory revocation set (auth.RevocationSet)
// in step with the registry: local revocations are written to the registry
// first and then applied at once; revocations made by other processes or
// replicas arrive through the registry's change notifications
// (PostgreSQL LISTEN/NOTIFY) and a periodic full resync as the safety net.
// The registry is never read per request.
package revocation

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// Store is what the service needs of the registry.
type Store interface {
	Revoke(ctx context.Context, jti, by, reason string, at time.Time) (registry.Token, bool, error)
	RevokeClient(ctx context.Context, clientID, by, reason string, at time.Time) ([]registry.Token, error)
	ListRevoked(ctx context.Context, now time.Time) ([]registry.Revocation, error)
	Changes() <-chan struct{}
}

// Config configures a Service.
type Config struct {
	Store Store
	Set   *auth.RevocationSet
	// Resync is the interval of the full resync; 1s when zero.
	Resync time.Duration
	// Leeway is the verifier's leeway: revocations are pruned only once
	// their token is expired beyond it.
	Leeway time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// OnRevoke, when set, is told about every newly revoked token after
	// it is enforced (e.g. to kill the OAuth refresh tokens behind it).
	OnRevoke func(ctx context.Context, revoked []registry.Token)
}

// Service revokes tokens and keeps the revocation set in sync.
type Service struct {
	cfg Config
	// mu orders local revocations against resyncs, so a snapshot read
	// before a local revocation can never replace the set after it.
	mu sync.Mutex
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}

// Set is the revocation set the service maintains.
func (s *Service) Set() *auth.RevocationSet { return s.cfg.Set }

// RevokeJTI revokes one token: recorded in the registry, then enforced.
// already reports a token that was revoked before (nothing changed).
func (s *Service) RevokeJTI(ctx context.Context, jti, by, reason string) (registry.Token, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, already, err := s.cfg.Store.Revoke(ctx, jti, by, reason, s.cfg.Now())
	if err != nil {
		return registry.Token{}, false, err
	}
	s.cfg.Set.Add(map[string]time.Time{t.JTI: t.ExpiresAt})
	if !already && s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke(ctx, []registry.Token{t})
	}
	if !already {
		auth.Audit(ctx, s.cfg.Logger, auth.EventTokenRevoked, "jti", t.JTI, "client_id", t.ClientID, "revoked_by", by, "reason", reason)
	}
	return t, already, nil
}

// RevokeClient revokes every not-yet-revoked token of a client and
// returns those it revoked.
func (s *Service) RevokeClient(ctx context.Context, clientID, by, reason string) ([]registry.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	toks, err := s.cfg.Store.RevokeClient(ctx, clientID, by, reason, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	add := make(map[string]time.Time, len(toks))
	for _, t := range toks {
		add[t.JTI] = t.ExpiresAt
	}
	s.cfg.Set.Add(add)
	if s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke(ctx, append(toks, registry.Token{ClientID: clientID}))
	}
	for _, t := range toks {
		auth.Audit(ctx, s.cfg.Logger, auth.EventTokenRevoked, "jti", t.JTI, "client_id", clientID, "revoked_by", by, "reason", reason)
	}
	auth.Audit(ctx, s.cfg.Logger, auth.EventClientRevoked, "client_id", clientID, "count", len(toks), "revoked_by", by, "reason", reason)
	return toks, nil
}

// Sync replaces the set with the registry's revocations and prunes
// expired ones.
func (s *Service) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	revs, err := s.cfg.Store.ListRevoked(ctx, now.Add(-s.cfg.Leeway))
	if err != nil {
		return fmt.Errorf("revocation sync: %w", err)
	}
	snap := make(map[string]time.Time, len(revs))
	for _, r := range revs {
		snap[r.JTI] = r.ExpiresAt
	}
	s.cfg.Set.Replace(snap)
	s.cfg.Set.Prune(now, s.cfg.Leeway)
	s.cfg.Set.MarkSynced(now)
	return nil
}

// Run resyncs on every change notification and every Resync interval
// until ctx ends. Failures are retried at the next tick; the last good set
// stays in force meanwhile (and the verifier's age bound, when set, fails
// closed once it is too old). Losing and regaining the registry are
// audited once each (revocation.sync_lost, revocation.sync_restored), so
// /metrics counts them.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Resync)
	defer tick.Stop()
	changes := s.cfg.Store.Changes()
	var lostAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-changes:
		}
		err := s.Sync(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && lostAt.IsZero():
			lostAt = s.cfg.Now()
			auth.Audit(ctx, s.cfg.Logger, auth.EventRevocationSyncLost, "err", err.Error(),
				"synced_at", s.cfg.Set.SyncedAt().UTC().Format(time.RFC3339Nano))
		case err != nil:
			s.cfg.Logger.Warn("revocation sync failed; keeping the last known set", "err", err,
				"stale_for", s.cfg.Now().Sub(s.cfg.Set.SyncedAt()).Round(time.Millisecond).String())
		case !lostAt.IsZero():
			auth.Audit(ctx, s.cfg.Logger, auth.EventRevocationSyncRestored,
				"lost_for", s.cfg.Now().Sub(lostAt).Round(time.Millisecond).String())
			lostAt = time.Time{}
		}
	}
}
