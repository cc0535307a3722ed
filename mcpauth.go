// Package mcpauth assembles the whole mcpauth server from an explicit
// Config: registry → keys → verifier → policy → tools (own and relayed
// upstreams) → transports. New is the one place the server is wired; the
// binary, the tests and the benchmarks all build it here.
//
// A Go program adds its own tools, each with the scopes it needs, and
// serves the result:
//
//	srv, err := mcpauth.New(ctx, mcpauth.Config{
//		Secret:      secret,
//		DatabaseURL: "./mcpauth.db",
//		PublicURL:   "https://mcp.example.com",
//		Tools:       []mcpauth.Tool{{Tool: searchTool, Handler: search, Scopes: []string{"crm:read"}}},
//	})
//	...
//	go srv.Run(ctx)
//	http.ListenAndServe(addr, srv.HTTP)
//
// The library never reads the environment: every setting is a field.
package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/activity"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/idp"
	"github.com/mcpauth/mcpauth/auth/keyring"
	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/auth/revocation"
	"github.com/mcpauth/mcpauth/auth/throttle"
	"github.com/mcpauth/mcpauth/internal/untrusted"
	"github.com/mcpauth/mcpauth/tools"
	"github.com/mcpauth/mcpauth/tools/upstream"
	"github.com/mcpauth/mcpauth/transport"
)

// Tool is a tool of the embedding program, served behind mcpauth's auth.
type Tool struct {
	Tool    mcp.Tool
	Handler server.ToolHandlerFunc
	// Scopes a caller needs, all of them; empty: any authenticated
	// caller. An operator policy rule naming the tool exactly replaces
	// this.
	Scopes []string
}

// OAuthConfig configures the built-in OAuth 2.1 authorization server.
type OAuthConfig struct {
	// Serve mounts its endpoints and adds the admin tools that answer
	// sign-ins (create_enrollment, the approval tools).
	Serve bool
	// AccessTTL and RefreshTTL are token lifetimes; 1h and 720h.
	AccessTTL, RefreshTTL time.Duration
	// EnrollmentTTL is enrollment codes' default lifetime; 15m.
	EnrollmentTTL time.Duration
	// AllowLoopbackRedirects accepts loopback redirect URIs of web
	// clients (development only).
	AllowLoopbackRedirects bool
	// AllowLoopbackMetadata fetches client id metadata documents from
	// loopback over http (development only).
	AllowLoopbackMetadata bool
	// Pending bounds the sign-ins waiting on the consent page; zero
	// fields get the oauth package's defaults.
	Pending oauth.PendingLimits
	// MaxClients bounds the dynamically registered clients kept at once;
	// 10,000.
	MaxClients int
	// PruneInterval is how often Run deletes expired OAuth state; 1m.
	PruneInterval time.Duration
}

