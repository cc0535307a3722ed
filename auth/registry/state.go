package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// State is short-lived protocol state kept in the registry rather than in
// one process's memory, so that any replica can continue a flow another
// began: OAuth clients, pending authorization requests, authorization
// codes, refresh tokens and enrollment codes. Keys of secrets (codes,
// refresh tokens) are stored as hashes by the caller, never in clear.
type State struct {
	Kind      string
	Key       string
	Group     string // e.g. a refresh-token family
	Value     []byte
	ExpiresAt time.Time
}

// ErrStateExists reports a Put on a key that is taken.
var ErrStateExists = errors.New("state key already exists")

// PutState stores a new item; it fails with ErrStateExists if the key is
// taken by an unexpired item.
func (s *sqlStore) PutState(ctx context.Context, st State) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM oauth_state WHERE kind = ? AND key = ? AND expires_at <= ?`),
			st.Kind, st.Key, time.Now().Unix()); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM oauth_state WHERE kind = ? AND key = ?`), st.Kind, st.Key).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrStateExists
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO oauth_state (kind, key, grp, value, expires_at) VALUES (?, ?, ?, ?, ?)`),
			st.Kind, st.Key, st.Group, string(st.Value), st.ExpiresAt.Unix())
		return err
	})
}

// GetState returns an unexpired item, or ErrNotFound.
func (s *sqlStore) GetState(ctx context.Context, kind, key string, now time.Time) (State, error) {
	st := State{Kind: kind, Key: key}
	var val string
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT grp, value, expires_at FROM oauth_state WHERE kind = ? AND key = ? AND expires_at > ?`),
		kind, key, now.Unix()).Scan(&st.Group, &val, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return State{}, ErrNotFound
	}
	if err != nil {
		return State{}, fmt.Errorf("registry: read %s state: %w", kind, err)
	}
	st.Value, st.ExpiresAt = []byte(val), time.Unix(exp, 0).UTC()
	return st, nil
}

// ConsumeState removes an item and returns it, atomically: of two
// concurrent consumers of one key, exactly one gets it (single-use codes
// and refresh tokens). An expired item is removed and ErrNotFound returned.
func (s *sqlStore) ConsumeState(ctx context.Context, kind, key string, now time.Time) (State, error) {
	st := State{Kind: kind, Key: key}
	var val string
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q(`DELETE FROM oauth_state WHERE kind = ? AND key = ? RETURNING grp, value, expires_at`),
		kind, key).Scan(&st.Group, &val, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return State{}, ErrNotFound
	}
	if err != nil {
		return State{}, fmt.Errorf("registry: consume %s state: %w", kind, err)
	}
	if exp <= now.Unix() {
		return State{}, ErrNotFound
	}
	st.Value, st.ExpiresAt = []byte(val), time.Unix(exp, 0).UTC()
	return st, nil
}

// UpdateState replaces the value of an existing unexpired item.
func (s *sqlStore) UpdateState(ctx context.Context, st State, now time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE oauth_state SET value = ?, expires_at = ? WHERE kind = ? AND key = ? AND expires_at > ?`),
		string(st.Value), st.ExpiresAt.Unix(), st.Kind, st.Key, now.Unix())
	if err != nil {
		return fmt.Errorf("registry: update %s state: %w", st.Kind, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteStateGroup removes every item of a kind in a group (e.g. a whole
// refresh-token family) and returns how many it removed.
func (s *sqlStore) DeleteStateGroup(ctx context.Context, kind, group string) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM oauth_state WHERE kind = ? AND grp = ?`), kind, group)
	if err != nil {
		return 0, fmt.Errorf("registry: delete %s group: %w", kind, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ListState returns the unexpired items of a kind, oldest expiry first.
func (s *sqlStore) ListState(ctx context.Context, kind string, now time.Time) ([]State, error) {
	return s.listState(ctx, kind, `kind = ? AND expires_at > ?`, kind, now.Unix())
}

// CountState counts the unexpired items of a kind.
func (s *sqlStore) CountState(ctx context.Context, kind string, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM oauth_state WHERE kind = ? AND expires_at > ?`), kind, now.Unix()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("registry: count %s state: %w", kind, err)
	}
	return n, nil
}

// ListStateGroup returns the unexpired items of a kind in one group (a
// refresh-token family), oldest expiry first, through the group index.
func (s *sqlStore) ListStateGroup(ctx context.Context, kind, group string, now time.Time) ([]State, error) {
	return s.listState(ctx, kind, `kind = ? AND grp = ? AND expires_at > ?`, kind, group, now.Unix())
}

func (s *sqlStore) listState(ctx context.Context, kind, where string, args ...any) (_ []State, err error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT key, grp, value, expires_at FROM oauth_state WHERE `+where+` ORDER BY expires_at, key`), args...)
	if err != nil {
		return nil, fmt.Errorf("registry: list %s state: %w", kind, err)
	}
	defer closeRows(rows, &err, "list "+kind+" state")
	var out []State
	for rows.Next() {
		st := State{Kind: kind}
		var val string
		var exp int64
		if err := rows.Scan(&st.Key, &st.Group, &val, &exp); err != nil {
			return nil, fmt.Errorf("registry: list %s state: %w", kind, err)
		}
		st.Value, st.ExpiresAt = []byte(val), time.Unix(exp, 0).UTC()
		out = append(out, st)
	}
	return out, rows.Err()
}

// PruneState deletes expired items.
func (s *sqlStore) PruneState(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM oauth_state WHERE expires_at <= ?`), now.Unix())
	if err != nil {
		return fmt.Errorf("registry: prune state: %w", err)
	}
	return nil
}
