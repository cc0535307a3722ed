package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Set is the keys of one server: the active key, which signs every new
// token, and the keys that still verify (the HS256 secret's previous
// value, the asymmetric keys of a rotation), each found by its kid. A Set
// does not change once made; a rotation makes a new one.
type Set struct {
	active *Key
	all    []*Key // active first, then in the order given
	byID   map[string]*Key
	// until and retired are the lifecycle (WithLifecycle): when each
	// verifying key's grace ends, and the kids retired.
	until, retired map[string]time.Time
	// jwks is the JWKS document, rendered once.
	jwksOnce sync.Once
	jwks     []byte
	jwksErr  error
}

// NewSet is the set of active and verify. The active key must be able to
// sign. A key whose kid is already in the set is the same key (kids are
// hashes of the key) and is skipped.
func NewSet(active *Key, verify ...*Key) (*Set, error) {
	if active == nil || !active.CanSign() {
		return nil, errors.New("the active key must be a signing key")
	}
	s := &Set{active: active, byID: map[string]*Key{}}
	for _, k := range append([]*Key{active}, verify...) {
		if k == nil {
			return nil, errors.New("nil key")
		}
		if _, dup := s.byID[k.id]; dup {
			continue
		}
		s.byID[k.id] = k
		s.all = append(s.all, k)
	}
	return s, nil
}

// Active is the key that signs.
func (s *Set) Active() *Key { return s.active }

// Lookup is the key named kid. A kid is only ever a map key here: never a
// path, a URL or a query.
func (s *Set) Lookup(kid string) (*Key, bool) {
	k, ok := s.byID[kid]
	return k, ok
}

// Keys are every key, the active one first.
func (s *Set) Keys() []*Key { return s.all }

// Symmetric are the HS256 keys, in order: the only keys that may verify a
// token without kid (minted before tokens carried one).
func (s *Set) Symmetric() []*Key {
	var out []*Key
	for _, k := range s.all {
		if k.Symmetric() {
			out = append(out, k)
		}
	}
	return out
}

// JWKS is the RFC 7517 JWK Set of the public keys: kty, kid, alg, use
// "sig" and the public parameters only. HMAC secrets are never in it, and
// with no asymmetric key it is {"keys":[]}.
func (s *Set) JWKS() ([]byte, error) {
	s.jwksOnce.Do(func() { s.jwks, s.jwksErr = s.renderJWKS() })
	return s.jwks, s.jwksErr
}

func (s *Set) renderJWKS() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range s.all {
		if k.Symmetric() {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.verifying, KeyID: k.id, Algorithm: k.alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal JWKS: %w", err)
	}
	return b, nil
}

// Retired is when the key named kid was retired, if it was: its tokens
// are refused, naming the retirement, instead of as an unknown key.
func (s *Set) Retired(kid string) (time.Time, bool) {
	at, ok := s.retired[kid]
	return at, ok
}

// RetiredKeys are the retired kids with when each was retired.
func (s *Set) RetiredKeys() map[string]time.Time { return maps.Clone(s.retired) }

// Until is when a key that verifies but no longer signs stops verifying
// (the end of its grace period), if that is decided.
func (s *Set) Until(kid string) (time.Time, bool) {
	at, ok := s.until[kid]
	return at, ok
}

// WithLifecycle is a copy of s that knows when each of its verifying
// keys' grace ends (until) and which kids were retired (retired; a
// retired kid that is still in s is dropped from the copy, unless it is
// the active key).
func (s *Set) WithLifecycle(until, retired map[string]time.Time) *Set {
	out := &Set{active: s.active, byID: map[string]*Key{}, until: maps.Clone(until), retired: maps.Clone(retired)}
	for _, k := range s.all {
		if _, gone := retired[k.id]; gone && k != s.active {
			continue
		}
		delete(out.retired, k.id)
		out.byID[k.id] = k
		out.all = append(out.all, k)
	}
	return out
}

// Ring holds the current Set and swaps it whole on a rotation: readers
// take the set once per use and never see half a change.
type Ring struct {
	cur atomic.Pointer[Set]
}

// NewRing is a ring holding s.
func NewRing(s *Set) *Ring {
	r := &Ring{}
	r.cur.Store(s)
	return r
}

// Set is the current set.
func (r *Ring) Set() *Set { return r.cur.Load() }

// Store makes s the current set.
func (r *Ring) Store(s *Set) { r.cur.Store(s) }

// Active is the current set's signing key.
func (r *Ring) Active() *Key { return r.Set().Active() }

// Keys are the current set's keys, the active one first.
func (r *Ring) Keys() []*Key { return r.Set().Keys() }

// JWKS is the current set's JWK Set document.
func (r *Ring) JWKS() ([]byte, error) { return r.Set().JWKS() }

// Lookup is the current set's key named kid.
func (r *Ring) Lookup(kid string) (*Key, bool) { return r.Set().Lookup(kid) }
