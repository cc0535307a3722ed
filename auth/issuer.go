package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Policy errors, testable with errors.Is.
var (
	ErrLifetimeTooLong  = errors.New("lifetime exceeds the configured maximum")
	ErrNeverNotAllowed  = errors.New("tokens that never expire are not allowed")
	ErrScopeNotHeld     = errors.New("cannot grant a scope the caller does not hold")
	ErrUnknownScope     = errors.New("unknown scope")
	ErrClientNotAllowed = errors.New("client is not in the allowed clients list")
	ErrRecordFailed     = errors.New("could not record the token")
	ErrNoCallerIdentity = errors.New("no caller identity")
)

// IssuedToken is a freshly minted token and the facts recorded about it.
type IssuedToken struct {
	Token    string
	JTI      string
	ClientID string
	Scopes   Scopes
	IssuedAt time.Time
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time
	// IssuedBy is the client id of the caller who minted it.
	IssuedBy string
	// KeyID is the kid of the key that signed it; "" for a token recorded
	// before kids were, or imported without one.
	KeyID string
}

// Recorder stores a minted token durably. Issue calls it before the token
// is returned, so a token that could not be recorded is never handed out.
type Recorder interface {
	Record(ctx context.Context, t IssuedToken) error
}

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Secret is the HS256 secret that signs when Key is nil.
	Secret []byte
	// Key, when set, signs instead of Secret: its algorithm is the
	// token's alg, its kid the token's kid.
	Key *keys.Key
	// Ring, when set, signs instead of Key or Secret: each token is
	// signed by the ring's active key at the time (rotation).
	Ring *keys.Ring
	// Issuer is the iss claim.
	Issuer string
	// Audience, when set, becomes the aud claim.
	Audience string
	// MaxLifetime caps every token's lifetime.
	MaxLifetime time.Duration
	// AllowNever permits tokens without exp.
	AllowNever bool
	// AllowedClients, when non-empty, restricts which client ids may
	// receive tokens.
	AllowedClients []string
	// KnownScopes, when non-empty, is the set of scopes that may be
	// granted at all (besides admin); anything else is refused.
	KnownScopes []string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives the audit record of every mint and refusal, made
	// here for every caller (tool, token API, OAuth, CLI); discarded when
	// nil.
	Logger *slog.Logger
}

// Minter mints and records tokens: what every caller that hands out
// tokens (the issue_token tool, the token API, OAuth, the CLI) consumes.
// *Issuer implements it.
type Minter interface {
	Issue(ctx context.Context, req IssueRequest) (IssuedToken, error)
}

// Issuer mints tokens under a policy, signed with one key and naming it
// by kid, and records them.
type Issuer struct {
	cfg      IssuerConfig
	recorder Recorder
	ring     *keys.Ring
	// refusals summarizes bursts of identical record failures.
	refusals repeats
}

// NewIssuer returns an Issuer. The recorder receives every token before it
// is returned.
func NewIssuer(cfg IssuerConfig, rec Recorder) (*Issuer, error) {
	ring, err := issuerRing(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		return nil, errors.New("issuer must not be empty")
	}
	if rec == nil {
		return nil, errors.New("a recorder is required")
	}
	if cfg.MaxLifetime < time.Second {
		return nil, errors.New("maximum token lifetime must be at least 1s")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Issuer{cfg: cfg, recorder: rec, ring: ring}, nil
}

// issuerRing is cfg.Ring, or a ring of issuerKey's key alone.
func issuerRing(cfg IssuerConfig) (*keys.Ring, error) {
	if cfg.Ring != nil {
		if !cfg.Ring.Active().CanSign() {
			return nil, errors.New("the signing key has no private key")
		}
		return cfg.Ring, nil
	}
	k, err := issuerKey(cfg)
	if err != nil {
		return nil, err
	}
	set, err := keys.NewSet(k)
	if err != nil {
		return nil, err
	}
	return keys.NewRing(set), nil
}

// issuerKey is cfg.Key, or the HS256 key of cfg.Secret.
func issuerKey(cfg IssuerConfig) (*keys.Key, error) {
	if cfg.Key != nil {
		if !cfg.Key.CanSign() {
			return nil, errors.New("the signing key has no private key")
		}
		return cfg.Key, nil
	}
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("signing secret must be at least %d bytes", MinSecretLen)
	}
	return keys.NewHMAC(cfg.Secret)
}

