package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/tools/upstream"
	"github.com/mcpauth/mcpauth/transport"
)

// Config is mcpauth's whole configuration, read once from the environment
// (and an optional .env file) and then passed down explicitly.
type Config struct {
	// Secret is the HS256 signing secret (MCP_JWT_SECRET, or JWT_SECRET).
	Secret       string `env:"MCP_JWT_SECRET" help:"HS256 signing secret (>= 32 bytes; required unless --dev); JWT_SECRET is read when it is not set"`
	LegacySecret string `env:"JWT_SECRET" help:"-"`
	// SecretPrevious is an older HS256 secret that still verifies (under
	// its own kid) but never signs: rotating MCP_JWT_SECRET without an
	// outage.
	SecretPrevious string `env:"MCP_JWT_SECRET_PREVIOUS" help:"the secret before MCP_JWT_SECRET: still verifies its tokens (never signs), for rotating the secret without an outage"`
	// SigningAlg is the algorithm new tokens are signed with: HS256 (the
	// secret), or ES256, EdDSA, RS256 (the key in SigningKeyFile).
	SigningAlg string `env:"MCP_SIGNING_ALG" envDefault:"HS256" help:"algorithm of new tokens: HS256 (the secret signs), or ES256, EdDSA, RS256 with MCP_SIGNING_KEY_FILE"`
	// SigningKeyFile is the PEM private key (PKCS#8, SEC1 or PKCS#1) that
	// signs when SigningAlg is not HS256.
	SigningKeyFile string `env:"MCP_SIGNING_KEY_FILE" help:"PEM private key that signs when MCP_SIGNING_ALG is not HS256 (make one: mcpauth key generate --alg ES256 --out FILE); its public key is served at /.well-known/jwks.json, and MCP_JWT_SECRET still verifies HS256 tokens"`
	// VerifyKeyFiles are PEM key files (private or public) whose public
	// keys still verify: the previous keys of a manual rotation.
	VerifyKeyFiles []string `env:"MCP_VERIFY_KEY_FILES" envSeparator:"," help:"comma-separated PEM key files (private or public) whose public keys still verify: the previous keys of a rotation"`
	// KeyEncryptionSecret makes the registry keep the signing keys,
	// encrypted with it (rotation: mcpauth key rotate).
	KeyEncryptionSecret string `env:"MCP_KEY_ENCRYPTION_SECRET" help:"at least 32 bytes (make one: mcpauth secret generate): the registry keeps the signing keys, encrypted with this secret, shared by every replica; the first start makes a key of MCP_SIGNING_ALG and mcpauth key rotate (or the rotate_signing_key tool) makes the next; excludes MCP_SIGNING_KEY_FILE"`
	// KeyGraceMax caps how long a key verifies after it stops signing.
	KeyGraceMax time.Duration `env:"MCP_KEY_GRACE_MAX" envDefault:"720h" help:"longest time a key keeps verifying after it stops signing (a rotation, or a secret moved to MCP_JWT_SECRET_PREVIOUS); its grace otherwise ends when the last token it signed expires; then it is retired and its tokens are refused"`
	// Env is "development" for dev mode; anything else is production.
	Env string `env:"MCP_ENV" help:"\"development\" for dev mode (same as --dev); anything else is production"`
	// NodeEnv is the production setup document's switch (NODE_ENV=
	// production / development), read when MCP_ENV is not set.
	NodeEnv string `env:"NODE_ENV" help:"read as MCP_ENV when that is not set (production / development, as the production setup document writes it)"`
	// Addr is the HTTP listen address.
	Addr string `env:"MCP_ADDR" envDefault:"127.0.0.1:8080" help:"listen address"`
	// PublicURL is the externally reachable base URL used in client
	// configs; http://<addr> when empty.
	PublicURL string `env:"MCP_PUBLIC_URL" help:"external base URL for generated configs (default http://MCP_ADDR)"`
	// BasePath serves every endpoint under a path prefix ("/v1": /v1/sse,
	// /v1/mcp), as the operators' documents' URLs have it.
	BasePath string `env:"MCP_BASE_PATH" help:"serve every endpoint under this path (\"/v1\": /v1/sse, /v1/mcp), as the operators' documents' URLs have it"`
	// AuthEnabled turns Bearer checks on; false only in dev mode.
	AuthEnabled bool `env:"MCP_AUTH_ENABLED" envDefault:"true" help:"false disables auth (dev mode and loopback only)"`
	// TokenExpiry is the default lifetime of tokens minted by the HTTP
	// token API and the issue_token tool: the production setup
	// document's 24h. The CLI keeps the token guide's 30d (cliExpiry).
	TokenExpiry string `env:"MCP_TOKEN_EXPIRY" envDefault:"24h" help:"default lifetime of tokens from the HTTP token API and issue_token (default 24h; \"token issue\" defaults to 30d)"`
	// MaxTokenLifetime caps every minted token.
	MaxTokenLifetime string `env:"MCP_MAX_TOKEN_LIFETIME" envDefault:"365d" help:"longest lifetime any token may get"`
	// AllowNever permits "never" expiring tokens (discouraged).
	AllowNever bool `env:"MCP_ALLOW_NEVER_EXPIRING" envDefault:"false" help:"allow \"never\""`
	// AllowedClients restricts which client ids get tokens.
	AllowedClients []string `env:"MCP_ALLOWED_CLIENTS" envSeparator:"," help:"comma-separated client ids that may get tokens"`
	// Issuer is the iss claim written and required.
	Issuer string `env:"MCP_ISSUER" envDefault:"mcpauth" help:"iss claim"`
	// Audience, when set, is written to and required in aud.
	Audience string `env:"MCP_AUDIENCE" help:"aud claim to write and require (optional)"`
	// LegacyIssuers are more iss values accepted on tokens signed with
	// the secret: those of the scripts tokens were minted with before.
	LegacyIssuers []string `env:"MCP_LEGACY_ISSUERS" envSeparator:"," help:"comma-separated iss values of tokens minted before mcpauth (same secret) that are accepted; \"token import\" records them"`
	// Leeway is the clock skew tolerated on exp/nbf.
	Leeway time.Duration `env:"MCP_LEEWAY" envDefault:"30s" help:"clock skew tolerated on exp/nbf"`
	// DatabaseURL is the registry: a SQLite file path (or sqlite://path)
	// or a postgres:// URL.
	DatabaseURL string `env:"MCP_DATABASE_URL" envDefault:"./mcpauth.db" help:"SQLite file (default ./mcpauth.db) or postgres:// URL"`
	// RegistryBusyTimeout bounds a SQLite write's wait for another
	// writer's lock before the mint is refused as busy.
	RegistryBusyTimeout time.Duration `env:"MCP_REGISTRY_BUSY_TIMEOUT" envDefault:"5s" help:"longest wait of a SQLite write for another writer's lock; then the mint is refused: \"registry busy\""`
	// RevocationResync is how often the revocation set is fully
	// reloaded from the registry (PostgreSQL also pushes changes at once).
	RevocationResync time.Duration `env:"MCP_REVOCATION_RESYNC" envDefault:"1s" help:"full revocation reload interval"`
	// RevocationMaxStaleness bounds how old a replica's revocation set
	// may be before it refuses tokens (503); 0: the larger of 5s and
	// three resync intervals.
	RevocationMaxStaleness time.Duration `env:"MCP_REVOCATION_MAX_STALENESS" envDefault:"0s" help:"longest a replica serves on a revocation set it could not resync (registry out of reach); then tokens get 503 and /health \"degraded\" (default: 5s or 3 resyncs, the larger)"`
	// RevocationFailOpen keeps serving with a stale revocation set
	// (logged loudly) instead of refusing tokens.
	RevocationFailOpen bool `env:"MCP_REVOCATION_FAIL_OPEN" envDefault:"false" help:"true keeps serving on a stale set instead (logged loudly)"`
	// LastSeenFlush is how often last-seen times are written in a batch.
	LastSeenFlush time.Duration `env:"MCP_LAST_SEEN_FLUSH" envDefault:"10s" help:"last-seen batch write interval"`
	// Stateless serves Streamable HTTP without Mcp-Session-Id so any
	// replica can answer any request.
	Stateless bool `env:"MCP_STATELESS" envDefault:"false" help:"Streamable HTTP without Mcp-Session-Id: any replica can answer"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"MCP_LOG_LEVEL" envDefault:"info" help:"debug, info, warn, error"`
	// Token, for stdio, is the identity to act as instead of local admin.
	Token string `env:"MCP_TOKEN" help:"identity for --stdio (default: local admin)"`
	// APIKey guards the HTTP token endpoint (X-API-Key / X-Admin-Key);
	// the endpoint is off when empty.
	APIKey string `env:"API_KEY" help:"enables POST /api/v1/mcp/auth/token (X-API-Key); >= 32 bytes"`
	// CORSOrigin lists the browser origins allowed to call the server.
	CORSOrigin []string `env:"MCP_CORS_ORIGIN" envSeparator:"," help:"comma-separated browser origins allowed (others get 403)"`
	// Scopes lists the scopes tokens may carry besides "admin"; when set,
	// others are refused at minting. Advertised in the resource metadata.
	Scopes []string `env:"MCP_SCOPES" envSeparator:"," help:"extra scopes advertised in resource metadata"`
	// AuthFailBurst is how many failed authentications one address may
	// make before it gets 429; AuthFailRefill is how fast that budget
	// refills (one attempt per interval).
	AuthFailBurst  int           `env:"MCP_AUTH_FAIL_BURST" envDefault:"20" help:"failed auths per address before 429"`
	AuthFailRefill time.Duration `env:"MCP_AUTH_FAIL_REFILL" envDefault:"3s" help:"one more attempt allowed per interval"`
	// TrustedProxies lists the reverse proxies (IPs or CIDR prefixes)
	// whose X-Forwarded-For names the client; empty trusts none.
	TrustedProxies []string `env:"MCP_TRUSTED_PROXIES" envSeparator:"," help:"reverse proxies (IPs, CIDRs) whose X-Forwarded-For names the client for throttling and audit"`
	// MaxStreamsPerClient bounds open event streams per client id.
	MaxStreamsPerClient int `env:"MCP_MAX_STREAMS_PER_CLIENT" envDefault:"32" help:"open SSE/GET streams and WebSocket connections per client id"`
	// MaxSessionsPerClient bounds the Streamable HTTP sessions that
	// initialize opens per client id (until DELETE or idle expiry).
	MaxSessionsPerClient int `env:"MCP_MAX_SESSIONS_PER_CLIENT" envDefault:"64" help:"Streamable HTTP sessions (initialize) per client id"`
	// SSEWriteTimeout bounds each write to an event stream (legacy SSE,
	// Streamable HTTP GET) and a POST /message's wait for room in its
	// stream; a stream whose client stopped reading is dropped after it.
	SSEWriteTimeout time.Duration `env:"MCP_SSE_WRITE_TIMEOUT" envDefault:"15s" help:"bound on each write to an event stream (SSE, GET /mcp) or WebSocket and on a POST /message's wait for its stream; a stream whose client stopped reading is dropped"`
	// OAuthEnabled serves the built-in OAuth authorization server
	// (sign-in approved with the admin's enrollment codes).
	OAuthEnabled bool `env:"MCP_OAUTH_ENABLED" envDefault:"true" help:"serve the OAuth authorization server"`
	// OAuthAccessTTL is the lifetime of OAuth access tokens.
	OAuthAccessTTL time.Duration `env:"MCP_OAUTH_ACCESS_TTL" envDefault:"1h" help:"OAuth access token lifetime"`
	// OAuthRefreshTTL is the lifetime of OAuth refresh tokens.
	OAuthRefreshTTL time.Duration `env:"MCP_OAUTH_REFRESH_TTL" envDefault:"720h" help:"OAuth refresh token lifetime"`
	// OAuthLoopbackMetadata lets client id metadata documents be fetched
	// from loopback over http; development mode only.
	OAuthLoopbackMetadata bool `env:"MCP_OAUTH_DEV_LOOPBACK_METADATA" envDefault:"false" help:"dev mode only: fetch client metadata documents from loopback over http"`
	// EnrollmentTTL is the default lifetime of enrollment codes.
	EnrollmentTTL time.Duration `env:"MCP_ENROLLMENT_TTL" envDefault:"15m" help:"lifetime of enrollment codes that create_enrollment does not give one"`
	// OAuthPruneInterval is how often expired OAuth state is deleted.
	OAuthPruneInterval time.Duration `env:"MCP_OAUTH_PRUNE_INTERVAL" envDefault:"1m" help:"how often expired OAuth state is deleted"`
	// Pending sign-in requests (GET /authorize, unauthenticated): caps
	// per address (IPv6 /64), per OAuth client and in total, and how many
	// one address may start at once (then one more per refill).
	OAuthPendingPerAddress int `env:"MCP_OAUTH_PENDING_PER_ADDRESS" envDefault:"10" help:"pending sign-ins (GET /authorize) per address, an IPv6 /64 counting as one"`
	OAuthPendingPerClient  int `env:"MCP_OAUTH_PENDING_PER_CLIENT" envDefault:"50" help:"pending sign-ins per OAuth client id"`
	OAuthPendingMax        int `env:"MCP_OAUTH_PENDING_MAX" envDefault:"1000" help:"pending sign-ins in total"`
	// OAuthClientsMax bounds the dynamically registered OAuth clients
	// kept at once.
	OAuthClientsMax      int           `env:"MCP_OAUTH_CLIENTS_MAX" envDefault:"10000" help:"dynamically registered OAuth clients kept at once (each for a year); more registrations get 503"`
	OAuthAuthorizeBurst  int           `env:"MCP_OAUTH_AUTHORIZE_BURST" envDefault:"10" help:"sign-ins one address may start at once"`
	OAuthAuthorizeRefill time.Duration `env:"MCP_OAUTH_AUTHORIZE_REFILL" envDefault:"6s" help:"then one more per interval"`
	// LogFormat is json (structured audit records; the default) or text
	// (the default in dev mode).
	LogFormat string `env:"MCP_LOG_FORMAT" help:"json (default; audit records) or text (default in dev mode)"`
	// Upstreams names the upstreams file: MCP servers to relay, in the
	// mcpServers format of MCP clients' configs, and optionally the
	// operator's policy. Empty: mcpauth serves only its own tools.
	Upstreams string `env:"MCP_UPSTREAMS" help:"file naming MCP servers to relay (gateway mode), in the {\"mcpServers\": {…}} format of MCP clients' configs, plus an optional \"policy\" (same as --upstreams)"`
	// PolicyFile names a policy file of its own (instead of the
	// upstreams file's "policy").
	PolicyFile string `env:"MCP_POLICY" help:"policy file of its own: which scopes each tool, prompt and resource needs; reloaded on SIGHUP"`
	// UpstreamTimeout bounds each call relayed to an upstream unless its
	// entry sets "timeout".
	UpstreamTimeout time.Duration `env:"MCP_UPSTREAM_TIMEOUT" envDefault:"60s" help:"longest wait for an upstream's answer"`
	// MaxInFlightPerClient bounds the requests one client id has relayed
	// to upstreams and not yet had answered.
	MaxInFlightPerClient int `env:"MCP_MAX_INFLIGHT_PER_CLIENT" envDefault:"64" help:"requests to upstreams one client id may have waiting at once; more are refused"`
	// MaxSubscriptionsPerSession bounds the resources one session
	// subscribes to through the gateway.
	MaxSubscriptionsPerSession int `env:"MCP_MAX_SUBSCRIPTIONS_PER_SESSION" envDefault:"128" help:"upstream resources one session may subscribe to at once"`
	// TrustedIssuers names the trusted identity providers file: issuers
	// whose access tokens are accepted besides mcpauth's own (auth/idp).
	TrustedIssuers string `env:"MCP_TRUSTED_ISSUERS" help:"file naming identity providers whose access tokens are accepted besides mcpauth's own: {\"providers\": [{\"name\": \"corp\", \"issuer\": \"https://login.example.com\", …}]}; callers are \"corp:<sub>\"; see README \"Trusted identity providers\""`
}

