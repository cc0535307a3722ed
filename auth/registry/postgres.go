package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/mcpauth/mcpauth/auth"
)

// Postgres is a registry backed by PostgreSQL, shared by several replicas.
// Revocations are announced with NOTIFY on revocationChannel inside the
// revoking transaction; every replica LISTENs on a dedicated connection
// and learns about them through Changes.
type Postgres struct {
	*sqlStore

	cfg     *pgx.ConnConfig // for the LISTEN connection and its reconnects
	changes chan struct{}
	// keyChanges is signalled with changes, for the key ring (a second
	// consumer: each channel has one reader).
	keyChanges chan struct{}
	cancel     context.CancelFunc
	done       chan struct{} // closed when the listener goroutine has exited
	// listenerPID is the backend pid of the current LISTEN connection (0
	// while disconnected); tests use it to kill that connection.
	listenerPID atomic.Uint32
	// notified counts the notifications the listener has received; tests
	// wait on it instead of sleeping.
	notified atomic.Uint64

	closeOnce sync.Once
	closeErr  error

	// withdrawals queue jtis whose Record had an unknown outcome (see
	// postgres_withdraw.go); withdrawDone closes when the loop exits.
	withdrawals  chan withdrawal
	withdrawDone chan struct{}
	log          *slog.Logger
}

var _ Store = (*Postgres)(nil)

const (
	// revocationChannel is the NOTIFY channel revocations are announced on.
	revocationChannel = "mcpauth_revocations"
	// migrationLockKey is the pg_advisory_xact_lock key held while
	// migrating ("mcpauth1" in ASCII), so concurrent replicas apply each
	// migration exactly once.
	migrationLockKey int64 = 0x6d63706175746831

	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
	// listenIdleCheck is how long the listener waits for a notification
	// before pinging the server, so a silently dead connection is noticed.
	listenIdleCheck   = 30 * time.Second
	listenPingTimeout = 5 * time.Second
	listenDialTimeout = 10 * time.Second
)

// postgresMigrations are applied in order; migration i has version i+1
// in schema_migrations. Each is a list of statements run in the migrating
// transaction. The schema mirrors sqliteMigrations: times are Unix seconds
// in BIGINT columns; ids use the "C" collation so they sort byte-wise, as
// in SQLite.
var postgresMigrations = [][]string{
	{
		`CREATE TABLE tokens (
			jti        TEXT COLLATE "C" PRIMARY KEY,
			client_id  TEXT COLLATE "C" NOT NULL,
			scopes     TEXT NOT NULL DEFAULT '',
			issued_at  BIGINT NOT NULL,
			expires_at BIGINT,
			issued_by  TEXT NOT NULL
		)`,
		`CREATE INDEX tokens_client ON tokens (client_id, issued_at)`,
	},
	{
		`ALTER TABLE tokens
			ADD COLUMN revoked_at BIGINT,
			ADD COLUMN revoked_by TEXT,
			ADD COLUMN revoke_reason TEXT`,
		`CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at IS NOT NULL`,
		`CREATE TABLE client_seen (
			client_id TEXT COLLATE "C" PRIMARY KEY,
			last_seen BIGINT NOT NULL
		)`,
	},
	{
		`CREATE TABLE oauth_state (
			kind       TEXT COLLATE "C" NOT NULL,
			key        TEXT COLLATE "C" NOT NULL,
			grp        TEXT COLLATE "C" NOT NULL DEFAULT '',
			value      TEXT NOT NULL,
			expires_at BIGINT NOT NULL,
			PRIMARY KEY (kind, key)
		)`,
		`CREATE INDEX oauth_state_grp ON oauth_state (kind, grp)`,
		`CREATE INDEX oauth_state_exp ON oauth_state (expires_at)`,
	},
	{
		// The kid of the key that signed each token ("" for tokens
		// recorded before).
		`ALTER TABLE tokens ADD COLUMN kid TEXT COLLATE "C" NOT NULL DEFAULT ''`,
	},
	{
		// Signing keys: each key's lifecycle, and the sealed material of
		// those the registry keeps (SigningKey).
		`CREATE TABLE signing_keys (
			kid        TEXT COLLATE "C" PRIMARY KEY,
			alg        TEXT NOT NULL,
			sealed     BYTEA,
			state      TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			grace_from BIGINT,
			retire_at  BIGINT,
			retired_at BIGINT
		)`,
		`CREATE INDEX tokens_kid ON tokens (kid, expires_at)`,
	},
}

