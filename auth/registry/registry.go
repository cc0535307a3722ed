// Package registry is the durable record of every token mcpauth issues:
// who it was for, with which scopes, when it was issued and expires, who
// issued it, and whether (and why, and by whom) it was revoked. It stores
// facts about tokens, never the tokens themselves.
//
// SQLite (pure Go, modernc.org/sqlite) is the embedded default; PostgreSQL
// (pgx) serves several replicas. Both implement Store and pass the same
// contract tests.
package registry

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// Token is one recorded token.
type Token struct {
	JTI       string
	ClientID  string
	Scopes    auth.Scopes
	IssuedAt  time.Time
	ExpiresAt time.Time // zero: never expires
	IssuedBy  string
	// KeyID is the kid of the key that signed the token ("" when not
	// known: recorded before kids were, or imported without one).
	KeyID string
	// RevokedAt is zero unless the token was revoked.
	RevokedAt    time.Time
	RevokedBy    string
	RevokeReason string
}

// Revoked reports whether the token was revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Active reports whether the token is neither expired nor revoked at now.
func (t Token) Active(now time.Time) bool {
	return !t.Revoked() && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(now))
}

// Client summarizes the tokens of one client id.
type Client struct {
	ClientID      string
	ActiveTokens  int
	RevokedTokens int
	TotalTokens   int
	// LatestExpiry is the latest expiry among active tokens that expire;
	// zero when there are none. NeverExpires reports whether an active
	// token has no expiry at all.
	LatestExpiry time.Time
	NeverExpires bool
	LastIssued   time.Time
	// LastSeen is when a token of this client last authenticated; zero
	// when never seen (or not yet flushed).
	LastSeen time.Time
	// Scopes is the union of the scopes of the client's active tokens.
	Scopes auth.Scopes
}

// Revocation is what the in-memory revocation set needs of a revoked
// token: its jti and when it would have expired anyway (zero: never).
type Revocation struct {
	JTI       string
	ExpiresAt time.Time
}

// Errors callers tell apart with errors.Is.
var (
	ErrNotFound = errors.New("token not found in registry")
	// ErrBusy reports a write that could not get the database within the
	// busy timeout (another writer holds it): nothing was written.
	ErrBusy = errors.New("registry busy, retry shortly")
	// ErrFull reports a write refused because the database's disk (or
	// size limit) is full: nothing was written.
	ErrFull         = errors.New("registry storage is full")
	ErrNoSuchClient = errors.New("no tokens recorded for this client")
)

// Store is the registry contract every backend implements.
type Store interface {
	// Record stores an issued token durably before returning.
	Record(ctx context.Context, t auth.IssuedToken) error
	// Get returns one token's record, or ErrNotFound.
	Get(ctx context.Context, jti string) (Token, error)
	// ListTokens returns one client's tokens (all when clientID is
	// empty), newest first.
	ListTokens(ctx context.Context, clientID string) ([]Token, error)
	// ListClients summarizes every client with tokens at now.
	ListClients(ctx context.Context, now time.Time) ([]Client, error)
	// LiveTokensByKey counts the tokens neither revoked nor expired at
	// now by the kid of the key that signed them.
	LiveTokensByKey(ctx context.Context, now time.Time) (map[string]int, error)
	// Revoke marks one token revoked. Revoking a revoked token changes
	// nothing and reports already=true with the original record.
	Revoke(ctx context.Context, jti, by, reason string, at time.Time) (t Token, already bool, err error)
	// RevokeClient revokes every not-yet-revoked token of a client and
	// returns those it revoked; ErrNoSuchClient when the client has no
	// tokens at all.
	RevokeClient(ctx context.Context, clientID, by, reason string, at time.Time) ([]Token, error)
	// ListRevoked returns revoked tokens that have not expired at now
	// (expired ones need no enforcement: they are pruned).
	ListRevoked(ctx context.Context, now time.Time) ([]Revocation, error)
	// TouchClients records last-seen times in one batch, keeping the
	// later time when one is already stored.
	TouchClients(ctx context.Context, seen map[string]time.Time) error
	// Changes delivers a value whenever another process may have changed
	// revocations (PostgreSQL LISTEN/NOTIFY); nil when the backend cannot
	// tell, in which case periodic resync is the only signal.
	Changes() <-chan struct{}
	// Close releases the store.
	Close() error

	StateStore
}

// StateStore keeps short-lived protocol state shared by replicas (see
// State).
type StateStore interface {
	PutState(ctx context.Context, st State) error
	GetState(ctx context.Context, kind, key string, now time.Time) (State, error)
	ConsumeState(ctx context.Context, kind, key string, now time.Time) (State, error)
	UpdateState(ctx context.Context, st State, now time.Time) error
	DeleteStateGroup(ctx context.Context, kind, group string) (int, error)
	ListState(ctx context.Context, kind string, now time.Time) ([]State, error)
	CountState(ctx context.Context, kind string, now time.Time) (int, error)
	ListStateGroup(ctx context.Context, kind, group string, now time.Time) ([]State, error)
	PruneState(ctx context.Context, now time.Time) error
}

// Open opens the registry named by url: "postgres://…" or
// "postgresql://…" selects PostgreSQL; a file path, "sqlite://path" or
// "file:path" selects SQLite.
func Open(ctx context.Context, url string) (Store, error) {
	return OpenWith(ctx, url, Options{})
}

// Options tune how a registry is opened; zero fields get the defaults.
type Options struct {
	// BusyTimeout bounds how long a SQLite write waits for another
	// writer's lock before it fails with ErrBusy; 5s.
	BusyTimeout time.Duration
	// Logger receives PostgreSQL's notification-connection losses and
	// recoveries (as audit events, so /metrics counts them) and
	// withdrawals that could not be queued; slog.Default() when nil.
	Logger *slog.Logger
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, url string, o Options) (Store, error) {
	// Each branch returns a nil interface on error, never a typed nil.
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		s, err := openPostgresWith(ctx, url, o)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := openSQLite(ctx, strings.TrimPrefix(url, "file:"), o)
	if err != nil {
		return nil, err
	}
	return s, nil
}