// loadConfig reads envFile (if it exists; an explicitly named file must
// exist) into the process environment without overriding what is set, then
// parses the environment.
func loadConfig(envFile string, explicit bool) (Config, error) {
	if envFile != "" {
		if err := godotenv.Load(envFile); err != nil {
			if explicit || !errors.Is(err, fs.ErrNotExist) {
				return Config{}, fmt.Errorf("read env file %s: %w", envFile, err)
			}
		}
	}
	cfg, err := env.ParseAs[Config]()
	if err != nil {
		return Config{}, fmt.Errorf("parse environment: %w", err)
	}
	if cfg.Secret == "" {
		cfg.Secret = cfg.LegacySecret
	}
	switch { // MCP_ENV wins over NODE_ENV; production when neither is set
	case cfg.Env != "":
	case cfg.NodeEnv != "":
		cfg.Env = cfg.NodeEnv
	default:
		cfg.Env = "production"
	}
	for i, c := range cfg.AllowedClients {
		cfg.AllowedClients[i] = strings.TrimSpace(c)
	}
	return cfg, nil
}

// Dev reports whether dev mode is on.
func (c Config) Dev() bool { return c.Env == "development" || c.Env == "dev" }

// revocationMaxStaleness is the bound in force: none when failing open,
// else the setting or the larger of 5s and three resync intervals.
func (c Config) revocationMaxStaleness() time.Duration {
	switch {
	case c.RevocationFailOpen:
		return 0
	case c.RevocationMaxStaleness > 0:
		return c.RevocationMaxStaleness
	}
	return max(5*time.Second, 3*c.RevocationResync)
}

