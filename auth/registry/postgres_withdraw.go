package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcpauth/mcpauth/auth"
)

// A Record whose INSERT fails after it may have reached the server (the
// connection broke, or the caller gave up, while the statement was in
// flight) has an unknown outcome: the row may be committed although the
// caller was told the mint failed and never received the token. Such jtis
// are withdrawn: deleted at once when the database answers, else queued
// and deleted as soon as it does, and deleted once more a little later in
// case the INSERT was still running when the first delete ran. A token no
// caller received is then never listed as active.

// maxWithdrawals bounds the queue of jtis waiting to be withdrawn.
const maxWithdrawals = 4096

// withdrawRecheck is how long after a withdrawal it is repeated.
const withdrawRecheck = 10 * time.Second

// Record inserts the token; when the outcome is unknown it withdraws the
// jti (see above) before returning the error.
func (p *Postgres) Record(ctx context.Context, t auth.IssuedToken) error {
	err := insertToken(ctx, p.db, p.q, t)
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered with an error: nothing was written (and a
		// unique violation names someone else's row, never to delete).
		return err
	}
	select {
	case p.withdrawals <- withdrawal{jti: t.JTI}:
	default:
		p.logf("registry: withdrawal queue full; token %s may stay recorded although its mint failed", t.JTI)
	}
	return err
}

type withdrawal struct {
	jti string
	// again is when to delete once more (zero: not yet deleted).
	again time.Time
}

// withdrawLoop deletes queued jtis until ctx ends, retrying each until the
// database answers.
func (p *Postgres) withdrawLoop(ctx context.Context) {
	defer close(p.withdrawDone)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var pending []withdrawal
	for {
		select {
		case <-ctx.Done():
			if len(pending) > 0 {
				p.logf("registry: closing with %d token(s) not yet withdrawn", len(pending))
			}
			return
		case w := <-p.withdrawals:
			pending = append(pending, w)
		case <-tick.C:
		}
		pending = p.withdraw(ctx, pending)
	}
}

// withdraw deletes what is due and returns what is left.
func (p *Postgres) withdraw(ctx context.Context, pending []withdrawal) []withdrawal {
	now := time.Now()
	left := pending[:0]
	for _, w := range pending {
		if !w.again.IsZero() && now.Before(w.again) {
			left = append(left, w)
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := p.db.ExecContext(dctx, `DELETE FROM tokens WHERE jti = $1`, w.jti)
		cancel()
		switch {
		case err != nil:
			left = append(left, w) // the database is still away
		case w.again.IsZero():
			left = append(left, withdrawal{jti: w.jti, again: now.Add(withdrawRecheck)})
		}
	}
	return left
}

func (p *Postgres) logf(format string, args ...any) {
	p.log.Warn(fmt.Sprintf(format, args...))
}
