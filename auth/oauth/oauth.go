// Package oauth makes mcpauth an OAuth 2.1 authorization server for MCP
// clients that sign in by themselves (MCP authorization spec): RFC 8414
// metadata, RFC 7591 dynamic client registration, the authorization code
// flow with PKCE S256 only and RFC 8707 resource indicators, refresh
// tokens rotated on every use (reuse revokes the family), RFC 7009
// revocation, and a consent page where the admin's one-time enrollment
// code says yes. Access tokens are ordinary mcpauth JWTs: minted through
// the same Issuer, recorded in the registry, listed and revocable like
// any other. All flow state lives in the registry (registry.StateStore),
// so any replica can continue a flow another began. Secrets (codes,
// refresh tokens) are stored only as SHA-256 hashes.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/auth/throttle"
)

// State kinds in the registry.
const (
	kindClient     = "oauth.client"
	kindRequest    = "oauth.request"
	kindEnrollment = "oauth.enrollment"
	kindCode       = "oauth.code"
	kindRefresh    = "oauth.refresh"
	kindSpent      = "oauth.refresh_spent"
	// kindCodeUsed marks a redeemed authorization code (by hash) with the
	// family its tokens belong to, so a replay can revoke them.
	kindCodeUsed = "oauth.code_used"
	// kindFamilyRevoked marks a refresh-token family revoked, so a mint
	// racing the revocation is undone.
	kindFamilyRevoked = "oauth.family_revoked"
)

// Revoker revokes access tokens by jti.
type Revoker interface {
	RevokeJTI(ctx context.Context, jti, by, reason string) (registry.Token, bool, error)
}

// Config configures the authorization server.
type Config struct {
	// Issuer is the authorization server's identifier: the public URL.
	Issuer string
	// Resources are the resource URLs tokens may be requested for; the
	// first is the default.
	Resources []string
	Store     registry.StateStore
	Minter    auth.Minter
	Revoker   Revoker
	// JWKSURI, when set, is named as jwks_uri in the metadata: where the
	// public keys that verify this server's tokens are published.
	JWKSURI string
	// Inspector reads access tokens presented to the revocation endpoint.
	Inspector interface{ Inspect(string) auth.Inspection }
	// Throttle slows down wrong enrollment codes and registrations per
	// address.
	Throttle        bearer.Throttle
	ScopesSupported []string
	AccessTTL       time.Duration // default 1h
	RefreshTTL      time.Duration // default 30d
	CodeTTL         time.Duration // default 60s
	RequestTTL      time.Duration // default 10m
	EnrollmentTTL   time.Duration // default 15m
	// AllowedClients, when non-empty, are the only client ids tokens may
	// carry (MCP_ALLOWED_CLIENTS): checked when an enrollment code is
	// created and when a sign-in is approved, before anyone spends a code.
	AllowedClients []string
	// Clients lists the client ids that have tokens (the registry). A
	// client id derived from a client's chosen name is refused when it
	// names one of them; without Clients every derived id is refused and
	// approvals need an explicit client id.
	Clients ClientLister
	// ReservedSubjects are identities that exist without tokens of their
	// own (the stdio and CLI local admin, the API key, dev mode's): never
	// given to a client by its chosen name.
	ReservedSubjects []string
	// AllowLoopbackRedirects lets web (non-native) clients register
	// http://localhost redirect URIs (development and tests).
	AllowLoopbackRedirects bool
	// AllowLoopbackMetadata lets client id metadata documents be fetched
	// from loopback over http (development and tests only: it opens the
	// fence that keeps strangers' URLs off the local network).
	AllowLoopbackMetadata bool
	// Pending bounds the pending requests GET /authorize creates.
	Pending PendingLimits
	// MaxClients bounds the dynamically registered clients kept at once
	// (POST /register: anyone may register, each kept a year); 10,000.
	// Beyond it a registration is refused until registrations expire.
	MaxClients int
	Logger     *slog.Logger
	Now        func() time.Time
}

// ClientLister lists the client ids that have tokens
// (registry.Store.ListClients).
type ClientLister interface {
	ListClients(ctx context.Context, now time.Time) ([]registry.Client, error)
}

// Server is the authorization server.
type Server struct {
	cfg Config
	// pendingRate limits, per address, how fast pending requests are
	// created; pendingMu orders the cap check and the write.
	pendingRate *throttle.Limiter
	pendingMu   sync.Mutex
	// registerMu orders the client cap's count and the registration's
	// write.
	registerMu sync.Mutex
}

// New returns a Server with defaults filled in.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" || len(cfg.Resources) == 0 || cfg.Store == nil || cfg.Minter == nil {
		return nil, errors.New("oauth: issuer, resources, store and minter are required")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AccessTTL, time.Hour)
	def(&cfg.RefreshTTL, 30*24*time.Hour)
	def(&cfg.CodeTTL, time.Minute)
	def(&cfg.RequestTTL, 10*time.Minute)
	def(&cfg.EnrollmentTTL, 15*time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Pending = cfg.Pending.withDefaults()
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 10000
	}
	rate := throttle.New(throttle.Config{Burst: cfg.Pending.Burst, Per: cfg.Pending.Refill, Now: cfg.Now})
	return &Server{cfg: cfg, pendingRate: rate}, nil
}

