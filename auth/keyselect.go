package auth

import (
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
)

// Which key verifies a token. The kid names it; the algorithm is the
// key's, and a token whose alg differs is refused before any signature
// is computed, so an HMAC secret never checks an RS/ES/EdDSA token and a
// public key is never used as an HMAC secret. Headers that point at keys
// elsewhere are refused, never followed.

// foreignKeyHeaders name keys outside this server's set (RFC 7515 4.1.2-6).
var foreignKeyHeaders = [...]string{"jku", "jwk", "x5u", "x5c"}

// keyRefusal is a key function's refusal; classify shows its reason.
type keyRefusal struct{ reason string }

func (e *keyRefusal) Error() string { return e.reason }

func refuseKey(format string, args ...any) error {
	return &keyRefusal{reason: fmt.Sprintf(format, args...)}
}

// key is the golang-jwt key function: the verifying key of the one key
// the kid names, or for a token without kid every HMAC secret in turn.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	ks, err := v.keysFor(t)
	if err != nil {
		return nil, err
	}
	if len(ks) == 1 {
		return ks[0].VerifyingKey(), nil
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(ks))}
	for _, k := range ks {
		set.Keys = append(set.Keys, k.VerifyingKey())
	}
	return set, nil
}

// keysFor is the keys that may verify t, each of t's algorithm.
func (v *Verifier) keysFor(t *jwt.Token) ([]*keys.Key, error) {
	for _, h := range foreignKeyHeaders {
		if _, ok := t.Header[h]; ok {
			return nil, refuseKey("the token names a key by %s, which is never followed (only this server's keys verify)", h)
		}
	}
	raw, has := t.Header["kid"]
	if !has {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, refuseKey("a token signed with %s must name its key (kid)", t.Method.Alg())
		}
		if hm := v.keys.Symmetric(); len(hm) > 0 {
			return hm, nil
		}
		return nil, refuseKey("the token names no key (kid) and this server has no HS256 secret")
	}
	kid, ok := raw.(string)
	if !ok {
		return nil, refuseKey("kid must be a string")
	}
	k, ok := v.keys.Lookup(kid)
	if !ok {
		return nil, refuseKey("unknown signing key (kid): no key of this server has that kid")
	}
	if t.Method != k.Method() {
		return nil, refuseKey("the token's alg is not the algorithm of the key its kid names")
	}
	return []*keys.Key{k}, nil
}

// KeyInfo names the key that signed a token.
type KeyInfo struct {
	ID  string `json:"kid"`
	Alg string `json:"alg"`
}

// signedBy is the key whose signature token carries (claims unchecked),
// or nil when none of this server's keys made it.
func (v *Verifier) signedBy(token string) *KeyInfo {
	p := jwt.NewParser(jwt.WithValidMethods(v.algs), jwt.WithoutClaimsValidation())
	tok, _, err := p.ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return nil
	}
	ks, err := v.keysFor(tok)
	if err != nil {
		return nil
	}
	for _, k := range ks {
		if _, err := p.Parse(token, func(*jwt.Token) (any, error) { return k.VerifyingKey(), nil }); err == nil {
			return &KeyInfo{ID: k.ID(), Alg: k.Alg()}
		}
	}
	return nil
}