// settings are the parsed, checked form of the token and limit settings.
type settings struct {
	defaultExpiry  auth.Expiry
	maxLifetime    time.Duration
	trustedProxies []netip.Prefix
	// upstreams are the entries of the upstreams file (MCP_UPSTREAMS).
	upstreams []upstream.Entry
}

// settings parses the token lifetimes and checks every setting, in a
// fixed order: the first one out of bounds is the one reported.
func (c Config) settings() (settings, error) {
	def, err := auth.ParseExpiry(c.TokenExpiry)
	if err != nil {
		return settings{}, fmt.Errorf("MCP_TOKEN_EXPIRY: %w", err)
	}
	maxL, err := auth.ParseExpiry(c.MaxTokenLifetime)
	if err != nil || maxL.Never {
		return settings{}, fmt.Errorf("MCP_MAX_TOKEN_LIFETIME: must be a lifetime like 365d: %v", err)
	}
	if def.Never && !c.AllowNever {
		return settings{}, errors.New(`MCP_TOKEN_EXPIRY is "never" but MCP_ALLOW_NEVER_EXPIRING is not true`)
	}
	for _, err := range c.checks(def, maxL) {
		if err != nil {
			return settings{}, err
		}
	}
	proxies, err := transport.ParseTrustedProxies(c.TrustedProxies)
	if err != nil {
		return settings{}, fmt.Errorf("MCP_TRUSTED_PROXIES: %w", err)
	}
	return settings{defaultExpiry: def, maxLifetime: maxL.Duration, trustedProxies: proxies}, nil
}

