// Package registry is the durable record of every token mcpauth issues:
// who it was for, with which scopes, when it was issued and expires, and who
// issued it. It stores facts about tokens, never the tokens themselves.
//
// SQLite (pure Go, modernc.org/sqlite) is the embedded default.
package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Token is one recorded token.
type Token struct {
	JTI       string
	ClientID  string
	Scopes    auth.Scopes
	IssuedAt  time.Time
	ExpiresAt time.Time // zero: never expires
	IssuedBy  string
}

// Client summarizes the tokens of one client id.
type Client struct {
	ClientID     string
	ActiveTokens int
	TotalTokens  int
	// LatestExpiry is the latest expiry among active tokens that expire;
	// zero when there are none. NeverExpires reports whether an active
	// token has no expiry at all.
	LatestExpiry time.Time
	NeverExpires bool
	LastIssued   time.Time
	// Scopes is the union of the scopes of the client's active tokens.
	Scopes auth.Scopes
}

// ErrNotFound reports an unknown jti.
var ErrNotFound = errors.New("token not found in registry")

// SQLite is a registry backed by a SQLite file.
type SQLite struct {
	db *sql.DB
}

// OpenSQLite opens (creating if needed) the SQLite registry at path, in WAL
// mode with full synchronous writes, and applies migrations.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	path = strings.TrimPrefix(path, "sqlite://")
	if path == "" {
		return nil, errors.New("registry: empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		// The path becomes a SQLite URI, where these start the query
		// or fragment; refuse rather than open another file.
		return nil, fmt.Errorf("registry: database path %q must not contain '?' or '#'", path)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("registry: open %s: %w", path, err)
	}
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// migrations are applied in order; the index is the schema version - 1.
var migrations = []string{
	`CREATE TABLE tokens (
		jti        TEXT PRIMARY KEY,
		client_id  TEXT NOT NULL,
		scopes     TEXT NOT NULL DEFAULT '',
		issued_at  INTEGER NOT NULL,
		expires_at INTEGER,
		issued_by  TEXT NOT NULL
	);
	CREATE INDEX tokens_client ON tokens (client_id, issued_at);`,
}

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
	if version > len(migrations) {
		return fmt.Errorf("registry: database schema version %d is newer than this binary supports (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("registry: apply migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return fmt.Errorf("registry: set schema version: %w", err)
	}
	return tx.Commit()
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Record stores an issued token durably; it returns only after the write
// is committed.
func (s *SQLite) Record(ctx context.Context, t auth.IssuedToken) error {
	var exp any
	if !t.ExpiresAt.IsZero() {
		exp = t.ExpiresAt.Unix()
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO tokens (jti, client_id, scopes, issued_at, expires_at, issued_by) VALUES (?, ?, ?, ?, ?, ?)`,
		t.JTI, t.ClientID, t.Scopes.String(), t.IssuedAt.Unix(), exp, t.IssuedBy)
	if err != nil {
		return fmt.Errorf("registry: record token %s: %w", t.JTI, err)
	}
	return nil
}

// Get returns the record of one token.
func (s *SQLite) Get(ctx context.Context, jti string) (Token, error) {
	row := s.db.QueryRowContext(ctx,
		`SELECT jti, client_id, scopes, issued_at, expires_at, issued_by FROM tokens WHERE jti = ?`, jti)
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("registry: get %s: %w", jti, err)
	}
	return t, nil
}

// ListTokens returns the tokens of one client (all clients when clientID is
// empty), newest first.
func (s *SQLite) ListTokens(ctx context.Context, clientID string) ([]Token, error) {
	q := `SELECT jti, client_id, scopes, issued_at, expires_at, issued_by FROM tokens`
	var args []any
	if clientID != "" {
		q += ` WHERE client_id = ?`
		args = append(args, clientID)
	}
	q += ` ORDER BY issued_at DESC, jti`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("registry: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("registry: list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ListClients summarizes every client that has tokens, ordered by client
// id. A token is active when it has not expired at now.
func (s *SQLite) ListClients(ctx context.Context, now time.Time) ([]Client, error) {
	tokens, err := s.ListTokens(ctx, "")
	if err != nil {
		return nil, err
	}
	return Summarize(tokens, now), nil
}

// Summarize groups tokens by client, ordered by client id.
func Summarize(tokens []Token, now time.Time) []Client {
	byID := map[string]*Client{}
	var order []string
	for _, t := range tokens {
		c, ok := byID[t.ClientID]
		if !ok {
			c = &Client{ClientID: t.ClientID}
			byID[t.ClientID] = c
			order = append(order, t.ClientID)
		}
		c.TotalTokens++
		if t.IssuedAt.After(c.LastIssued) {
			c.LastIssued = t.IssuedAt
		}
		active := t.ExpiresAt.IsZero() || t.ExpiresAt.After(now)
		if !active {
			continue
		}
		c.ActiveTokens++
		c.Scopes = auth.NormalizeScopes(append(c.Scopes, t.Scopes...))
		if t.ExpiresAt.IsZero() {
			c.NeverExpires = true
		} else if t.ExpiresAt.After(c.LatestExpiry) {
			c.LatestExpiry = t.ExpiresAt
		}
	}
	slices.Sort(order)
	out := make([]Client, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

type scanner interface{ Scan(dest ...any) error }

func scanToken(sc scanner) (Token, error) {
	var (
		t      Token
		scopes string
		iat    int64
		exp    sql.NullInt64
	)
	if err := sc.Scan(&t.JTI, &t.ClientID, &scopes, &iat, &exp, &t.IssuedBy); err != nil {
		return Token{}, err
	}
	t.Scopes = auth.ParseScopes(scopes)
	t.IssuedAt = time.Unix(iat, 0).UTC()
	if exp.Valid {
		t.ExpiresAt = time.Unix(exp.Int64, 0).UTC()
	}
	return t, nil
}
