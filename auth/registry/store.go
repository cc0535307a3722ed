package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// sqlStore implements Store over database/sql for both backends. Queries
// are written with '?' placeholders and rebound for PostgreSQL; times are
// stored as Unix seconds (BIGINT) in both, so they compare the same way.
type sqlStore struct {
	db *sql.DB
	// dollar rebinds '?' to $1, $2, … (PostgreSQL).
	dollar bool
	// notify, when set, runs inside a revoking transaction to tell other
	// processes (PostgreSQL NOTIFY).
	notify func(ctx context.Context, tx *sql.Tx) error
}

func (s *sqlStore) q(query string) string {
	if !s.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

const tokenCols = `jti, client_id, scopes, issued_at, expires_at, issued_by, revoked_at, revoked_by, revoke_reason, kid`

// Record stores an issued token durably; it returns only after the write
// is committed.
func (s *sqlStore) Record(ctx context.Context, t auth.IssuedToken) error {
	return insertToken(ctx, s.db, s.q, t)
}

// execer is a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertTokenSQL records one issued token (with ? placeholders).
const insertTokenSQL = `INSERT INTO tokens (jti, client_id, scopes, issued_at, expires_at, issued_by, kid) VALUES (?, ?, ?, ?, ?, ?, ?)`

func insertTokenArgs(t auth.IssuedToken) []any {
	return []any{t.JTI, t.ClientID, t.Scopes.String(), t.IssuedAt.Unix(), nullUnix(t.ExpiresAt), t.IssuedBy, t.KeyID}
}

func insertToken(ctx context.Context, db execer, q func(string) string, t auth.IssuedToken) error {
	if _, err := db.ExecContext(ctx, q(insertTokenSQL), insertTokenArgs(t)...); err != nil {
		return recordError(t.JTI, err)
	}
	return nil
}

// Get returns the record of one token.
func (s *sqlStore) Get(ctx context.Context, jti string) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE jti = ?`), jti))
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
func (s *sqlStore) ListTokens(ctx context.Context, clientID string) ([]Token, error) {
	q := `SELECT ` + tokenCols + ` FROM tokens`
	var args []any
	if clientID != "" {
		q += ` WHERE client_id = ?`
		args = append(args, clientID)
	}
	q += ` ORDER BY issued_at DESC, jti`
	return s.queryTokens(ctx, s.q(q), args...)
}

// LiveTokensByKey counts, by the kid of the key that signed them, the
// tokens neither revoked nor expired at now ("" counts those whose key is
// not known).
func (s *sqlStore) LiveTokensByKey(ctx context.Context, now time.Time) (_ map[string]int, err error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT kid, COUNT(*) FROM tokens
		WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) GROUP BY kid`), now.Unix())
	if err != nil {
		return nil, fmt.Errorf("registry: count tokens by key: %w", err)
	}
	defer closeRows(rows, &err, "count tokens by key")
	out := map[string]int{}
	for rows.Next() {
		var kid string
		var n int
		if err := rows.Scan(&kid, &n); err != nil {
			return nil, fmt.Errorf("registry: count tokens by key: %w", err)
		}
		out[kid] = n
	}
	return out, rows.Err()
}

func (s *sqlStore) queryTokens(ctx context.Context, q string, args ...any) (_ []Token, err error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("registry: list tokens: %w", err)
	}
	defer closeRows(rows, &err, "list tokens")
	out, err := scanTokens(rows)
	if err != nil {
		return nil, fmt.Errorf("registry: list tokens: %w", err)
	}
	return out, nil
}