// checks is every bound on the settings, one entry each: nil when it holds.
func (c Config) checks(def, maxL auth.Expiry) []error {
	return []error{
		unless(c.RevocationResync >= 100*time.Millisecond && c.LastSeenFlush >= 100*time.Millisecond,
			"MCP_REVOCATION_RESYNC and MCP_LAST_SEEN_FLUSH must be at least 100ms"),
		unless(within(c.Leeway, 0, 10*time.Minute), "MCP_LEEWAY must be between 0s and 10m"),
		unless(def.Never || def.Duration <= maxL.Duration,
			fmt.Sprintf("MCP_TOKEN_EXPIRY (%s) is longer than MCP_MAX_TOKEN_LIFETIME (%s)", def, maxL)),
		named("MCP_ALLOWED_CLIENTS", each(c.AllowedClients, auth.ValidateClientID)),
		unless(within(c.OAuthAccessTTL, time.Minute, 24*time.Hour) && within(c.OAuthRefreshTTL, time.Hour, 365*24*time.Hour),
			"MCP_OAUTH_ACCESS_TTL must be 1m-24h and MCP_OAUTH_REFRESH_TTL 1h-8760h"),
		unless(!c.OAuthLoopbackMetadata || c.Dev(),
			"MCP_OAUTH_DEV_LOOPBACK_METADATA is allowed only in dev mode: it lets strangers' client ids reach the local network"),
		unless(within(c.EnrollmentTTL, time.Minute, 24*time.Hour), "MCP_ENROLLMENT_TTL must be between 1m and 24h"),
		unless(within(c.OAuthPruneInterval, time.Second, 24*time.Hour), "MCP_OAUTH_PRUNE_INTERVAL must be between 1s and 24h"),
		unless(within(c.OAuthPendingPerAddress, 1, 100000), "MCP_OAUTH_PENDING_PER_ADDRESS must be between 1 and 100000"),
		unless(within(c.OAuthPendingPerClient, 1, 100000), "MCP_OAUTH_PENDING_PER_CLIENT must be between 1 and 100000"),
		unless(within(c.OAuthPendingMax, 1, 100000), "MCP_OAUTH_PENDING_MAX must be between 1 and 100000"),
		unless(within(c.OAuthClientsMax, 1, 1000000), "MCP_OAUTH_CLIENTS_MAX must be between 1 and 1000000"),
		unless(within(c.OAuthAuthorizeBurst, 1, 100000), "MCP_OAUTH_AUTHORIZE_BURST must be between 1 and 100000"),
		unless(c.OAuthAuthorizeRefill > 0 && c.OAuthAuthorizeRefill <= time.Hour, "MCP_OAUTH_AUTHORIZE_REFILL must be positive and at most 1h"),
		unless(within(c.MaxStreamsPerClient, 1, 100000), "MCP_MAX_STREAMS_PER_CLIENT must be between 1 and 100000"),
		unless(c.RevocationMaxStaleness == 0 || c.RevocationMaxStaleness >= 2*c.RevocationResync,
			"MCP_REVOCATION_MAX_STALENESS must be at least twice MCP_REVOCATION_RESYNC (or 0 for the default)"),
		unless(within(c.RegistryBusyTimeout, 10*time.Millisecond, time.Minute), "MCP_REGISTRY_BUSY_TIMEOUT must be between 10ms and 1m"),
		unless(c.UpstreamTimeout > 0 && c.UpstreamTimeout <= time.Hour, "MCP_UPSTREAM_TIMEOUT must be between 1ms and 1h"),
		unless(within(c.MaxInFlightPerClient, 1, 100000), "MCP_MAX_INFLIGHT_PER_CLIENT must be between 1 and 100000"),
		unless(within(c.MaxSubscriptionsPerSession, 1, 100000), "MCP_MAX_SUBSCRIPTIONS_PER_SESSION must be between 1 and 100000"),
		unless(within(c.MaxSessionsPerClient, 1, 100000), "MCP_MAX_SESSIONS_PER_CLIENT must be between 1 and 100000"),
		unless(within(c.SSEWriteTimeout, time.Second, 10*time.Minute), "MCP_SSE_WRITE_TIMEOUT must be between 1s and 10m"),
		unless(c.AuthFailBurst >= 1 && c.AuthFailRefill > 0, "MCP_AUTH_FAIL_BURST must be at least 1 and MCP_AUTH_FAIL_REFILL positive"),
		named("MCP_CORS_ORIGIN", each(c.CORSOrigin, func(o string) error { _, err := transport.NormalizeOrigin(o); return err })),
		named("MCP_SCOPES", auth.ValidateScopes(c.Scopes)),
		unless(c.BasePath == "" || validBasePath.MatchString(c.BasePath),
			`MCP_BASE_PATH must look like "/v1" or "/mcp/api": a leading slash, no trailing slash, letters, digits, "-", "_", "." and "/"`),
	}
}

