package keys

import (
	"encoding/json"
	"errors"
	"fmt"

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