// Config is every setting of the server. Zero values get the defaults
// named; Secret (or SigningKey) is required.
type Config struct {
	// Secret is the HS256 secret, at least 32 bytes: it signs tokens
	// unless SigningKey is set, and always verifies them (tokens minted
	// before a switch to SigningKey keep working). Optional when
	// SigningKey is set.
	Secret []byte
	// PreviousSecret, when set, is an older HS256 secret that still
	// verifies, under its own kid, but never signs: rotating Secret
	// without an outage.
	PreviousSecret []byte
	// SigningKey, when set, signs every new token instead of Secret: an
	// ES256, EdDSA or RS256 key (keys.LoadSigningFile reads a PEM file).
	// Its public key is published at /.well-known/jwks.json.
	SigningKey *keys.Key
	// VerifyKeys are more keys that still verify but never sign: the
	// earlier keys of a rotation. Their public keys are published too.
	VerifyKeys []*keys.Key
	// KeyEncryptionSecret, when set (at least 32 bytes), makes the
	// registry keep the signing keys, encrypted with it, shared by every
	// replica: the first start makes a key of KeyAlg, and
	// Server.Keyring.Rotate (key rotate, rotate_signing_key) makes the
	// next. SigningKey must then be nil; Secret, PreviousSecret and
	// VerifyKeys only verify.
	KeyEncryptionSecret []byte
	// KeyAlg is the algorithm of the keys the registry makes; HS256.
	KeyAlg string
	// KeyGraceMax caps how long a key keeps verifying after it stops
	// signing (its grace otherwise lasts until the last token it signed
	// expires, plus Leeway); 30 days. The previous secret and earlier
	// PEM keys get the same grace, counted from the first start that
	// found them no longer signing.
	KeyGraceMax time.Duration
	// KeyResync is how often the keys are reread from the registry (a
	// rotation elsewhere; PostgreSQL also notifies at once); 1s.
	KeyResync time.Duration
	// Issuer is the iss claim written and required; "mcpauth".
	Issuer string
	// Audience, when set, is written to and required in aud.
	Audience string
	// LegacyIssuers are more iss values accepted on tokens signed with
	// Secret: the operators' earlier scripts' (auth.VerifierConfig).
	LegacyIssuers []string
	// PublicURL is the server's external base URL (no trailing slash),
	// including BasePath when one is set.
	PublicURL string
	// BasePath serves every endpoint under a path prefix ("/v1"), as
	// operators' existing URLs (…/v1/sse) expect.
	BasePath string
	// Registry is the durable record; when nil, New opens DatabaseURL
	// (a SQLite path or a postgres:// URL) and Close closes it.
	Registry    registry.Store
	DatabaseURL string
	// RegistryBusyTimeout bounds a SQLite write's wait for another
	// writer's lock; then the mint is refused as busy; 5s.
	RegistryBusyTimeout time.Duration
	// DefaultExpiry applies when a mint names no lifetime; 30d.
	DefaultExpiry auth.Expiry
	// MaxLifetime caps every minted token; 365d.
	MaxLifetime time.Duration
	// AllowNever permits tokens without expiry (discouraged).
	AllowNever bool
	// AllowedClients, when set, are the only client ids given tokens
	// (and accepted: it does not apply to TrustedIssuers' callers).
	AllowedClients []string
	// TrustedIssuers are identity providers whose access tokens are
	// accepted besides this server's own: their callers are
	// "<name>:<sub>" under the same policy, audit and session binding,
	// and their issuers are listed in the protected-resource metadata.
	// Their keys are fetched on first use (Run prefetches them), so one
	// that is down does not stop the start.
	TrustedIssuers []idp.Provider
	// TrustedIssuerOptions tunes fetching their keys; Resources, Leeway,
	// Now and Logger are filled in. AllowLoopbackHTTP is for development.
	TrustedIssuerOptions idp.Options
	// Scopes, when set, are the only scopes (besides admin) tokens may
	// carry; advertised in the resource metadata.
	Scopes []string
	// AdvertiseScopes are more scopes to advertise (resource and
	// authorization-server metadata) without restricting minting.
	AdvertiseScopes []string
	// Leeway is the clock skew tolerated on exp/nbf; 0 means
	// auth.DefaultLeeway (30s), as in auth.VerifierConfig. The revocation
	// set keeps a revoked jti for as long as this leeway accepts its token.
	Leeway time.Duration
	// RevocationResync is how often revocations made elsewhere are
	// reloaded; 1s.
	RevocationResync time.Duration
	// RevocationMaxStaleness, when positive, bounds how old the
	// revocation set may be: beyond it (the registry is out of reach)
	// every token is refused with 503 until a resync succeeds, and
	// /health reports "degraded". Zero: unbounded (fail open).
	RevocationMaxStaleness time.Duration
	// LastSeenFlush is how often last-seen times are written; 10s.
	LastSeenFlush time.Duration
	// AuthDisabled serves every request as DevIdentity (development
	// only; the caller keeps the listener on loopback).
	AuthDisabled bool
	DevIdentity  *auth.Claims
	// ReservedSubjects are identities that exist without tokens (the
	// local admin, the dev identity); OAuth never derives them from a
	// client's name.
	ReservedSubjects []string
	// OAuth configures the authorization server.
	OAuth OAuthConfig
	// APIKey enables the HTTP token API.
	APIKey string
	// CORSOrigins are the browser origins allowed (normalized).
	CORSOrigins []string
	// TrustedProxies name the reverse proxies whose X-Forwarded-For is
	// believed.
	TrustedProxies []netip.Prefix
	// Throttle limits failed authentications per address; when nil, one
	// of AuthFailBurst (20) attempts refilling every AuthFailRefill (3s).
	Throttle       bearer.Throttle
	AuthFailBurst  int
	AuthFailRefill time.Duration
	// MaxStreamsPerClient bounds open event streams per client; 32.
	MaxStreamsPerClient int
	// MaxSessionsPerClient bounds Streamable HTTP sessions per client;
	// 64.
	MaxSessionsPerClient int
	// SSEWriteTimeout bounds each write to an event stream; 15s.
	SSEWriteTimeout time.Duration
	// Stateless serves Streamable HTTP without Mcp-Session-Id.
	Stateless bool
	// Policy is the operator's policy; names no rule matches follow its
	// default, or DefaultDeny when it sets none.
	Policy      policy.Config
	DefaultDeny bool
	// Upstreams are MCP servers to relay (gateway mode), with the
	// gateway's options (Logger and Version are filled in).
	Upstreams       []upstream.Entry
	UpstreamOptions upstream.Options
	// Tools are the embedding program's own tools.
	Tools []Tool
	// Version is reported by /health and to MCP clients.
	Version string
	// Logger receives logs and audit records; never a token.
	Logger *slog.Logger
	// Metrics, when set, is served at /metrics to admins.
	Metrics *transport.Metrics
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// HTTP tuning for tests and benchmarks; zero values get
	// transport.NewHTTP's defaults.
	KeepAlive    time.Duration
	ReapInterval time.Duration
	Timeouts     transport.Timeouts
	AllowedHosts []string
	// WSAuthTimeout is how long a WebSocket connection upgraded without
	// a token may take to send one in params.auth.token; 10s when zero.
	WSAuthTimeout time.Duration
	// RevocationMode describes revocation propagation in /health.
	RevocationMode string
}