// KeyID is the kid of the key that signs.
func (i *Issuer) KeyID() string { return i.ring.Active().ID() }

// IssueRequest describes a token to mint.
type IssueRequest struct {
	ClientID string
	Expiry   Expiry
	Scopes   []string
	// Caller is the identity minting the token; its scopes bound what may
	// be granted.
	Caller *Claims
	// Audience, when set, is the token's aud instead of the configured
	// one (OAuth access tokens name the resource they were granted for).
	Audience string
	// Via names the path the request came by in the audit record
	// ("issue_token", "token_api", "oauth", "cli"); AuditAttrs are more
	// attributes for it (key, value pairs).
	Via        string
	AuditAttrs []any
}

// Issue checks the request against the policy, mints the token, records it
// and returns it. A refused request records nothing. Either way it writes
// the audit record (token.issued or token.issue_refused).
func (i *Issuer) Issue(ctx context.Context, req IssueRequest) (IssuedToken, error) {
	tok, err := i.issue(ctx, req)
	i.audit(ctx, req, tok, err)
	return tok, err
}

func (i *Issuer) audit(ctx context.Context, req IssueRequest, tok IssuedToken, err error) {
	if err != nil {
		by := ""
		if req.Caller != nil {
			by = req.Caller.Subject
		}
		attrs := append([]any{"issued_by", by, "client_id", untrusted.Clip(req.ClientID, 64), "reason", err.Error(), "via", req.Via}, req.AuditAttrs...)
		if errors.Is(err, ErrRecordFailed) {
			// A registry that cannot record (a full disk, an outage)
			// refuses every mint the same way: one record per window.
			emit, repeated := i.refusals.note(cause(err), i.cfg.Now())
			if !emit {
				return
			}
			if repeated > 0 {
				attrs = append(attrs, "repeated_before", repeated)
			}
		}
		Audit(ctx, i.cfg.Logger, EventIssueRefused, attrs...)
		return
	}
	Audit(ctx, i.cfg.Logger, EventTokenIssued, append([]any{"client_id", tok.ClientID, "jti", tok.JTI, "issued_by", tok.IssuedBy,
		"scopes", tok.Scopes.String(), "expires_in", req.Expiry.String(), "via", req.Via}, req.AuditAttrs...)...)
}

