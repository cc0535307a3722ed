package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SQLite is a registry backed by a SQLite file (WAL mode, full sync).
type SQLite struct {
	*sqlStore
	records chan recordReq
	insert  *sql.Stmt // prepared insertTokenSQL, used by the writer
	stop    chan struct{}
	stopped chan struct{}
	// busyWriting is true while the writer commits a batch (tests).
	busyWriting atomic.Bool
	closeOnce   sync.Once
	closeErr    error
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the SQLite registry at path, in WAL
// mode with full synchronous writes, and applies migrations.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	return openSQLite(ctx, path, Options{})
}

func openSQLite(ctx context.Context, path string, o Options) (*SQLite, error) {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	path = strings.TrimPrefix(path, "sqlite://")
	if path == "" {
		return nil, errors.New("registry: empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		// The path becomes a SQLite URI, where these start the query
		// or fragment; refuse rather than open another file.
		return nil, fmt.Errorf("registry: database path %q must not contain '?' or '#'", path)
	}
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(%d)&_pragma=foreign_keys(ON)&_txlock=immediate",
		path, max(o.BusyTimeout.Milliseconds(), 1))
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("registry: open %s: %w", path, err)
	}
	s := &SQLite{sqlStore: &sqlStore{db: db}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.startWriter()
	return s, nil
}

// sqliteMigrations are applied in order; the index is the schema version
// - 1 (PRAGMA user_version).
var sqliteMigrations = []string{
	`CREATE TABLE tokens (
		jti        TEXT PRIMARY KEY,
		client_id  TEXT NOT NULL,
		scopes     TEXT NOT NULL DEFAULT '',
		issued_at  INTEGER NOT NULL,
		expires_at INTEGER,
		issued_by  TEXT NOT NULL
	);
	CREATE INDEX tokens_client ON tokens (client_id, issued_at);`,
	`ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;
	ALTER TABLE tokens ADD COLUMN revoked_by TEXT;
	ALTER TABLE tokens ADD COLUMN revoke_reason TEXT;
	CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
	CREATE TABLE client_seen (
		client_id TEXT PRIMARY KEY,
		last_seen INTEGER NOT NULL
	);`,
	`CREATE TABLE oauth_state (
		kind       TEXT NOT NULL,
		key        TEXT NOT NULL,
		grp        TEXT NOT NULL DEFAULT '',
		value      TEXT NOT NULL,
		expires_at INTEGER NOT NULL,
		PRIMARY KEY (kind, key)
	);
	CREATE INDEX oauth_state_grp ON oauth_state (kind, grp);
	CREATE INDEX oauth_state_exp ON oauth_state (expires_at);`,
	// The kid of the key that signed each token ("" for tokens recorded
	// before).
	`ALTER TABLE tokens ADD COLUMN kid TEXT NOT NULL DEFAULT '';`,
	// Signing keys: each key's lifecycle, and the sealed material of
	// those the registry keeps (SigningKey).
	`CREATE TABLE signing_keys (
		kid        TEXT PRIMARY KEY,
		alg        TEXT NOT NULL,
		sealed     BLOB,
		state      TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		grace_from INTEGER,
		retire_at  INTEGER,
		retired_at INTEGER
	);
	CREATE INDEX tokens_kid ON tokens (kid, expires_at);`,
}

// migrations is kept for tests that check the schema version.
var migrations = sqliteMigrations

// migrate applies pending migrations in one immediate transaction, so two
// processes opening the same file at once apply them exactly once.
func (s *SQLite) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("registry: migrate: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("registry: read schema version: %w", err)
	}
	if version > len(sqliteMigrations) {
		return fmt.Errorf("registry: database schema version %d is newer than this binary supports (%d)", version, len(sqliteMigrations))
	}
	for i := version; i < len(sqliteMigrations); i++ {
		if _, err := tx.ExecContext(ctx, sqliteMigrations[i]); err != nil {
			return fmt.Errorf("registry: apply migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(sqliteMigrations))); err != nil {
		return fmt.Errorf("registry: set schema version: %w", err)
	}
	return tx.Commit()
}

// Changes returns nil: SQLite cannot signal other processes, so the
// periodic resync is what picks up their revocations.
func (s *SQLite) Changes() <-chan struct{} { return nil }

// KeyChanges returns nil, as Changes does.
func (s *SQLite) KeyChanges() <-chan struct{} { return nil }

// Close stops the writer (after the batch in flight) and closes the
// database.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.stopped
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}
