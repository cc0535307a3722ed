package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Signing-key states in the registry.
const (
	// KeyActive signs new tokens (one key at a time).
	KeyActive = "active"
	// KeyVerifying no longer signs but still verifies its tokens until
	// its grace ends.
	KeyVerifying = "verifying"
	// KeyRetired verifies nothing: its tokens are refused.
	KeyRetired = "retired"
)

// SigningKey is the registry's record of one signing key: its lifecycle
// and, for a key the registry keeps, its sealed material. A key kept
// outside the registry (MCP_JWT_SECRET, a PEM file) has its lifecycle
// recorded all the same, so every replica retires it at the same time.
type SigningKey struct {
	// ID is the kid.
	ID string
	// Alg is HS256, ES256, EdDSA or RS256.
	Alg string
	// Sealed is the private key or secret encrypted with the key-
	// encryption secret (keys.Seal); nil for a key kept outside.
	Sealed []byte
	// State is KeyActive, KeyVerifying or KeyRetired.
	State string
	// CreatedAt is when it was recorded.
	CreatedAt time.Time
	// GraceFrom is when it stopped signing (zero while active).
	GraceFrom time.Time
	// RetireAt is when its grace ends (zero while undecided).
	RetireAt time.Time
	// RetiredAt is when it was retired.
	RetiredAt time.Time
}

const signingKeyCols = `kid, alg, sealed, state, created_at, grace_from, retire_at, retired_at`

// SigningKeys returns every recorded signing key, oldest first.
func (s *sqlStore) SigningKeys(ctx context.Context) (_ []SigningKey, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+signingKeyCols+` FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("registry: list signing keys: %w", err)
	}
	defer closeRows(rows, &err, "list signing keys")
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var created int64
		var grace, retireAt, retired sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Alg, &k.Sealed, &k.State, &created, &grace, &retireAt, &retired); err != nil {
			return nil, fmt.Errorf("registry: list signing keys: %w", err)
		}
		k.CreatedAt = time.Unix(created, 0)
		k.GraceFrom, k.RetireAt, k.RetiredAt = fromNull(grace), fromNull(retireAt), fromNull(retired)
		out = append(out, k)
	}
	return out, rows.Err()
}

func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(n.Int64, 0)
}

// AddSigningKey records k unless a key with its kid is recorded already
// (added false: the record is left as it is).
func (s *sqlStore) AddSigningKey(ctx context.Context, k SigningKey) (added bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO signing_keys (`+signingKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING`),
			k.ID, k.Alg, k.Sealed, k.State, k.CreatedAt.Unix(), nullUnix(k.GraceFrom), nullUnix(k.RetireAt), nullUnix(k.RetiredAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if added = n == 1; added {
			return s.notifyTx(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("registry: add signing key %s: %w", k.ID, err)
	}
	return added, nil
}

// RotateSigningKey makes k (a new kid) the active key and every key
// active until now a verifying one whose grace starts at k.CreatedAt,
// in one transaction: two rotations at once leave exactly one active
// key. It returns the kids it demoted.
func (s *sqlStore) RotateSigningKey(ctx context.Context, k SigningKey) (demoted []string, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dollar {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT kid FROM signing_keys WHERE state = ?`), KeyActive)
		if err != nil {
			return err
		}
		for rows.Next() {
			var kid string
			if err := rows.Scan(&kid); err != nil {
				rows.Close()
				return err
			}
			demoted = append(demoted, kid)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE signing_keys SET state = ?, grace_from = ?, retire_at = NULL WHERE state = ?`),
			KeyVerifying, k.CreatedAt.Unix(), KeyActive); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO signing_keys (`+signingKeyCols+`) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)`),
			k.ID, k.Alg, k.Sealed, KeyActive, k.CreatedAt.Unix()); err != nil {
			return err
		}
		return s.notifyTx(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("registry: rotate to signing key %s: %w", k.ID, err)
	}
	return demoted, nil
}

// ErrKeyState is returned when a key is not in the state a change
// expects (another replica changed it first).
var ErrKeyState = errors.New("the signing key is not in the expected state")

// UpdateSigningKey sets the lifecycle of the key kid, provided it is in
// state from: state, grace start, end of grace and retirement (zero
// times are stored as none). It returns ErrKeyState when the key is in
// another state, and ErrNotFound when there is no such key.
func (s *sqlStore) UpdateSigningKey(ctx context.Context, kid, from string, to SigningKey) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE signing_keys SET state = ?, grace_from = ?, retire_at = ?, retired_at = ? WHERE kid = ? AND state = ?`),
			to.State, nullUnix(to.GraceFrom), nullUnix(to.RetireAt), nullUnix(to.RetiredAt), kid, from)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var state string
			switch err := tx.QueryRowContext(ctx, s.q(`SELECT state FROM signing_keys WHERE kid = ?`), kid).Scan(&state); {
			case errors.Is(err, sql.ErrNoRows):
				return ErrNotFound
			case err != nil:
				return err
			}
			return fmt.Errorf("%w: it is %s, not %s", ErrKeyState, state, from)
		}
		return s.notifyTx(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("registry: update signing key %s: %w", kid, err)
	}
	return nil
}

// LastExpiry is when the last live token (not revoked, not expired at
// now) recorded with one of kids expires, and whether any such token
// never expires; zero and false when there is none.
func (s *sqlStore) LastExpiry(ctx context.Context, kids []string, now time.Time) (last time.Time, never bool, err error) {
	if len(kids) == 0 {
		return time.Time{}, false, nil
	}
	args := []any{now.Unix()}
	marks := make([]string, len(kids))
	for i, kid := range kids {
		marks[i], args = "?", append(args, kid)
	}
	var maxExp sql.NullInt64
	var nNever int64
	err = s.db.QueryRowContext(ctx, s.q(`SELECT MAX(expires_at), COUNT(*) - COUNT(expires_at) FROM tokens
		WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND kid IN (`+strings.Join(marks, ", ")+`)`), args...).Scan(&maxExp, &nNever)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("registry: last expiry of the tokens of keys %v: %w", kids, err)
	}
	return fromNull(maxExp), nNever > 0, nil
}