// scanTokens reads every row; the caller closes rows.
func scanTokens(rows *sql.Rows) ([]Token, error) {
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ListClients summarizes every client that has tokens, ordered by client
// id, with last-seen times. The database aggregates (one row per client),
// so the cost does not grow with every token ever issued being sent over.
func (s *sqlStore) ListClients(ctx context.Context, now time.Time) ([]Client, error) {
	concat := "group_concat(%s, ' ')"
	if s.dollar {
		concat = "string_agg(%s, ' ')"
	}
	// A token is active when not revoked and not expired at now (as
	// Token.Active: expires_at is whole seconds, so > now.Unix() is the
	// same as after now).
	const active = `revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`
	q := `SELECT client_id, COUNT(*),
		SUM(CASE WHEN revoked_at IS NOT NULL THEN 1 ELSE 0 END),
		SUM(CASE WHEN ` + active + ` THEN 1 ELSE 0 END),
		MAX(issued_at),
		MAX(CASE WHEN ` + active + ` THEN expires_at END),
		MAX(CASE WHEN revoked_at IS NULL AND expires_at IS NULL THEN 1 ELSE 0 END),
		` + fmt.Sprintf(concat, `CASE WHEN `+active+` THEN scopes END`) + `
		FROM tokens GROUP BY client_id`
	n := now.Unix()
	clients, err := s.summarizeClients(ctx, s.q(q), n, n, n)
	if err != nil {
		return nil, err
	}
	// Byte order, whatever the database's collation.
	slices.SortFunc(clients, func(a, b Client) int { return strings.Compare(a.ClientID, b.ClientID) })
	seen, err := s.lastSeen(ctx)
	if err != nil {
		return nil, err
	}
	for i := range clients {
		clients[i].LastSeen = seen[clients[i].ClientID]
	}
	return clients, nil
}

// summarizeClients reads ListClients' aggregate, one row per client.
func (s *sqlStore) summarizeClients(ctx context.Context, q string, args ...any) (_ []Client, err error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("registry: summarize clients: %w", err)
	}
	defer closeRows(rows, &err, "summarize clients")
	clients := []Client{}
	for rows.Next() {
		var (
			c                   Client
			total, revoked, act int64
			lastIssued, never   int64
			latestExpiry        sql.NullInt64
			scopes              sql.NullString
		)
		if err := rows.Scan(&c.ClientID, &total, &revoked, &act, &lastIssued, &latestExpiry, &never, &scopes); err != nil {
			return nil, fmt.Errorf("registry: summarize clients: %w", err)
		}
		c.TotalTokens, c.RevokedTokens, c.ActiveTokens = int(total), int(revoked), int(act)
		c.LastIssued = time.Unix(lastIssued, 0).UTC()
		if latestExpiry.Valid {
			c.LatestExpiry = time.Unix(latestExpiry.Int64, 0).UTC()
		}
		c.NeverExpires = never == 1
		c.Scopes = auth.ParseScopes(scopes.String)
		slices.Sort(c.Scopes)
		clients = append(clients, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry: summarize clients: %w", err)
	}
	return clients, nil
}

// lastSeen reads every client's last-seen time.
func (s *sqlStore) lastSeen(ctx context.Context) (_ map[string]time.Time, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client_id, last_seen FROM client_seen`)
	if err != nil {
		return nil, fmt.Errorf("registry: read last-seen times: %w", err)
	}
	defer closeRows(rows, &err, "read last-seen times")
	seen := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("registry: read last-seen times: %w", err)
		}
		seen[id] = time.Unix(at, 0).UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry: read last-seen times: %w", err)
	}
	return seen, nil
}

// Revoke marks one token revoked; see Store.
func (s *sqlStore) Revoke(ctx context.Context, jti, by, reason string, at time.Time) (Token, bool, error) {
	var out Token
	var already bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := scanToken(tx.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE jti = ?`), jti))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if t.Revoked() {
			out, already = t, true
			return nil
		}
		res, err := tx.ExecContext(ctx, s.q(
			`UPDATE tokens SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE jti = ? AND revoked_at IS NULL`),
			at.Unix(), by, reason, jti)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// Revoked by a concurrent transaction since the read above
			// (possible under PostgreSQL's READ COMMITTED; SQLite's
			// immediate transactions exclude it): report that revocation.
			t, err := scanToken(tx.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE jti = ?`), jti))
			if err != nil {
				return err
			}
			out, already = t, true
			return nil
		}
		t.RevokedAt, t.RevokedBy, t.RevokeReason = time.Unix(at.Unix(), 0).UTC(), by, reason
		out = t
		return s.notifyTx(ctx, tx)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Token{}, false, err
		}
		return Token{}, false, fmt.Errorf("registry: revoke %s: %w", jti, err)
	}
	return out, already, nil
}

// RevokeClient revokes every not-yet-revoked token of a client; see Store.
func (s *sqlStore) RevokeClient(ctx context.Context, clientID, by, reason string, at time.Time) ([]Token, error) {
	var out []Token
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM tokens WHERE client_id = ?`), clientID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNoSuchClient
		}
		// UPDATE … RETURNING reports exactly the rows this statement
		// revoked, even when other transactions revoke or record tokens
		// of the client concurrently (PostgreSQL, READ COMMITTED).
		rows, err := tx.QueryContext(ctx, s.q(
			`UPDATE tokens SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE client_id = ? AND revoked_at IS NULL RETURNING `+tokenCols),
			at.Unix(), by, reason, clientID)
		if err != nil {
			return err
		}
		out, err = scanTokens(rows)
		if err := errors.Join(err, rows.Close()); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		// Newest first, ties by jti (byte order, as SQLite's BINARY
		// collation): RETURNING has no ORDER BY.
		slices.SortFunc(out, func(a, b Token) int {
			if c := b.IssuedAt.Compare(a.IssuedAt); c != 0 {
				return c
			}
			return strings.Compare(a.JTI, b.JTI)
		})
		return s.notifyTx(ctx, tx)
	})
	if err != nil {
		if errors.Is(err, ErrNoSuchClient) {
			return nil, fmt.Errorf("%w: %q", ErrNoSuchClient, clientID)
		}
		return nil, fmt.Errorf("registry: revoke client %s: %w", clientID, err)
	}
	return out, nil
}

