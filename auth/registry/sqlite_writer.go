package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/mcpauth/mcpauth/auth"
)

// SQLite allows one writer at a time; concurrent Record calls on separate
// connections would wait for each other in SQLite's busy handler, whose
// back-off sleeps turn a 0.25 ms commit into tens of milliseconds at the
// tail. Records therefore go through one writer goroutine that commits
// whatever has queued up in a single transaction (group commit): each
// caller still returns only after its own row is durable.

// maxBatch bounds how many records one transaction carries.
const maxBatch = 128

type recordReq struct {
	t    auth.IssuedToken
	done chan error
	// state moves once from queued: to taken when the writer starts on
	// it, or to abandoned when its caller gives up first (the writer then
	// skips it). A taken record's caller waits for the outcome, so Record
	// returns nil exactly when the row is committed.
	state *atomic.Int32
}

const (
	queued int32 = iota
	taken
	abandoned
)

// startWriter runs the group-commit writer until stop is closed.
func (s *SQLite) startWriter() {
	// One prepared INSERT saves SQLite parsing the statement on every
	// mint; without it (it cannot fail on a migrated schema) each insert
	// prepares its own.
	if st, err := s.db.Prepare(insertTokenSQL); err == nil {
		s.insert = st
	}
	s.records = make(chan recordReq, maxBatch)
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})
	go s.writeLoop()
}

func (s *SQLite) writeLoop() {
	defer close(s.stopped)
	if s.insert != nil {
		defer s.insert.Close()
	}
	batch := make([]recordReq, 0, maxBatch)
	for {
		select {
		case <-s.stop:
			return
		case r := <-s.records:
			batch = append(batch[:0], r)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.records:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		batch = slices.DeleteFunc(batch, func(r recordReq) bool { return !r.state.CompareAndSwap(queued, taken) })
		if len(batch) == 0 {
			continue
		}
		s.busyWriting.Store(true)
		s.commitBatch(batch)
		s.busyWriting.Store(false)
	}
}

// commitBatch writes a batch in one transaction; if that fails (one bad
// row, e.g. a duplicate jti), each record is retried alone so only the
// bad one fails.
func (s *SQLite) commitBatch(batch []recordReq) {
	ctx := context.Background()
	if len(batch) > 1 {
		tx, err := s.db.BeginTx(ctx, nil)
		if err == nil {
			ins := s.inserter(ctx, tx)
			for _, r := range batch {
				if err = ins(r.t); err != nil {
					break
				}
			}
			if err == nil {
				err = tx.Commit()
			} else {
				_ = tx.Rollback()
			}
			if err == nil {
				for _, r := range batch {
					r.done <- nil
				}
				return
			}
		}
	}
	ins := s.inserter(ctx, nil)
	for _, r := range batch {
		r.done <- ins(r.t)
	}
}

// inserter records tokens in tx (each on its own when tx is nil), with the
// prepared statement when there is one.
func (s *SQLite) inserter(ctx context.Context, tx *sql.Tx) func(auth.IssuedToken) error {
	var db execer = s.db
	if tx != nil {
		db = tx
	}
	if s.insert == nil {
		return func(t auth.IssuedToken) error { return insertToken(ctx, db, s.q, t) }
	}
	st := s.insert
	if tx != nil {
		st = tx.StmtContext(ctx, s.insert)
	}
	return func(t auth.IssuedToken) error {
		if _, err := st.ExecContext(ctx, insertTokenArgs(t)...); err != nil {
			return recordError(t.JTI, err)
		}
		return nil
	}
}

// recordError wraps a failed insert; a lock that outlasted the busy
// timeout is ErrBusy and a full disk ErrFull, so callers can say what
// happened instead of "broken".
func recordError(jti string, err error) error {
	switch sqliteCode(err) {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return fmt.Errorf("registry: record token %s: %w", jti, ErrBusy)
	case 13: // SQLITE_FULL
		return fmt.Errorf("registry: record token %s: %w", jti, ErrFull)
	}
	return fmt.Errorf("registry: record token %s: %w", jti, err)
}

// sqliteCode is the driver's primary result code of err, 0 when none.
func sqliteCode(err error) int {
	var coder interface{ Code() int }
	if errors.As(err, &coder) {
		return coder.Code() & 0xff
	}
	return 0
}

// Record stores an issued token durably through the group-commit writer;
// it returns nil only once the row is committed, and an error only when
// the row will never be written: a caller whose context ends while its
// record is queued withdraws it; one the writer has started is waited for.
func (s *SQLite) Record(ctx context.Context, t auth.IssuedToken) error {
	r := recordReq{t: t, done: make(chan error, 1), state: new(atomic.Int32)}
	select {
	case s.records <- r:
	case <-s.stopped:
		return errors.New("registry: closed")
	case <-ctx.Done():
		return fmt.Errorf("registry: record token %s: %w", t.JTI, ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-s.stopped:
		if r.state.CompareAndSwap(queued, abandoned) {
			return errors.New("registry: closed")
		}
		return <-r.done
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return fmt.Errorf("registry: record token %s: %w", t.JTI, ctx.Err())
		}
		return <-r.done // taken: the commit's outcome is the truth
	}
}