// Server is the assembled server. Its parts are exposed for the binary's
// commands and for tests; the MCP endpoints are HTTP (an http.Handler)
// and ServeStdio.
type Server struct {
	cfg      Config
	Registry registry.Store
	Revoked  *auth.RevocationSet
	Revoker  *revocation.Service
	// Keys hold the signing key and the keys that verify; a rotation
	// swaps their set.
	Keys *keys.Ring
	// Keyring keeps Keys in step with the registry (rotation, grace,
	// retirement); nil when the registry cannot record keys.
	Keyring  *keyring.Ring
	Issuer   *auth.Issuer
	Verifier *auth.Verifier
	// Trusted is nil without TrustedIssuers.
	Trusted *idp.Set
	OAuth   *oauth.Server
	Toolset *tools.Toolset
	// Gateway is nil when there are no upstreams.
	Gateway *upstream.Gateway
	MCP     *server.MCPServer
	HTTP    *transport.HTTP
	tracker *activity.Tracker
	ownReg  bool
	// feed sends audit records to admins' sessions as log messages.
	feed *tools.AuditFeed
	// policy is the policy in force, shared by the toolset's filters and
	// guards and the gateway's own checks; ReloadPolicy replaces it.
	policy *policy.Holder
}

// New checks cfg, opens the registry, loads the revocation set, connects
// every upstream and builds the MCP server and its HTTP handler. Nothing
// is served until the caller serves HTTP or ServeStdio; background work
// (revocation resync, last-seen writes) runs in Run. On error everything
// opened is closed again: the server never starts half-configured.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.defaults()
	// Every audit record, whoever writes it, also reaches the sessions of
	// admins that asked for log messages.
	feed := tools.NewAuditFeed(cfg.Logger.Handler())
	cfg.Logger = slog.New(feed)
	s := &Server{cfg: cfg, Registry: cfg.Registry, Revoked: auth.NewRevocationSet(), feed: feed}
	if s.Registry == nil {
		reg, err := registry.OpenWith(ctx, cfg.DatabaseURL, registry.Options{BusyTimeout: cfg.RegistryBusyTimeout, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		s.Registry, s.ownReg = reg, true
	}
	s.policy = &policy.Holder{} // filled by buildTools, before anything is served
	for _, step := range []func(context.Context) error{s.buildAuth, s.buildGateway, s.buildTools, s.startGateway, s.buildServer} {
		if err := step(ctx); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (c *Config) defaults() {
	if c.Issuer == "" {
		c.Issuer = "mcpauth"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.DefaultExpiry == (auth.Expiry{}) {
		c.DefaultExpiry = auth.Expiry{Duration: 30 * 24 * time.Hour}
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 365 * 24 * time.Hour
	}
	// The verifier reads a zero leeway as auth.DefaultLeeway; the
	// revocation service must prune with the same one, or a revoked token
	// would be accepted again between its expiry and the end of the
	// verifier's leeway.
	if c.Leeway == 0 {
		c.Leeway = auth.DefaultLeeway
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DevIdentity == nil {
		c.DevIdentity = &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
		c.DevIdentity.Subject, c.DevIdentity.ID = "dev-anonymous", "local"
	}
	if c.Throttle == nil {
		c.Throttle = throttle.New(throttle.Config{Burst: c.AuthFailBurst, Per: c.AuthFailRefill})
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// resources are the URLs tokens may be audience-bound to.
func (c *Config) resources() []string {
	if c.PublicURL == "" {
		return nil
	}
	return []string{c.PublicURL + "/mcp", c.PublicURL, c.PublicURL + "/sse"}
}

// knownScopes are the only scopes tokens may carry (besides admin) when
// Scopes is set: those and every scope the policy or the program's tools
// name, so a scope the policy asks for can always be granted. Empty: any.
func (c *Config) knownScopes() []string {
	if len(c.Scopes) == 0 {
		return nil
	}
	known := slices.Clone(c.Scopes)
	if p, err := policy.New(c.Policy, policy.Need{}); err == nil { // a bad policy fails New later
		known = append(known, p.Scopes()...)
	}
	for _, t := range c.Tools {
		known = append(known, t.Scopes...)
	}
	return auth.NormalizeScopes(known)
}

func (c *Config) scopesSupported() []string {
	return auth.NormalizeScopes(append(append([]string{auth.ScopeAdmin}, c.knownScopes()...), c.AdvertiseScopes...))
}

// buildAuth makes the revocation service, issuer, verifier and OAuth
// server, and loads the revocation set.
func (s *Server) buildAuth(ctx context.Context) error {
	cfg := &s.cfg
	rc := revocation.Config{
		Store: s.Registry, Set: s.Revoked, Resync: cfg.RevocationResync, Leeway: cfg.Leeway, Logger: cfg.Logger, Now: cfg.Now,
	}
	if cfg.PublicURL != "" {
		// Revoking an OAuth client's access token also ends its refresh
		// tokens (there are none without an authorization server).
		rc.OnRevoke = oauth.RefreshFamilies{Store: s.Registry, Logger: cfg.Logger, Now: cfg.Now}.Revoke
	}
	s.Revoker = revocation.New(rc)
	if err := s.Revoker.Sync(ctx); err != nil {
		return err
	}
	err := s.buildKeys(ctx)
	if err != nil {
		return err
	}
	s.Issuer, err = auth.NewIssuer(auth.IssuerConfig{
		Ring: s.Keys, Issuer: cfg.Issuer, Audience: cfg.Audience, MaxLifetime: cfg.MaxLifetime,
		AllowNever: cfg.AllowNever, AllowedClients: cfg.AllowedClients, KnownScopes: cfg.knownScopes(), Now: cfg.Now, Logger: cfg.Logger,
	}, s.Registry)
	if err != nil {
		return err
	}
	vc := auth.VerifierConfig{
		Ring: s.Keys, Refresh: s.refreshKeys(), Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway, AllowNever: cfg.AllowNever,
		Revoked: s.Revoked, AllowedClients: cfg.AllowedClients, Resources: cfg.resources(), Now: cfg.Now,
		RevocationMaxAge: cfg.RevocationMaxStaleness, LegacyIssuers: cfg.LegacyIssuers,
	}
	if s.Trusted, err = cfg.trustedIssuers(); err != nil {
		return err
	}
	if s.Trusted != nil {
		vc.External = s.Trusted
	}
	if s.Verifier, err = auth.NewVerifier(vc); err != nil {
		return err
	}
	if cfg.PublicURL == "" {
		// Without an address for its endpoints there is no authorization
		// server (stdio-only and embedded uses).
		if cfg.OAuth.Serve {
			return errors.New("mcpauth: serving OAuth needs Config.PublicURL")
		}
		return nil
	}
	s.OAuth, err = oauth.New(oauth.Config{
		Issuer: cfg.PublicURL, Resources: cfg.resources(), Store: s.Registry, Minter: s.Issuer, Revoker: s.Revoker,
		Inspector: s.Verifier, ScopesSupported: cfg.scopesSupported(),
		// jwks_uri is named even with HS256 only (an empty set): the URL
		// stays the same once an asymmetric key signs, and a resource
		// server that reads it learns it has no key to verify with
		// locally (introspection is the way then).
		JWKSURI: cfg.PublicURL + transport.JWKSPath, AccessTTL: cfg.OAuth.AccessTTL,
		RefreshTTL: cfg.OAuth.RefreshTTL, EnrollmentTTL: cfg.OAuth.EnrollmentTTL, AllowedClients: cfg.AllowedClients,
		Clients: s.Registry, Throttle: cfg.Throttle,
		ReservedSubjects:       append([]string{cfg.DevIdentity.Subject, transport.APIKeySubject}, cfg.ReservedSubjects...),
		AllowLoopbackRedirects: cfg.OAuth.AllowLoopbackRedirects, AllowLoopbackMetadata: cfg.OAuth.AllowLoopbackMetadata,
		Pending: cfg.OAuth.Pending, MaxClients: cfg.OAuth.MaxClients, Logger: cfg.Logger, Now: cfg.Now,
	})
	return err
}

// buildKeys makes the key ring: from the registry (rotation, grace and
// retirement recorded there) when it can record keys, else the
// configured keys as they are.
func (s *Server) buildKeys(ctx context.Context) error {
	cfg := &s.cfg
	set, err := cfg.keySet()
	if err != nil {
		return err
	}
	if s.Keyring, err = cfg.keyring(ctx, set, s.Registry); err != nil {
		return err
	}
	if s.Keyring == nil {
		s.Keys = keys.NewRing(set)
		return nil
	}
	s.Keys = s.Keyring.Keys()
	_, err = s.Keys.JWKS()
	return err
}

// keyring is the key ring of set over reg; nil (and set used as it is)
// when reg cannot record keys.
func (c *Config) keyring(ctx context.Context, set *keys.Set, reg registry.Store) (*keyring.Ring, error) {
	store, ok := reg.(keyring.Store)
	if !ok {
		if len(c.KeyEncryptionSecret) > 0 {
			return nil, errors.New("mcpauth: Config.KeyEncryptionSecret needs a registry that keeps signing keys (SQLite or PostgreSQL)")
		}
		return nil, nil
	}
	kc := keyring.Config{
		Store: store, Alg: c.KeyAlg, GraceMax: c.KeyGraceMax, Leeway: c.leeway(), Resync: c.KeyResync,
		Now: c.Now, Logger: c.Logger,
	}
	if len(c.KeyEncryptionSecret) > 0 {
		if c.SigningKey != nil {
			return nil, errors.New("mcpauth: Config.SigningKey and Config.KeyEncryptionSecret exclude each other: either the registry keeps the keys, or a PEM file signs")
		}
		var err error
		if kc.Sealer, err = keys.NewSealer(c.KeyEncryptionSecret); err != nil {
			return nil, fmt.Errorf("mcpauth: Config.KeyEncryptionSecret: %w", err)
		}
		kc.Verify = set.Keys()
	} else {
		kc.Active, kc.Verify = set.Active(), set.Keys()[1:]
	}
	r, err := keyring.New(ctx, kc)
	if err != nil {
		return nil, fmt.Errorf("mcpauth: signing keys: %w", err)
	}
	return r, nil
}

// rotator enables rotate_signing_key when the registry keeps the keys.
func (s *Server) rotator() tools.KeyRotator {
	if s.Keyring == nil || !s.Keyring.Managed() {
		return nil
	}
	return s.Keyring
}

// refreshKeys is the verifier's reload for unknown kids; nil without a
// keyring.
func (s *Server) refreshKeys() func(string) bool {
	if s.Keyring == nil {
		return nil
	}
	return s.Keyring.Refresh
}

// leeway is Leeway or its default.
func (c *Config) leeway() time.Duration {
	if c.Leeway > 0 {
		return c.Leeway
	}
	return auth.DefaultLeeway
}

// JWKS is the JWK Set document the server publishes at
// /.well-known/jwks.json for this configuration (the public keys of
// SigningKey and VerifyKeys; HMAC secrets never appear). A program may
// serve it before New returns: New connects the upstreams, and one that
// verifies the tokens mcpauth mints for it ("callerToken") fetches these
// keys first.
//
// With KeyEncryptionSecret the keys are the registry's: JWKS opens it
// (DatabaseURL, unless Registry is set), making the first key when there
// is none yet, as New would.
func (c Config) JWKS() ([]byte, error) {
	set, err := c.keySet()
	if err != nil {
		return nil, err
	}
	if len(c.KeyEncryptionSecret) == 0 {
		return set.JWKS()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := c.Registry
	if reg == nil {
		opened, err := registry.OpenWith(ctx, c.DatabaseURL, registry.Options{BusyTimeout: c.RegistryBusyTimeout, Logger: c.Logger})
		if err != nil {
			return nil, err
		}
		defer opened.Close()
		reg = opened
	}
	r, err := c.keyring(ctx, set, reg)
	if err != nil {
		return nil, err
	}
	return r.Keys().JWKS()
}

// keySet is the signing key (SigningKey, else Secret's) and every key
// that verifies: Secret, PreviousSecret and VerifyKeys.
func (c *Config) keySet() (*keys.Set, error) {
	var verify []*keys.Key
	for i, secret := range [][]byte{c.Secret, c.PreviousSecret} { // Secret first: the fast path's
		if len(secret) == 0 {
			continue
		}
		k, err := keys.NewHMAC(secret)
		if err != nil {
			return nil, fmt.Errorf("mcpauth: Config.%s: %w", [...]string{"Secret", "PreviousSecret"}[i], err)
		}
		verify = append(verify, k)
	}
	active := c.SigningKey
	switch {
	case active == nil && len(c.Secret) == 0:
		return nil, errors.New("mcpauth: Config.Secret or Config.SigningKey is required")
	case active == nil:
		active = verify[0]
	}
	return keys.NewSet(active, append(verify, c.VerifyKeys...)...)
}

// trustedIssuers checks TrustedIssuers and builds their Set; nil
// without any. No provider may share an issuer with this server's own
// tokens, or those would be sent to it.
func (c *Config) trustedIssuers() (*idp.Set, error) {
	if len(c.TrustedIssuers) == 0 {
		return nil, nil
	}
	own := append([]string{c.Issuer, c.PublicURL}, c.LegacyIssuers...)
	for _, p := range c.TrustedIssuers {
		if slices.Contains(own, p.Issuer) {
			return nil, fmt.Errorf("mcpauth: trusted issuer %q is this server's own issuer", p.Name)
		}
		if p.Audience == "" && c.PublicURL == "" {
			return nil, fmt.Errorf("mcpauth: trusted issuer %q needs an audience, or Config.PublicURL for the default", p.Name)
		}
	}
	o := c.TrustedIssuerOptions
	o.Resources, o.Leeway, o.Now, o.Logger = c.resources(), c.Leeway, c.Now, c.Logger
	set, err := idp.New(c.TrustedIssuers, o)
	if err != nil {
		return nil, fmt.Errorf("mcpauth: trusted issuers: %w", err)
	}
	return set, nil
}

// buildTools makes the toolset and puts the policy in force.
func (s *Server) buildTools(context.Context) error {
	cfg := &s.cfg
	var signIns tools.OAuthAdmin // the approval tools exist only where sign-in is served
	if cfg.OAuth.Serve {
		signIns = s.OAuth
	}
	s.Toolset = tools.New(tools.Deps{
		Minter: s.Issuer, Inspector: s.Verifier, Clients: s.Registry, Revoker: s.Revoker, Tokens: s.Registry,
		OAuth: signIns, DefaultExpiry: cfg.DefaultExpiry, PublicURL: cfg.PublicURL, Issuer: cfg.Issuer,
		Logger: cfg.Logger, Now: cfg.Now, Upstreams: upstreamLister(s.Gateway), Policy: s.policy, AuditFeed: s.feed,
		Keys: s.Keys, KeyTokens: s.Registry, Rotator: s.rotator(), ToolsVersion: toolsVersion(s.Gateway),
	})
	return s.ReloadPolicy(cfg.Policy)
}

// toolsVersion is the gateway's tool-set version; nil without one.
func toolsVersion(g *upstream.Gateway) func() uint64 {
	if g == nil {
		return nil
	}
	return g.ToolsVersion
}

// upstreamLister avoids a typed-nil interface without a gateway.
func upstreamLister(g *upstream.Gateway) tools.UpstreamLister {
	if g == nil {
		return nil
	}
	return g
}

// Builtins are the policy rules of everything the server itself offers:
// its token tools and the embedding program's tools.
func (s *Server) builtins() []policy.Builtin {
	b := s.Toolset.Builtins()
	for _, t := range s.cfg.Tools {
		b = append(b, policy.Builtin{Kind: policy.Tool, Name: t.Tool.Name, Need: policy.Need{Scopes: t.Scopes}})
	}
	return b
}

// ReloadPolicy compiles pc over the built-in rules and puts it in force
// for every request that starts afterwards. On error the policy in force
// stays.
func (s *Server) ReloadPolicy(pc policy.Config) error {
	p, err := policy.New(pc, policy.Need{Deny: s.cfg.DefaultDeny}, s.builtins()...)
	if err != nil {
		return err
	}
	s.Toolset.Policy().Store(p)
	return nil
}

// buildGateway makes the gateway of the configured upstreams (connected
// by startGateway). Upstreams that take a token minted for them
// ("callerToken") get it from the Issuer, whose key must then be
// asymmetric, and their audience must not be one of this server's own:
// mcpauth refuses tokens granted for another resource, so an upstream
// cannot replay the token it was given against mcpauth.
func (s *Server) buildGateway(context.Context) error {
	cfg := &s.cfg
	if len(cfg.Upstreams) == 0 {
		return nil
	}
	opts := cfg.UpstreamOptions
	opts.Logger, opts.Version, opts.Access = cfg.Logger, cfg.Version, s.policy
	if cfg.Metrics != nil && opts.Refused == nil {
		cfg.Metrics.KnowLimits(upstream.Limits()...)
		opts.Refused = cfg.Metrics.Refused
	}
	own := append(cfg.resources(), cfg.Audience, cfg.Issuer)
	for _, e := range cfg.Upstreams {
		if e.CallerToken == nil {
			continue
		}
		switch aud := e.TokenAudience(); {
		case s.Issuer.Symmetric():
			return fmt.Errorf("upstream %q: \"callerToken\": %w", e.Name, auth.ErrDelegationNeedsKeyPair)
		case cfg.Audience == "" && len(cfg.resources()) == 0:
			return fmt.Errorf("upstream %q: \"callerToken\" needs this server's own resource URL (Config.PublicURL or Audience) so that mcpauth refuses the tokens it mints for upstreams", e.Name)
		case slices.Contains(own, aud):
			return fmt.Errorf("upstream %q: \"callerToken\" audience %q is this server's own: mcpauth would accept the tokens it mints for the upstream", e.Name, aud)
		}
		opts.Delegator = s.Issuer
	}
	s.Gateway = upstream.New(cfg.Upstreams, opts)
	return nil
}

// startGateway connects every upstream.
func (s *Server) startGateway(ctx context.Context) error {
	if s.Gateway == nil {
		return nil
	}
	return s.Gateway.Start(ctx, s.ownNames())
}

func (s *Server) ownNames() []string {
	names := s.Toolset.Names()
	for _, t := range s.cfg.Tools {
		names = append(names, t.Tool.Name)
	}
	return names
}

// buildServer makes the MCP server and its HTTP handler.
func (s *Server) buildServer(context.Context) error {
	var relays []transport.Part
	if s.Gateway != nil {
		relays = append(relays, s.Gateway)
	}
	s.MCP = transport.NewMCPServer(s.Toolset, s.cfg.Version, relays...)
	for _, t := range s.cfg.Tools {
		if t.Handler == nil {
			return fmt.Errorf("tool %q has no handler", t.Tool.Name)
		}
		s.MCP.AddTool(t.Tool, t.Handler)
	}
	s.tracker = activity.New(s.Registry, s.cfg.Logger)
	s.HTTP = transport.NewHTTP(s.httpConfig())
	return nil
}

func (s *Server) httpConfig() transport.HTTPConfig {
	cfg := &s.cfg
	var as interface{ Routes(*http.ServeMux) }
	if cfg.OAuth.Serve {
		as = s.OAuth
	}
	return transport.HTTPConfig{
		MCP: s.MCP, Auth: s.middleware(), Revoked: s.Revoked, Stateless: cfg.Stateless,
		ToolScope: s.Toolset.RequiredScope, TrustedProxies: cfg.TrustedProxies, PublicURL: cfg.PublicURL,
		ScopesSupported: cfg.scopesSupported(), CORSOrigins: cfg.CORSOrigins, Throttle: cfg.Throttle, OAuth: as,
		Metrics: cfg.Metrics, MaxStreamsPerClient: cfg.MaxStreamsPerClient,
		MaxSessionsPerClient: cfg.MaxSessionsPerClient, SSEWriteTimeout: cfg.SSEWriteTimeout,
		TokenAPI: &transport.TokenAPIConfig{
			APIKey: cfg.APIKey, Minter: s.Issuer, Verifier: s.Verifier, DefaultExpiry: cfg.DefaultExpiry, Logger: cfg.Logger,
		},
		AuthInfo: transport.AuthInfo{
			Issuer: cfg.Issuer, Algorithm: s.Keys.Active().Alg(), Audience: cfg.Audience, DefaultExpiry: cfg.DefaultExpiry.String(),
			MaxExpiry: auth.Expiry{Duration: cfg.MaxLifetime}.String(), AllowedClients: len(cfg.AllowedClients),
			Revocation: cfg.RevocationMode,
		},
		AuthEnabled: !cfg.AuthDisabled, Version: cfg.Version, Logger: cfg.Logger,
		KeepAlive: cfg.KeepAlive, ReapInterval: cfg.ReapInterval, Timeouts: cfg.Timeouts, AllowedHosts: cfg.AllowedHosts,
		Upstreams: s.upstreamHealth(), RevocationHealth: s.revocationHealth, BasePath: cfg.BasePath,
		VerifyToken: s.verifyMessageToken, WSAuthTimeout: cfg.WSAuthTimeout, TrustedIssuers: s.trustedIssuerURLs(),
		CountNotifications: s.Gateway != nil,
		JWKS:               s.Keys.JWKS, SigningKey: func() (string, string) { k := s.Keys.Active(); return k.ID(), k.Alg() },
		TrustedIssuerHealth: s.trustedIssuerHealth(),
	}
}

// trustedIssuerHealth reports the trusted providers for /health, without
// their last errors (those may name internal hosts, and /health answers
// anyone; the log has them); nil without any.
func (s *Server) trustedIssuerHealth() func() []idp.Status {
	if s.Trusted == nil {
		return nil
	}
	return func() []idp.Status {
		out := s.Trusted.Status()
		for i := range out {
			out[i].LastError = ""
		}
		return out
	}
}

// trustedIssuerURLs are the trusted providers' issuers, for the
// protected-resource metadata.
func (s *Server) trustedIssuerURLs() []string {
	if s.Trusted == nil {
		return nil
	}
	return s.Trusted.Issuers()
}

// verifyMessageToken verifies a token a WebSocket message carries in
// params.auth.token, as the middleware verifies a Bearer header: a client
// seen, a failure audited with what the token claims, never the token.
func (s *Server) verifyMessageToken(ctx context.Context, token string) (*auth.Claims, error) {
	c, err := s.Verifier.Verify(token)
	if err != nil {
		attrs := []any{"path", "/ws", "via", "params.auth", "reason", auth.Message(err)}
		in := s.Verifier.Inspect(token)
		if sub, ok := in.Claims["sub"].(string); ok {
			attrs = append(attrs, "claimed_client_id", untrusted.Clip(sub, 64))
		}
		if jti, ok := in.Claims["jti"].(string); ok {
			attrs = append(attrs, "claimed_jti", untrusted.Clip(jti, 64))
		}
		auth.Audit(ctx, s.cfg.Logger, auth.EventAuthFailed, attrs...)
		return nil, err
	}
	s.seen(c)
	return c, nil
}

// seen notes a caller's sighting for its last-seen time: mcpauth's own
// clients only. A trusted provider's callers have no tokens in the
// registry to list them by, and their rows would never expire.
func (s *Server) seen(c *auth.Claims) {
	if s.Trusted == nil || !s.Trusted.Trusts(c.Issuer) {
		s.tracker.Seen(c.Subject)
	}
}

// revocationHealth reports the revocation set's freshness for /health.
func (s *Server) revocationHealth() transport.RevocationHealth {
	at := s.Revoked.SyncedAt()
	now := time.Now
	if s.cfg.Now != nil {
		now = s.cfg.Now
	}
	return transport.RevocationHealth{
		SyncedAt: at.UTC().Format(time.RFC3339Nano),
		Stale:    s.cfg.RevocationMaxStaleness > 0 && now().Sub(at) > s.cfg.RevocationMaxStaleness,
	}
}

// upstreamHealth reports the upstreams for /health; nil without any.
func (s *Server) upstreamHealth() func() []transport.UpstreamHealth {
	if s.Gateway == nil {
		return nil
	}
	return func() []transport.UpstreamHealth {
		var out []transport.UpstreamHealth
		for _, st := range s.Gateway.Statuses() {
			out = append(out, transport.UpstreamHealth{
				Name: st.Name, Transport: st.Transport, State: string(st.State), Tools: st.Tools,
				Prompts: st.Prompts, Resources: st.Resources, Calls: st.Calls, Failures: st.Failures,
			})
		}
		return out
	}
}

// middleware is the Bearer check in front of every MCP endpoint: it
// tracks who was seen, and audits failures with what the refused token
// claims (unverified, bounded), never the token itself.
func (s *Server) middleware() func(http.Handler) http.Handler {
	return bearer.Middleware(bearer.MiddlewareConfig{
		Verifier: s.Verifier, Throttle: s.cfg.Throttle,
		ResourceMetadata: s.resourceMetadata(),
		Disabled:         s.cfg.AuthDisabled, DevIdentity: s.cfg.DevIdentity,
		OnSuccess: func(_ *http.Request, c *auth.Claims) { s.seen(c) },
		OnFailure: s.auditFailure,
	})
}

// resourceMetadata is the protected-resource metadata URL named in
// challenges; none without a public URL.
func (s *Server) resourceMetadata() string {
	if s.cfg.PublicURL == "" {
		return ""
	}
	return s.cfg.PublicURL + "/.well-known/oauth-protected-resource"
}

func (s *Server) auditFailure(r *http.Request, err error) {
	attrs := []any{"path", r.URL.Path, "reason", auth.Message(err)}
	if tok, terr := auth.BearerToken(r); terr == nil {
		in := s.Verifier.Inspect(tok)
		if sub, ok := in.Claims["sub"].(string); ok {
			attrs = append(attrs, "claimed_client_id", untrusted.Clip(sub, 64))
		}
		if jti, ok := in.Claims["jti"].(string); ok {
			attrs = append(attrs, "claimed_jti", untrusted.Clip(jti, 64))
		}
	}
	auth.Audit(auth.WithRemoteAddr(r.Context(), bearer.ClientAddress(r)), s.cfg.Logger, auth.EventAuthFailed, attrs...)
}

// Run does the background work until ctx ends: revocations made elsewhere
// (other processes, replicas), batched last-seen writes, and deleting
// expired OAuth state where sign-in is served.
func (s *Server) Run(ctx context.Context) {
	if s.Trusted != nil {
		s.Trusted.Prefetch(ctx) // in the background; failures are logged
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Revoker.Run(ctx) }()
	if s.Keyring != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.Keyring.Run(ctx) }()
	}
	if s.cfg.OAuth.Serve {
		wg.Add(1)
		go func() { defer wg.Done(); s.OAuth.RunPruner(ctx, s.pruneInterval()) }()
	}
	s.tracker.Run(ctx, s.lastSeenFlush())
	wg.Wait()
}

func (s *Server) pruneInterval() time.Duration {
	if s.cfg.OAuth.PruneInterval > 0 {
		return s.cfg.OAuth.PruneInterval
	}
	return time.Minute
}

func (s *Server) lastSeenFlush() time.Duration {
	if s.cfg.LastSeenFlush > 0 {
		return s.cfg.LastSeenFlush
	}
	return 10 * time.Second
}

// ServeStdio serves the MCP server over in/out as identity until ctx
// ends or in closes.
func (s *Server) ServeStdio(ctx context.Context, identity *auth.Claims, in io.Reader, out, errOut io.Writer) error {
	return transport.ServeStdio(ctx, s.MCP, transport.StdioConfig{
		Identity: identity, ToolScope: s.Toolset.RequiredScope, Logger: s.cfg.Logger,
	}, in, out, errOut)
}

// Close stops every upstream (stdio children included) and closes the
// registry if New opened it.
func (s *Server) Close() error {
	if s.Gateway != nil {
		s.Gateway.Close()
	}
	if s.ownReg && s.Registry != nil {
		return s.Registry.Close()
	}
	return nil
}