func (i *Issuer) issue(ctx context.Context, req IssueRequest) (IssuedToken, error) {
	if err := ValidateClientID(req.ClientID); err != nil {
		return IssuedToken{}, err
	}
	if len(i.cfg.AllowedClients) > 0 && !slices.Contains(i.cfg.AllowedClients, req.ClientID) {
		return IssuedToken{}, fmt.Errorf("%w: %q", ErrClientNotAllowed, req.ClientID)
	}
	if req.Caller == nil {
		return IssuedToken{}, ErrNoCallerIdentity
	}
	scopes := NormalizeScopes(req.Scopes)
	if err := ValidateScopes(scopes); err != nil {
		return IssuedToken{}, err
	}
	for _, s := range scopes {
		if len(i.cfg.KnownScopes) > 0 && s != ScopeAdmin && !slices.Contains(i.cfg.KnownScopes, s) {
			return IssuedToken{}, fmt.Errorf("%w: %q is not one of the configured scopes (%s)", ErrUnknownScope, s, strings.Join(i.cfg.KnownScopes, ", "))
		}
		if !req.Caller.Scope.Has(s) {
			return IssuedToken{}, fmt.Errorf("%w: %q", ErrScopeNotHeld, s)
		}
	}
	switch {
	case req.Expiry.Never && !i.cfg.AllowNever:
		return IssuedToken{}, fmt.Errorf("%w: set MCP_ALLOW_NEVER_EXPIRING=true to allow them (discouraged)", ErrNeverNotAllowed)
	case !req.Expiry.Never && (req.Expiry.Duration < time.Second || req.Expiry.Duration%time.Second != 0):
		return IssuedToken{}, fmt.Errorf("%w: lifetime must be a whole number of seconds, at least 1s", ErrInvalidExpiry)
	case !req.Expiry.Never && req.Expiry.Duration > i.cfg.MaxLifetime:
		return IssuedToken{}, fmt.Errorf("%w: %s is longer than %s", ErrLifetimeTooLong, req.Expiry, Expiry{Duration: i.cfg.MaxLifetime})
	}

	now := i.cfg.Now().Truncate(time.Second)
	jti, err := newJTI()
	if err != nil {
		return IssuedToken{}, err
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   req.ClientID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        jti,
		},
		Scope: scopes,
	}
	switch {
	case req.Audience != "":
		claims.Audience = jwt.ClaimStrings{req.Audience}
	case i.cfg.Audience != "":
		claims.Audience = jwt.ClaimStrings{i.cfg.Audience}
	}
	var exp time.Time
	if !req.Expiry.Never {
		exp = now.Add(req.Expiry.Duration)
		claims.ExpiresAt = jwt.NewNumericDate(exp)
	}
	key := i.ring.Active()
	t := jwt.NewWithClaims(key.Method(), claims)
	t.Header["kid"] = key.ID()
	signed, err := t.SignedString(key.SigningKey())
	if err != nil {
		return IssuedToken{}, fmt.Errorf("sign token: %w", err)
	}
	tok := IssuedToken{
		Token:     signed,
		JTI:       jti,
		ClientID:  req.ClientID,
		Scopes:    scopes,
		IssuedAt:  now,
		ExpiresAt: exp,
		IssuedBy:  req.Caller.Subject,
		KeyID:     key.ID(),
	}
	if err := i.recorder.Record(ctx, tok); err != nil {
		return IssuedToken{}, fmt.Errorf("%w: %w", ErrRecordFailed, err)
	}
	return tok, nil
}

func newJTI() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate jti: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// repeatWindow is how long identical record failures are summarized.
const repeatWindow = 10 * time.Second

// repeats collapses bursts of identical events: the first of a key in a
// window is written, the rest only counted, and the count rides on the
// next one written (repeated_before). Keys are bounded.
type repeats struct {
	mu     sync.Mutex
	bursts map[string]*burst
}

type burst struct {
	start      time.Time
	suppressed int
}

const maxRepeatKeys = 64

// note reports whether an event of key at now is written, and how many
// of its kind were held back before it.
func (r *repeats) note(key string, now time.Time) (emit bool, repeated int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bursts == nil {
		r.bursts = map[string]*burst{}
	}
	b, ok := r.bursts[key]
	if ok && now.Sub(b.start) < repeatWindow {
		b.suppressed++
		return false, 0
	}
	if ok {
		repeated = b.suppressed
	}
	if !ok && len(r.bursts) >= maxRepeatKeys {
		for k, old := range r.bursts {
			if now.Sub(old.start) >= repeatWindow {
				delete(r.bursts, k)
			}
		}
		if len(r.bursts) >= maxRepeatKeys {
			return true, 0 // too many kinds at once: write them all
		}
	}
	r.bursts[key] = &burst{start: now}
	return true, repeated
}

// cause is the innermost error's message: what identical failures share
// (the outer ones name the jti).
func cause(err error) string {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				next = es[len(es)-1]
			}
		}
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