var validBasePath = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)

// within reports lo <= v <= hi.
func within[T cmp.Ordered](v, lo, hi T) bool { return lo <= v && v <= hi }

// unless is the error msg unless ok holds.
func unless(ok bool, msg string) error {
	if ok {
		return nil
	}
	return errors.New(msg)
}

// named prefixes a setting's name to err, if any.
func named(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// each is the first error of check over list.
func each(list []string, check func(string) error) error {
	for _, v := range list {
		if err := check(v); err != nil {
			return err
		}
	}
	return nil
}

// oauthPending is the pending sign-in limits for the OAuth server.
func (c Config) oauthPending() oauth.PendingLimits {
	return oauth.PendingLimits{PerAddress: c.OAuthPendingPerAddress, PerClient: c.OAuthPendingPerClient,
		Total: c.OAuthPendingMax, Burst: c.OAuthAuthorizeBurst, Refill: c.OAuthAuthorizeRefill}
}

// databaseURL checks DatabaseURL: a PostgreSQL URL, or a SQLite file path
// (optionally sqlite:// or file: prefixed).
func (c Config) databaseURL() (string, error) {
	u := strings.TrimSpace(c.DatabaseURL)
	if u == "" || u == "sqlite://" || u == "file:" {
		return "", errors.New("MCP_DATABASE_URL is empty: give a SQLite file path or a postgres:// URL")
	}
	return u, nil
}

// isPostgres reports whether DatabaseURL selects PostgreSQL.
func (c Config) isPostgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// sqlitePath is the SQLite file of DatabaseURL ("" for PostgreSQL).
func (c Config) sqlitePath() string {
	if c.isPostgres() {
		return ""
	}
	u := strings.TrimPrefix(c.DatabaseURL, "sqlite://")
	return strings.TrimPrefix(u, "file:")
}

// secret resolves the signing secret: the configured one (checked), or in
// dev mode a generated one kept beside the database with 0600 permissions.
func (c Config) secret(logger *slog.Logger) ([]byte, error) {
	secret, err := c.loadSecret(logger)
	if err != nil {
		return nil, err
	}
	if err := c.checkAPIKey(secret); err != nil {
		return nil, err
	}
	return secret, nil
}

func (c Config) loadSecret(logger *slog.Logger) ([]byte, error) {
	if c.Secret != "" {
		if err := auth.CheckSecret([]byte(c.Secret)); err != nil {
			if c.Dev() && len(c.Secret) >= auth.MinSecretLen {
				logger.Warn("MCP_JWT_SECRET is weak; accepted only because dev mode is on", "reason", err.Error())
				return []byte(c.Secret), nil
			}
			return nil, fmt.Errorf("MCP_JWT_SECRET is refused: %w. Generate one with: mcpauth secret generate", err)
		}
		return []byte(c.Secret), nil
	}
	if !c.Dev() {
		return nil, errors.New("JWT_SECRET not found: set MCP_JWT_SECRET (or JWT_SECRET) to at least 32 random bytes, " +
			"e.g. MCP_JWT_SECRET=$(mcpauth secret generate), in the environment or a .env file; " +
			"or run with --dev (MCP_ENV=development) for a generated development secret")
	}
	path := "mcpauth.dev-secret"
	if db := c.sqlitePath(); db != "" {
		path = devSecretPath(db)
	}
	if b, err := os.ReadFile(path); err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) >= auth.MinSecretLen {
			logger.Warn("DEV MODE: using the generated development secret; do not use in production", "file", path)
			return []byte(s), nil
		}
	}
	s, err := auth.GenerateSecret()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for dev secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write dev secret %s: %w", path, err)
	}
	logger.Warn("DEV MODE: no MCP_JWT_SECRET set; GENERATED A DEVELOPMENT SECRET. Tokens signed with it are for development only. "+
		"Set MCP_JWT_SECRET for production.", "file", path)
	return []byte(s), nil
}

