package idp

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"
)

// key is one verification key of a provider and the one algorithm it
// verifies: the JWK's "alg", or the one its type implies.
type key struct {
	alg string
	pub any // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

// keySource is one provider's JWKS: discovered lazily, cached for what
// the response's Cache-Control allows (within bounds), and fetched again
// for a key id it does not know at most once per Options.MinRefresh. A
// provider that cannot be reached keeps its last keys (up to
// Options.MaxKeyAge) and never blocks other providers.
type keySource struct {
	p   *Provider
	f   *fetcher
	o   *Options
	log *slog.Logger
	// limit spaces out fetches: an unknown kid or a failing provider
	// costs at most one fetch per MinRefresh, whatever tokens arrive.
	limit *rate.Limiter

	fetch sync.Mutex // one fetch at a time

	mu        sync.RWMutex
	jwksURI   string
	keys      map[string]key // by kid ("" for a key without one)
	fetchedAt time.Time
	expires   time.Time
	lastErr   error
}

func newKeySource(p *Provider, f *fetcher, o *Options) *keySource {
	return &keySource{
		p: p, f: f, o: o, jwksURI: p.JWKSURI,
		log:   o.Logger.With("provider", p.Name),
		limit: rate.NewLimiter(rate.Every(o.MinRefresh), 1),
	}
}

// errUnknownKey refuses a token signed with a key the provider does not
// publish (after a refresh, when one was allowed).
var errUnknownKey = errors.New("the token's key is not among the identity provider's keys")

// errNoKeys means the provider's keys were never fetched, or are too old.
var errNoKeys = errors.New("the identity provider's keys are not available")

// key returns the key with id kid, fetching the set when it is unknown
// or out of date and a fetch is allowed.
func (s *keySource) key(ctx context.Context, kid string) (key, error) {
	k, found, fresh := s.lookup(kid)
	if found && fresh {
		return k, nil
	}
	s.fetch.Lock()
	defer s.fetch.Unlock()
	// Another caller may have fetched while this one waited.
	if k, found, fresh = s.lookup(kid); found && fresh {
		return k, nil
	}
	if s.limit.AllowN(s.o.Now(), 1) {
		s.refresh(ctx)
	}
	k, found, _ = s.lookup(kid)
	switch {
	case found && s.usable():
		return k, nil
	case !s.usable():
		return key{}, fmt.Errorf("%w: %v", errNoKeys, s.err())
	}
	return key{}, errUnknownKey
}

// lookup finds kid in the cached set; fresh is whether the set is within
// its cache lifetime.
func (s *keySource) lookup(kid string) (k key, found, fresh bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, found = s.keys[kid]
	if !found && kid == "" && len(s.keys) == 1 {
		// A token without kid from a provider with one key.
		for _, only := range s.keys {
			k, found = only, true
		}
	}
	return k, found, s.keys != nil && s.o.Now().Before(s.expires)
}

// usable reports whether the cached set may still be used: fetched, and
// not older than MaxKeyAge (a provider out of reach for that long has its
// tokens refused rather than keys it may have withdrawn trusted).
func (s *keySource) usable() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys != nil && s.o.Now().Sub(s.fetchedAt) < s.o.MaxKeyAge
}

func (s *keySource) err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.lastErr == nil {
		return errors.New("not fetched yet")
	}
	return s.lastErr
}

// refresh fetches the set (discovering its URL first when needed); on
// failure the old set stays and the error is kept and logged.
func (s *keySource) refresh(ctx context.Context) {
	keys, ttl, err := s.load(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = err
		s.log.Warn("identity provider keys could not be fetched; keeping the previous ones", "issuer", s.p.Issuer, "err", err)
		return
	}
	now := s.o.Now()
	s.keys, s.fetchedAt, s.expires, s.lastErr = keys, now, now.Add(s.o.cacheFor(ttl)), nil
}

func (s *keySource) load(ctx context.Context) (map[string]key, time.Duration, error) {
	s.mu.RLock()
	uri := s.jwksURI
	s.mu.RUnlock()
	if uri == "" {
		var err error
		if uri, err = s.discover(ctx); err != nil {
			return nil, 0, err
		}
		s.mu.Lock()
		s.jwksURI = uri
		s.mu.Unlock()
	}
	b, ttl, err := s.f.get(ctx, uri)
	if err != nil {
		return nil, 0, err
	}
	keys, err := parseJWKS(b)
	return keys, ttl, err
}

// discover reads the provider's metadata: OpenID Connect discovery, then
// RFC 8414. The document must name the configured issuer exactly and an
// https jwks_uri (loopback http in development).
func (s *keySource) discover(ctx context.Context) (string, error) {
	var errs []error
	for _, u := range metadataURLs(s.p.Issuer) {
		b, _, err := s.f.get(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(b, &md); err != nil {
			return "", fmt.Errorf("metadata %s: %w", u, err)
		}
		if md.Issuer != s.p.Issuer {
			return "", fmt.Errorf("metadata %s names issuer %q, not %q", u, md.Issuer, s.p.Issuer)
		}
		if err := checkURL(md.JWKSURI, s.f.loopback); err != nil {
			return "", fmt.Errorf("metadata %s: jwks_uri: %w", u, err)
		}
		return md.JWKSURI, nil
	}
	return "", errors.Join(errs...)
}

// metadataURLs are where an issuer's metadata may be: OpenID Connect
// discovery appends to the issuer; RFC 8414 inserts before its path.
func metadataURLs(issuer string) []string {
	iss := strings.TrimSuffix(issuer, "/")
	oidc := iss + "/.well-known/openid-configuration"
	scheme, rest, _ := strings.Cut(issuer, "://")
	host, path, _ := strings.Cut(rest, "/")
	path = strings.TrimSuffix(path, "/")
	if path != "" {
		path = "/" + path
	}
	return []string{oidc, scheme + "://" + host + "/.well-known/oauth-authorization-server" + path}
}

// parseJWKS reads the signing keys of a JWKS. Keys mcpauth cannot use
// (encryption keys, symmetric keys, other types or curves, RSA under
// 2048 bits, a "use" other than sig) are skipped, not fatal: providers
// publish more than one kind.
func parseJWKS(b []byte) (map[string]key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil || set.Keys == nil {
		return nil, errors.New(`the JWKS is not a JSON object with "keys"`)
	}
	out := map[string]key{}
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if jwk.UnmarshalJSON(raw) != nil || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if k, ok := usable(jwk); ok {
			out[jwk.KeyID] = k
		}
	}
	return out, nil
}

// usable turns a JWK into a verification key and its algorithm.
func usable(jwk jose.JSONWebKey) (key, bool) {
	if !jwk.IsPublic() {
		jwk = jwk.Public() // only the public half is ever needed
	}
	var alg string
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return key{}, false
		}
		alg = "RS256"
		if jwk.Algorithm == "PS256" {
			alg = "PS256"
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return key{}, false
		}
		alg = "ES256"
	case ed25519.PublicKey:
		alg = "EdDSA"
	default:
		return key{}, false
	}
	if jwk.Algorithm != "" && jwk.Algorithm != alg {
		return key{}, false
	}
	return key{alg: alg, pub: jwk.Key}, true
}