// ListRevoked returns revoked tokens not yet expired at now.
func (s *sqlStore) ListRevoked(ctx context.Context, now time.Time) (_ []Revocation, err error) {
	rows, err := s.db.QueryContext(ctx, s.q(
		`SELECT jti, expires_at FROM tokens WHERE revoked_at IS NOT NULL AND (expires_at IS NULL OR expires_at > ?)`), now.Unix())
	if err != nil {
		return nil, fmt.Errorf("registry: list revoked: %w", err)
	}
	defer closeRows(rows, &err, "list revoked")
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var exp sql.NullInt64
		if err := rows.Scan(&r.JTI, &exp); err != nil {
			return nil, fmt.Errorf("registry: list revoked: %w", err)
		}
		if exp.Valid {
			r.ExpiresAt = time.Unix(exp.Int64, 0).UTC()
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry: list revoked: %w", err)
	}
	return out, nil
}

// TouchClients upserts last-seen times, never moving one backwards.
func (s *sqlStore) TouchClients(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) (err error) {
		stmt, err := tx.PrepareContext(ctx, s.q(
			`INSERT INTO client_seen (client_id, last_seen) VALUES (?, ?)
			 ON CONFLICT (client_id) DO UPDATE SET last_seen = excluded.last_seen
			 WHERE excluded.last_seen > client_seen.last_seen`))
		if err != nil {
			return fmt.Errorf("registry: touch clients: %w", err)
		}
		defer func() {
			if cerr := stmt.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("registry: touch clients: %w", cerr))
			}
		}()
		for id, at := range seen {
			if _, err := stmt.ExecContext(ctx, id, at.Unix()); err != nil {
				return fmt.Errorf("registry: touch client %s: %w", id, err)
			}
		}
		return nil
	})
}

func (s *sqlStore) notifyTx(ctx context.Context, tx *sql.Tx) error {
	if s.notify == nil {
		return nil
	}
	return s.notify(ctx, tx)
}

func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// closeRows closes rows and joins a failure to close into *err, worded as
// the read's other errors: a read is not reported whole unless its rows
// were released.
func closeRows(rows *sql.Rows, err *error, what string) {
	if cerr := rows.Close(); cerr != nil {
		*err = errors.Join(*err, fmt.Errorf("registry: %s: %w", what, cerr))
	}
}

func nullUnix(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

type scanner interface{ Scan(dest ...any) error }

func scanToken(sc scanner) (Token, error) {
	var (
		t                    Token
		scopes               string
		iat                  int64
		exp, revokedAt       sql.NullInt64
		revokedBy, revReason sql.NullString
	)
	if err := sc.Scan(&t.JTI, &t.ClientID, &scopes, &iat, &exp, &t.IssuedBy, &revokedAt, &revokedBy, &revReason, &t.KeyID); err != nil {
		return Token{}, err
	}
	t.Scopes = auth.ParseScopes(scopes)
	t.IssuedAt = time.Unix(iat, 0).UTC()
	if exp.Valid {
		t.ExpiresAt = time.Unix(exp.Int64, 0).UTC()
	}
	if revokedAt.Valid {
		t.RevokedAt = time.Unix(revokedAt.Int64, 0).UTC()
		t.RevokedBy = revokedBy.String
		t.RevokeReason = revReason.String
	}
	return t, nil
}