// signing is the keys of the configuration: the key that signs (nil: the
// secret), the previous HS256 secret and the keys that still verify.
type signing struct {
	key            *keys.Key
	previousSecret []byte
	verify         []*keys.Key
}

// signing loads MCP_SIGNING_ALG's key, MCP_JWT_SECRET_PREVIOUS and
// MCP_VERIFY_KEY_FILES, refusing each naming its setting.
func (c Config) signing(secret []byte) (signing, error) {
	var sg signing
	if c.SecretPrevious != "" {
		prev := []byte(c.SecretPrevious)
		if err := auth.CheckSecret(prev); err != nil && !(c.Dev() && len(prev) >= auth.MinSecretLen) {
			return signing{}, fmt.Errorf("MCP_JWT_SECRET_PREVIOUS is refused: %w", err)
		}
		if string(prev) == string(secret) {
			return signing{}, errors.New("MCP_JWT_SECRET_PREVIOUS equals MCP_JWT_SECRET: it names the secret before the current one")
		}
		sg.previousSecret = prev
	}
	if c.KeyEncryptionSecret != "" {
		if err := c.checkKeyEncryption(secret); err != nil {
			return signing{}, err
		}
	} else {
		key, err := c.signingKey()
		if err != nil {
			return signing{}, err
		}
		sg.key = key
	}
	for _, f := range c.VerifyKeyFiles {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := keys.LoadVerifyingFile(f)
		if err != nil {
			return signing{}, fmt.Errorf("MCP_VERIFY_KEY_FILES: %w", err)
		}
		sg.verify = append(sg.verify, k)
	}
	return sg, nil
}