// OpenPostgres connects to the PostgreSQL registry at url
// ("postgres://user@host:port/db?sslmode=…"), applies pending migrations
// and starts listening for revocations made by other processes. Extra URL
// parameters such as search_path are sent as session settings, so tables
// live in the first schema of search_path.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	return openPostgresWith(ctx, url, Options{})
}

func openPostgresWith(ctx context.Context, url string, o Options) (*Postgres, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The parse error quotes the URL; pgx masks the password but only
		// on a best-effort basis, so mask again and do not wrap it (its
		// ConnString field holds the URL verbatim).
		return nil, errors.New(redact("registry: invalid PostgreSQL URL: "+err.Error(), urlSecrets(url)...))
	}
	secrets := urlSecrets(url)
	if cfg.Password != "" {
		secrets = append(secrets, cfg.Password)
	}
	fail := func(what string, err error) error {
		return &redactedError{msg: redact("registry: "+what+": "+err.Error(), secrets...), err: err}
	}

	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fail("connect to PostgreSQL", err)
	}
	if err := migratePostgres(ctx, db); err != nil {
		db.Close()
		return nil, &redactedError{msg: redact(err.Error(), secrets...), err: err}
	}
	// LISTEN before returning, so no revocation committed after Open
	// returns can go unnoticed.
	conn, err := listenConn(ctx, cfg)
	if err != nil {
		db.Close()
		return nil, fail("listen for revocations", err)
	}

	p := &Postgres{
		sqlStore:   &sqlStore{db: db, dollar: true, notify: notifyRevocation},
		cfg:        cfg,
		changes:    make(chan struct{}, 1),
		keyChanges: make(chan struct{}, 1),
		done:       make(chan struct{}),

		withdrawals:  make(chan withdrawal, maxWithdrawals),
		withdrawDone: make(chan struct{}),
		log:          o.Logger,
	}
	lctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.listenerPID.Store(conn.PgConn().PID())
	go p.listen(lctx, conn)
	go p.withdrawLoop(lctx)
	return p, nil
}

