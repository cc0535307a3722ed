// Package keyring keeps the server's signing keys in step with the
// registry: keys the registry keeps (sealed with the key-encryption
// secret, shared by every replica), rotation to a new key, the grace
// period during which an old key still verifies, and its retirement.
// Keys from the configuration (MCP_JWT_SECRET, PEM files) have their
// lifecycle recorded the same way, so every replica retires them at the
// same moment.
package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// Store is the registry's record of signing keys (*registry.SQLite,
// *registry.Postgres).
type Store interface {
	SigningKeys(ctx context.Context) ([]registry.SigningKey, error)
	AddSigningKey(ctx context.Context, k registry.SigningKey) (bool, error)
	RotateSigningKey(ctx context.Context, k registry.SigningKey) ([]string, error)
	UpdateSigningKey(ctx context.Context, kid, from string, to registry.SigningKey) error
	LastExpiry(ctx context.Context, kids []string, now time.Time) (time.Time, bool, error)
	// KeyChanges delivers a value when another process may have changed
	// the keys (nil: only the periodic reload tells).
	KeyChanges() <-chan struct{}
}

// Defaults.
const (
	// DefaultGraceMax caps how long a key keeps verifying after it stops
	// signing.
	DefaultGraceMax = 30 * 24 * time.Hour
	// DefaultResync is how often the ring rereads the registry.
	DefaultResync = time.Second
	// DefaultRefreshEvery bounds reloads asked for by unknown kids.
	DefaultRefreshEvery = 5 * time.Second
)

// Config configures a Ring.
type Config struct {
	// Store records the keys' lifecycle (and, with Sealer, the keys).
	Store Store
	// Sealer, when set, makes the registry keep the keys: the active key
	// is the registry's, made (of Alg) on the first start, and Rotate
	// makes new ones. Without it the active key is Active.
	Sealer *keys.Sealer
	// Alg is the algorithm of the keys the ring makes; HS256 when empty.
	Alg string
	// Active is the configured signing key (nil with Sealer).
	Active *keys.Key
	// Verify are the configured keys that only verify (the previous
	// secret, earlier PEM keys, and the secret when another key signs).
	Verify []*keys.Key
	// GraceMax caps a key's grace after it stops signing; DefaultGraceMax
	// when zero.
	GraceMax time.Duration
	// Leeway is the verifier's clock-skew leeway: a key verifies until
	// the last token it signed has expired by that much.
	Leeway time.Duration
	// Resync is how often Run rereads the registry; DefaultResync.
	Resync time.Duration
	// RefreshEvery is the least time between two reloads asked for by
	// unknown kids (Refresh); DefaultRefreshEvery.
	RefreshEvery time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger gets warnings and audit records; discarded when nil.
	Logger *slog.Logger
}

// Ring is the server's live key set (Keys), kept in step with the
// registry.
type Ring struct {
	cfg  Config
	keys *keys.Ring
	// mu serializes building sets (and opened).
	mu sync.Mutex
	// opened caches keys opened from sealed records, by kid.
	opened map[string]*keys.Key
	// refreshMu guards lastRefresh (Refresh's rate bound).
	refreshMu   sync.Mutex
	lastRefresh time.Time
}