// checkKeyEncryption checks the settings of registry-kept keys.
func (c Config) checkKeyEncryption(secret []byte) error {
	kek := []byte(c.KeyEncryptionSecret)
	switch {
	case c.SigningKeyFile != "":
		return errors.New("MCP_KEY_ENCRYPTION_SECRET and MCP_SIGNING_KEY_FILE exclude each other: either the registry keeps the keys " +
			"(rotate them with mcpauth key rotate), or you keep a PEM file (unset MCP_KEY_ENCRYPTION_SECRET)")
	case keys.CheckAlg(canonicalAlg(c.SigningAlg)) != nil:
		return fmt.Errorf("MCP_SIGNING_ALG: %w", keys.CheckAlg(canonicalAlg(c.SigningAlg)))
	case string(kek) == string(secret) || string(kek) == c.SecretPrevious:
		return errors.New("MCP_KEY_ENCRYPTION_SECRET must differ from MCP_JWT_SECRET and MCP_JWT_SECRET_PREVIOUS: it encrypts keys, and a token secret is shared more widely")
	}
	if err := auth.CheckSecret(kek); err != nil && !(c.Dev() && len(kek) >= keys.MinKeyEncryptionSecretLen) {
		return fmt.Errorf("MCP_KEY_ENCRYPTION_SECRET is refused: %w", err)
	}
	return nil
}