// notifyRevocation runs in every revoking transaction; PostgreSQL
// delivers the notification to listeners when the transaction commits.
func notifyRevocation(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify('`+revocationChannel+`', '')`)
	return err
}

// migratePostgres applies pending migrations in one transaction holding
// an advisory lock, so replicas starting together apply each migration
// exactly once, and a failed migration leaves the schema as it was.
func migratePostgres(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("registry: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("registry: migrate: take migration lock: %w", err)
	}
	var schema sql.NullString
	var searchPath string
	if err := tx.QueryRowContext(ctx, `SELECT current_schema(), current_setting('search_path')`).Scan(&schema, &searchPath); err != nil {
		return fmt.Errorf("registry: migrate: read current schema: %w", err)
	}
	if !schema.Valid {
		return fmt.Errorf("registry: migrate: no schema of search_path %q exists to create the registry tables in", searchPath)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INT PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("registry: migrate: create schema_migrations: %w", err)
	}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return fmt.Errorf("registry: read schema version: %w", err)
	}
	if version > len(postgresMigrations) {
		return fmt.Errorf("registry: database schema version %d is newer than this binary supports (%d)", version, len(postgresMigrations))
	}
	if version == len(postgresMigrations) {
		return nil // up to date; the deferred rollback only releases the lock
	}
	for i := version; i < len(postgresMigrations); i++ {
		for _, stmt := range postgresMigrations[i] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("registry: apply migration %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
			return fmt.Errorf("registry: record migration %d: %w", i+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("registry: migrate: commit: %w", err)
	}
	return nil
}

// listenConn opens a dedicated connection listening on revocationChannel.
func listenConn(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, listenDialTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+revocationChannel); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// listen owns the LISTEN connection until ctx is cancelled. Each
// notification becomes a non-blocking send on p.changes (buffer 1, so a
// burst collapses into one pending value). When the connection is lost it
// reconnects, waiting 100ms, 200ms, … up to 5s between attempts (reset
// once a connection has stayed up that long), and after re-LISTENing sends
// one value: notifications sent while it was down are lost, so consumers
// must resync.
func (p *Postgres) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(p.done)
	backoff := listenMinBackoff
	connectedAt := time.Now()
	var lostAt time.Time
	for {
		if conn == nil {
			p.listenerPID.Store(0)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, listenMaxBackoff)
			c, err := listenConn(ctx, p.cfg)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			auth.Audit(ctx, p.log, auth.EventRevocationListenRestored, "lost_for", time.Since(lostAt).Round(time.Millisecond).String())
			conn, connectedAt = c, time.Now()
			p.listenerPID.Store(conn.PgConn().PID())
			p.signal() // resync hint: notifications may have been missed
		}

		err := p.wait(ctx, conn)
		if err == nil {
			p.notified.Add(1)
			p.signal()
			continue
		}
		closeConn(conn)
		conn = nil
		if ctx.Err() != nil {
			p.listenerPID.Store(0)
			return
		}
		lostAt = time.Now()
		auth.Audit(ctx, p.log, auth.EventRevocationListenLost, "err", err.Error())
		if time.Since(connectedAt) >= listenMaxBackoff {
			backoff = listenMinBackoff
		}
	}
}

// wait returns nil when a notification arrives and an error when the
// connection is unusable (or ctx is done). When nothing arrives for
// listenIdleCheck it pings the server, so a dead peer is detected even if
// TCP never reports it.
func (p *Postgres) wait(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdleCheck)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

func (p *Postgres) signal() {
	for _, ch := range []chan struct{}{p.changes, p.keyChanges} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Changes delivers a value after another process (or this one) commits a
// revocation, and once after the LISTEN connection is re-established
// following a loss (missed notifications: resync). Values coalesce: at
// most one is pending. The channel is never closed.
func (p *Postgres) Changes() <-chan struct{} { return p.changes }

// KeyChanges delivers a value on the same events as Changes (signing
// keys are announced on the same channel), for a second reader: the key
// ring.
func (p *Postgres) KeyChanges() <-chan struct{} { return p.keyChanges }

// Close stops listening and closes the connection pool. It is safe to
// call more than once.
func (p *Postgres) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		<-p.done
		<-p.withdrawDone
		p.closeErr = p.db.Close()
	})
	return p.closeErr
}

// redactedError carries a message with secrets masked while keeping the
// underlying error for errors.Is / errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact masks every occurrence of each secret (and its URL-escaped
// forms) in msg.
func redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.PathEscape(s), url.QueryEscape(s), url.UserPassword("", s).String()[1:]} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, "xxxxx")
			}
		}
	}
	return msg
}

// urlSecrets extracts what may be a password from a connection URL, even
// a malformed one: the userinfo after the first ':' and any password or
// sslpassword query parameter.
func urlSecrets(raw string) []string {
	var out []string
	if u, err := url.Parse(raw); err == nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
		for _, k := range []string{"password", "sslpassword"} {
			if v := u.Query().Get(k); v != "" {
				out = append(out, v)
			}
		}
	}
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		// The userinfo ends at the last '@' before the path, but a
		// password may itself contain '/', '?' or '#' when unescaped.
		if at := strings.LastIndex(rest, "@"); at > i {
			i = at + 1
		}
		rest = rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if c := strings.Index(rest[:at], ":"); c >= 0 && c+1 < at {
			out = append(out, rest[c+1:at])
		}
	}
	for _, k := range []string{"password=", "sslpassword="} {
		for s := raw; ; {
			i := strings.Index(s, k)
			if i < 0 {
				break
			}
			v := s[i+len(k):]
			if j := strings.IndexAny(v, "& "); j >= 0 {
				v = v[:j]
			}
			if v != "" {
				out = append(out, v)
			}
			s = s[i+len(k):]
		}
	}
	return out
}