// New records the configured keys' lifecycle, makes the first managed
// key when the registry keeps keys and has none, and loads the set.
func New(ctx context.Context, cfg Config) (*Ring, error) {
	if cfg.Store == nil {
		return nil, errors.New("keyring: a store is required")
	}
	if cfg.Sealer == nil && (cfg.Active == nil || !cfg.Active.CanSign()) {
		return nil, errors.New("keyring: a signing key is required unless the registry keeps the keys")
	}
	if cfg.Sealer != nil && cfg.Active != nil {
		return nil, errors.New("keyring: a configured signing key and registry-kept keys exclude each other")
	}
	if cfg.Alg == "" {
		cfg.Alg = keys.HS256
	}
	if err := keys.CheckAlg(cfg.Alg); err != nil {
		return nil, err
	}
	if cfg.GraceMax <= 0 {
		cfg.GraceMax = DefaultGraceMax
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Ring{cfg: cfg, opened: map[string]*keys.Key{}}
	if err := r.adopt(ctx); err != nil {
		return nil, err
	}
	set, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	r.keys = keys.NewRing(set)
	return r, nil
}

// Keys is the live key set: the issuer signs with its active key and the
// verifier checks with its keys.
func (r *Ring) Keys() *keys.Ring { return r.keys }

// Managed reports whether the registry keeps the keys (Rotate works).
func (r *Ring) Managed() bool { return r.cfg.Sealer != nil }

// adopt records the configured keys: the active one as active, the
// others as verifying from now, unless the registry already knows them
// (an active record of a key now configured only to verify is demoted:
// its grace starts). With registry-kept keys and no active one, it makes
// the first.
func (r *Ring) adopt(ctx context.Context) error {
	now := r.cfg.Now()
	recs, err := r.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	byID := map[string]registry.SigningKey{}
	for _, rec := range recs {
		byID[rec.ID] = rec
	}
	if r.cfg.Active != nil {
		if _, ok := byID[r.cfg.Active.ID()]; !ok {
			if _, err := r.cfg.Store.AddSigningKey(ctx, registry.SigningKey{ID: r.cfg.Active.ID(), Alg: r.cfg.Active.Alg(), State: registry.KeyActive, CreatedAt: now}); err != nil {
				return err
			}
		}
	}
	for _, k := range r.cfg.Verify {
		rec, ok := byID[k.ID()]
		switch {
		case !ok:
			if _, err := r.cfg.Store.AddSigningKey(ctx, registry.SigningKey{ID: k.ID(), Alg: k.Alg(), State: registry.KeyVerifying, CreatedAt: now, GraceFrom: now}); err != nil {
				return err
			}
		case rec.State == registry.KeyActive && rec.Sealed == nil:
			err := r.cfg.Store.UpdateSigningKey(ctx, k.ID(), registry.KeyActive, registry.SigningKey{State: registry.KeyVerifying, GraceFrom: now})
			if err != nil && !errors.Is(err, registry.ErrKeyState) {
				return err
			}
		case rec.State == registry.KeyRetired:
			r.cfg.Logger.Warn("a configured key was retired: its tokens are refused; remove it from the configuration",
				"kid", k.ID(), "alg", k.Alg(), "retired_at", rec.RetiredAt.UTC().Format(time.RFC3339))
		}
	}
	if r.cfg.Sealer == nil {
		return nil
	}
	for _, rec := range recs {
		if rec.State == registry.KeyActive && rec.Sealed != nil {
			return nil
		}
	}
	_, err = r.rotate(ctx, r.cfg.Alg, "mcpauth (first start with registry-kept keys)")
	return err
}

// load reads the registry and builds the set: the active key (the
// registry's with Sealer, else the configured one), every other key
// that is not retired, and the lifecycle of each.
func (r *Ring) load(ctx context.Context) (*keys.Set, error) {
	recs, err := r.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	return r.build(recs)
}

// build is load's set from records already read.
func (r *Ring) build(recs []registry.SigningKey) (*keys.Set, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, retired := map[string]time.Time{}, map[string]time.Time{}
	active := r.cfg.Active
	var verify []*keys.Key
	for _, rec := range recs {
		switch rec.State {
		case registry.KeyRetired:
			retired[rec.ID] = rec.RetiredAt
			continue
		case registry.KeyVerifying:
			if !rec.RetireAt.IsZero() {
				until[rec.ID] = rec.RetireAt
			}
		}
		if rec.Sealed == nil || r.cfg.Sealer == nil {
			continue
		}
		k, err := r.open(rec)
		if err != nil {
			return nil, err
		}
		if rec.State == registry.KeyActive {
			active = k
		} else {
			verify = append(verify, k)
		}
	}
	if active == nil {
		return nil, errors.New("keyring: the registry has no active signing key")
	}
	verify = append(verify, r.cfg.Verify...)
	set, err := keys.NewSet(active, verify...)
	if err != nil {
		return nil, err
	}
	return set.WithLifecycle(until, retired), nil
}

// open is the key of a sealed record (opened once per kid).
func (r *Ring) open(rec registry.SigningKey) (*keys.Key, error) {
	if k, ok := r.opened[rec.ID]; ok {
		return k, nil
	}
	k, err := r.cfg.Sealer.Open(rec.ID, rec.Alg, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	r.opened[rec.ID] = k
	return k, nil
}

// Reload rereads the registry and swaps the set when it changed.
func (r *Ring) Reload(ctx context.Context) error {
	set, err := r.load(ctx)
	if err != nil {
		return err
	}
	r.swap(set)
	return nil
}

// swap makes set current unless it is the same as the current one.
func (r *Ring) swap(set *keys.Set) {
	if !sameSet(r.keys.Set(), set) {
		r.keys.Store(set)
	}
}

// sameSet reports whether a and b hold the same keys, active key and
// lifecycle.
func sameSet(a, b *keys.Set) bool {
	if a.Active().ID() != b.Active().ID() || len(a.Keys()) != len(b.Keys()) {
		return false
	}
	for i, k := range a.Keys() {
		if b.Keys()[i].ID() != k.ID() {
			return false
		}
		ua, oka := a.Until(k.ID())
		ub, okb := b.Until(k.ID())
		if oka != okb || !ua.Equal(ub) {
			return false
		}
	}
	ra, rb := a.RetiredKeys(), b.RetiredKeys()
	if len(ra) != len(rb) {
		return false
	}
	for kid := range ra {
		if _, ok := rb[kid]; !ok {
			return false
		}
	}
	return true
}

// Refresh reloads the set for a token naming an unknown kid, at most
// once per RefreshEvery (a flood of made-up kids costs one registry read
// per period), and reports whether the set now holds kid.
func (r *Ring) Refresh(kid string) bool {
	r.refreshMu.Lock()
	now := r.cfg.Now()
	if !r.lastRefresh.IsZero() && now.Sub(r.lastRefresh) < r.cfg.RefreshEvery {
		r.refreshMu.Unlock()
		return false
	}
	r.lastRefresh = now
	r.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.Reload(ctx); err != nil {
		r.cfg.Logger.Warn("cannot reload the signing keys for an unknown kid", "err", err)
		return false
	}
	_, ok := r.keys.Lookup(kid)
	return ok
}

// Rotated is what Rotate did.
type Rotated struct {
	// KeyID and Alg are the new active key's.
	KeyID string `json:"kid"`
	Alg   string `json:"alg"`
	// Previous are the kids that stopped signing; each verifies through
	// its grace.
	Previous []string `json:"previous"`
	// GraceMax caps their grace.
	GraceMax string `json:"grace_max"`
}

// ErrNotManaged refuses a rotation when the registry does not keep the
// keys.
var ErrNotManaged = errors.New("key rotation needs registry-kept keys: set MCP_KEY_ENCRYPTION_SECRET (a secret of at least 32 bytes that encrypts the keys in the registry); keys from MCP_JWT_SECRET or PEM files are rotated by changing those settings (the old secret to MCP_JWT_SECRET_PREVIOUS, the old PEM file to MCP_VERIFY_KEY_FILES)")

// Rotate makes a new key of alg (the configured algorithm when empty)
// the active one; the keys that signed until now verify through their
// grace. by names who asked, for the audit record.
func (r *Ring) Rotate(ctx context.Context, alg, by string) (Rotated, error) {
	if r.cfg.Sealer == nil {
		return Rotated{}, ErrNotManaged
	}
	if alg == "" {
		alg = r.keys.Active().Alg()
	}
	if err := keys.CheckAlg(alg); err != nil {
		return Rotated{}, err
	}
	out, err := r.rotate(ctx, alg, by)
	if err != nil {
		return Rotated{}, err
	}
	return out, r.Reload(ctx)
}

func (r *Ring) rotate(ctx context.Context, alg, by string) (Rotated, error) {
	var k *keys.Key
	var err error
	if alg == keys.HS256 {
		k, err = keys.GenerateHMAC()
	} else {
		k, err = keys.Generate(alg)
	}
	if err != nil {
		return Rotated{}, err
	}
	sealed, err := r.cfg.Sealer.Seal(k)
	if err != nil {
		return Rotated{}, err
	}
	prev, err := r.cfg.Store.RotateSigningKey(ctx, registry.SigningKey{ID: k.ID(), Alg: alg, Sealed: sealed, CreatedAt: r.cfg.Now()})
	if err != nil {
		return Rotated{}, err
	}
	auth.Audit(ctx, r.cfg.Logger, auth.EventKeyRotated, "kid", k.ID(), "alg", alg, "previous", prev, "by", by)
	return Rotated{KeyID: k.ID(), Alg: alg, Previous: prev, GraceMax: r.cfg.GraceMax.String()}, nil
}

// Run rereads the registry every Resync and on every change
// notification, decides and ends the grace of keys that stopped signing,
// until ctx ends. Failures are logged and retried; the last good set
// stays in force.
func (r *Ring) Run(ctx context.Context) {
	tick := time.NewTicker(r.cfg.Resync)
	defer tick.Stop()
	changes := r.cfg.Store.KeyChanges()
	for {
		if err := r.step(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("signing keys: cannot sync with the registry; keeping the current set", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-changes:
		}
	}
}

// step retires what is due, then reloads: one read of the registry
// when nothing changed.
func (r *Ring) step(ctx context.Context) error {
	recs, err := r.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	changed, err := r.retire(ctx, recs)
	if err != nil {
		return err
	}
	if changed {
		return r.Reload(ctx)
	}
	set, err := r.build(recs)
	if err != nil {
		return err
	}
	r.swap(set)
	return nil
}

// Retire decides when each verifying key's grace ends (the last live
// token it signed expires, plus the leeway, capped by GraceMax from when
// it stopped signing) and retires those whose grace has ended. Every
// replica may run it at once: each change applies only to a key still in
// the state it read.
func (r *Ring) Retire(ctx context.Context) error {
	recs, err := r.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	_, err = r.retire(ctx, recs)
	return err
}

// retire is Retire over records already read; changed reports whether it
// changed any.
func (r *Ring) retire(ctx context.Context, recs []registry.SigningKey) (changed bool, err error) {
	now := r.cfg.Now()
	for _, rec := range recs {
		if rec.State != registry.KeyVerifying || (r.cfg.Active != nil && rec.ID == r.cfg.Active.ID()) {
			continue
		}
		if !rec.RetireAt.IsZero() && now.Before(rec.RetireAt) {
			continue
		}
		end, err := r.graceEnd(ctx, rec, now)
		if err != nil {
			return changed, err
		}
		next := rec
		if now.Before(end) {
			if end.Equal(rec.RetireAt) {
				continue
			}
			next.RetireAt = end // decided, or extended by a token minted late
		} else {
			next.State, next.RetireAt, next.RetiredAt = registry.KeyRetired, end, now
		}
		err = r.cfg.Store.UpdateSigningKey(ctx, rec.ID, registry.KeyVerifying, next)
		switch {
		case errors.Is(err, registry.ErrKeyState):
			changed = true // another replica got there first: reread
			continue
		case err != nil:
			return changed, err
		}
		changed = true
		if next.State == registry.KeyRetired {
			auth.Audit(ctx, r.cfg.Logger, auth.EventKeyRetired, "kid", rec.ID, "alg", rec.Alg,
				"grace_from", rec.GraceFrom.UTC().Format(time.RFC3339))
		}
	}
	return changed, nil
}

// graceEnd is when rec's grace ends: the last expiry of its live tokens
// plus the leeway (at least the leeway after it stopped signing), capped
// by GraceMax. Only recorded tokens count: a token signed elsewhere with
// a configured secret is honoured only while the secret verifies, so
// such tokens are imported (token import) before a switch.
func (r *Ring) graceEnd(ctx context.Context, rec registry.SigningKey, now time.Time) (time.Time, error) {
	from := rec.GraceFrom
	if from.IsZero() {
		from = now
	}
	limit := from.Add(r.cfg.GraceMax)
	kids := []string{rec.ID}
	if rec.Alg == keys.HS256 {
		// Tokens recorded before tokens named their key were all HS256
		// (and token import records legacy scripts' tokens without one):
		// an HMAC secret may have signed them.
		kids = append(kids, "")
	}
	last, never, err := r.cfg.Store.LastExpiry(ctx, kids, now)
	if err != nil {
		return time.Time{}, err
	}
	if never {
		return limit, nil
	}
	end := from.Add(r.cfg.Leeway)
	if t := last.Add(r.cfg.Leeway); t.After(end) {
		end = t
	}
	if end.After(limit) {
		end = limit
	}
	return end.Truncate(time.Second), nil
}