// Enrollment is a one-time code an admin hands to whoever will approve a
// client's sign-in, bound to the client name and the scopes it may get.
type Enrollment struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedBy string    `json:"created_by"`
}

type enrollmentRecord struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	CreatedBy string   `json:"created_by"`
}

// CreateEnrollment mints a one-time enrollment code for name (the client
// id its tokens will carry) limited to scopes, which the creator must
// hold. Only the code's hash is stored.
func (s *Server) CreateEnrollment(ctx context.Context, caller *auth.Claims, name string, scopes []string, ttl time.Duration) (Enrollment, error) {
	if err := auth.ValidateClientID(name); err != nil {
		return Enrollment{}, err
	}
	if err := s.clientAllowed(name); err != nil {
		return Enrollment{}, err
	}
	scopes = auth.NormalizeScopes(scopes)
	if err := auth.ValidateScopes(scopes); err != nil {
		return Enrollment{}, err
	}
	if caller == nil {
		return Enrollment{}, auth.ErrNoCallerIdentity
	}
	for _, sc := range scopes {
		if !caller.Scope.Has(sc) {
			return Enrollment{}, fmt.Errorf("%w: %q", auth.ErrScopeNotHeld, sc)
		}
	}
	if ttl <= 0 {
		ttl = s.cfg.EnrollmentTTL
	}
	if ttl > 24*time.Hour {
		return Enrollment{}, errors.New("an enrollment code lives at most 24h")
	}
	code := newEnrollmentCode()
	rec, _ := json.Marshal(enrollmentRecord{Name: name, Scopes: scopes, CreatedBy: caller.Subject})
	exp := s.cfg.Now().Add(ttl).Truncate(time.Second)
	if err := s.cfg.Store.PutState(ctx, registry.State{Kind: kindEnrollment, Key: hashKey(normalizeCode(code)), Value: rec, ExpiresAt: exp}); err != nil {
		return Enrollment{}, fmt.Errorf("store enrollment: %w", err)
	}
	auth.Audit(ctx, s.cfg.Logger, "oauth.enrollment_created", "client_id", name, "scopes", strings.Join(scopes, " "), "created_by", caller.Subject)
	return Enrollment{Code: code, Name: name, Scopes: scopes, ExpiresAt: exp, CreatedBy: caller.Subject}, nil
}

// clientAllowed refuses a client id outside AllowedClients (when set),
// as the Issuer would at /token.
func (s *Server) clientAllowed(id string) error {
	if len(s.cfg.AllowedClients) > 0 && !slices.Contains(s.cfg.AllowedClients, id) {
		return fmt.Errorf("%w (MCP_ALLOWED_CLIENTS): %q", auth.ErrClientNotAllowed, id)
	}
	return nil
}

// newEnrollmentCode is 10 random base32 characters shown as XXXXX-XXXXX
// (50 bits; single use, short-lived and rate-limited).
func newEnrollmentCode() string {
	var b [7]byte
	_, _ = rand.Read(b[:])
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:10]
	return s[:5] + "-" + s[5:]
}

// normalizeCode makes typed codes comparable: upper case, no separators.
func normalizeCode(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	return strings.NewReplacer("-", "", " ", "").Replace(c)
}

// hashKey stores secrets as SHA-256 hex.
func hashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// s256 is the PKCE S256 transform of a verifier.
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// RefreshFamilies ends the refresh tokens behind revoked access tokens:
// the family whose latest access token is one of them, and, for a
// revocation of a whole client (a Token with only ClientID set), every
// refresh token of that client. Without this a revoked OAuth client could
// mint itself a new access token. It needs only the store the
// authorization server keeps its state in, so the revocation service is
// given it at construction (its OnRevoke) without depending on the
// authorization server, which itself revokes through that service.
type RefreshFamilies struct {
	Store registry.StateStore
	// Logger receives the audit records; discarded when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Revoke ends the refresh token families behind revoked (see
// RefreshFamilies); it has the shape of revocation.Config.OnRevoke.
func (f RefreshFamilies) Revoke(ctx context.Context, revoked []registry.Token) {
	logger, now := f.Logger, f.Now
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	items, err := f.Store.ListState(ctx, kindRefresh, now())
	if err != nil {
		logger.Warn("cannot list refresh tokens to revoke", "err", err)
		return
	}
	for _, it := range items {
		var rec refreshRecord
		if json.Unmarshal(it.Value, &rec) != nil {
			continue
		}
		for _, t := range revoked {
			if (t.JTI != "" && t.JTI == rec.AccessJTI) || (t.JTI == "" && t.ClientID == rec.Subject) {
				if n, _ := f.Store.DeleteStateGroup(ctx, kindRefresh, it.Group); n > 0 {
					auth.Audit(ctx, logger, auth.EventTokenRevoked, "client_id", rec.Subject, "refresh_tokens", n, "reason", "access token revoked")
				}
				break
			}
		}
	}
}