// signingKey is the key MCP_SIGNING_ALG and MCP_SIGNING_KEY_FILE name;
// nil for HS256, where the secret signs.
func (c Config) signingKey() (*keys.Key, error) {
	alg := canonicalAlg(c.SigningAlg)
	switch {
	case alg == keys.HS256 && c.SigningKeyFile != "":
		return nil, errors.New("MCP_SIGNING_KEY_FILE is set but MCP_SIGNING_ALG is HS256 (the secret signs): " +
			"set MCP_SIGNING_ALG to the key's algorithm (ES256, EdDSA or RS256), or unset MCP_SIGNING_KEY_FILE")
	case alg == keys.HS256:
		return nil, nil
	case keys.CheckAlg(alg) != nil:
		return nil, fmt.Errorf("MCP_SIGNING_ALG: %w", keys.CheckAlg(alg))
	case c.SigningKeyFile == "":
		return nil, fmt.Errorf("MCP_SIGNING_ALG=%s needs MCP_SIGNING_KEY_FILE, a PEM private key; make one with: "+
			"mcpauth key generate --alg %s --out signing-key.pem", alg, alg)
	}
	k, err := keys.LoadSigningFile(c.SigningKeyFile, alg)
	if err != nil {
		return nil, fmt.Errorf("MCP_SIGNING_KEY_FILE (for MCP_SIGNING_ALG=%s): %w", alg, err)
	}
	return k, nil
}

// canonicalAlg spells alg as keys.Algorithms do ("es256" is ES256), or
// returns it unchanged.
func canonicalAlg(alg string) string {
	alg = strings.TrimSpace(alg)
	for _, a := range keys.Algorithms {
		if strings.EqualFold(a, alg) {
			return a
		}
	}
	return alg
}

// checkAPIKey refuses an API key that is short or equal to the signing
// secret; the message names the variable, never the value.
func (c Config) checkAPIKey(secret []byte) error {
	if c.APIKey == "" {
		return nil
	}
	if len(c.APIKey) < 32 {
		return fmt.Errorf("API_KEY is refused: it must be at least 32 bytes, got %d. Generate one with: mcpauth secret generate", len(c.APIKey))
	}
	if c.APIKey == string(secret) {
		return errors.New("API_KEY is refused: it must differ from MCP_JWT_SECRET")
	}
	return nil
}

// corsOrigins returns the normalized MCP_CORS_ORIGIN list.
func (c Config) corsOrigins() []string {
	var out []string
	for _, o := range c.CORSOrigin {
		if n, err := transport.NormalizeOrigin(o); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func devSecretPath(db string) string {
	return strings.TrimSuffix(db, filepath.Ext(db)) + ".dev-secret"
}

// publicURL is the base URL put in client configs.
func (c Config) publicURL() string {
	base := "http://" + c.Addr
	if c.PublicURL != "" {
		base = strings.TrimRight(c.PublicURL, "/")
	}
	if c.BasePath != "" && !strings.HasSuffix(base, c.BasePath) {
		base += c.BasePath
	}
	return base
}

func newLogger(w io.Writer, level, format string, dev bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("MCP_LOG_LEVEL: %q is not one of debug, info, warn, error", level)
	}
	if format == "" {
		format = "json"
		if dev {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("MCP_LOG_FORMAT: %q is not json or text", format)
	}
}

// resources are this server's resource URLs (RFC 8707): the MCP endpoints
// and the base URL.
func (c Config) resources() []string {
	base := c.publicURL()
	return []string{base + "/mcp", base, base + "/sse", base + "/ws"}
}
