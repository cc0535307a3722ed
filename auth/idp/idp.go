// Package idp verifies access tokens of identity providers the operator
// trusts besides mcpauth itself (issue #14): each provider's keys come
// from its JWKS, found by OpenID Connect discovery or RFC 8414 metadata,
// and its tokens are held to RFC 9068. A verified caller is
// "<provider>:<sub>", which no local client id can spell, with the
// provider's scope claim mapped to mcpauth scopes. A *Set plugs into
// auth.VerifierConfig.External.
package idp

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
)

// Options are the settings shared by every provider. Zero values get the
// defaults named.
type Options struct {
	// Resources are this server's resource URLs: a provider without an
	// Audience must name one of them in aud.
	Resources []string
	// AllowLoopbackHTTP accepts http issuer and JWKS URLs on loopback
	// (development only: tokens' keys would travel unauthenticated).
	AllowLoopbackHTTP bool
	// Client makes the requests; a plain client when nil. Timeout bounds
	// each request (10s); MaxResponseBytes each document (1 MiB).
	Client           *http.Client
	Timeout          time.Duration
	MaxResponseBytes int64
	// RefreshInterval is how long a JWKS is used when its response has no
	// Cache-Control max-age (15m); a max-age is held between MinRefresh
	// and MaxRefresh (1m and 24h).
	RefreshInterval, MaxRefresh time.Duration
	// MinRefresh spaces out fetches beyond the scheduled ones (a key id
	// not in the set, a provider failing): at most one per interval (5s).
	MinRefresh time.Duration
	// MaxKeyAge is how long keys are used while the provider cannot be
	// reached (24h); then its tokens are refused.
	MaxKeyAge time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat
	// (auth.DefaultLeeway).
	Leeway time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives fetch failures; never a token.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	o.Timeout = cmpOr(o.Timeout, 10*time.Second)
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 1 << 20
	}
	o.RefreshInterval = cmpOr(o.RefreshInterval, 15*time.Minute)
	o.MinRefresh = cmpOr(o.MinRefresh, 5*time.Second)
	o.MaxRefresh = cmpOr(o.MaxRefresh, 24*time.Hour)
	o.MaxKeyAge = cmpOr(o.MaxKeyAge, 24*time.Hour)
	o.Leeway = cmpOr(o.Leeway, auth.DefaultLeeway)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// cacheFor is how long a JWKS fetched with max-age ttl is used.
func (o *Options) cacheFor(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return o.RefreshInterval
	}
	return min(max(ttl, time.Minute, o.MinRefresh), o.MaxRefresh)
}

// Set is the providers the operator trusts.
type Set struct {
	byIssuer map[string]*trusted
	issuers  []string
	opts     Options
}

// trusted is one provider with its keys and parser.
type trusted struct {
	p      Provider
	keys   *keySource
	parser *jwt.Parser
}

// New checks the providers and returns their Set. Nothing is fetched:
// each provider's metadata and keys are fetched when its first token
// arrives, so a provider that is down at start delays only its own
// callers.
func New(ps []Provider, o Options) (*Set, error) {
	o.defaults()
	if err := Check(ps, o.AllowLoopbackHTTP); err != nil {
		return nil, err
	}
	s := &Set{byIssuer: map[string]*trusted{}, opts: o}
	f := newFetcher(o)
	for _, p := range ps {
		t := &trusted{p: p}
		t.keys = newKeySource(&t.p, f, &s.opts)
		t.parser = s.parser(&t.p)
		s.byIssuer[p.Issuer] = t
		s.issuers = append(s.issuers, p.Issuer)
	}
	return s, nil
}

// Issuers are the trusted issuer URLs, in configuration order.
func (s *Set) Issuers() []string { return append([]string(nil), s.issuers...) }

// Trusts reports whether iss is a trusted provider's issuer, exactly.
func (s *Set) Trusts(iss string) bool {
	_, ok := s.byIssuer[iss]
	return ok
}

// Prefetch fetches every provider's keys once, in the background, so the
// first callers do not wait for discovery; failures are only logged.
func (s *Set) Prefetch(ctx context.Context) {
	for _, t := range s.byIssuer {
		go func() { _, _ = t.keys.key(ctx, "\x00prefetch") }()
	}
}
