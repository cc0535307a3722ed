package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Which key verifies a token. The kid names it; the algorithm is the
// key's, and a token whose alg differs is refused before any signature
// is computed, so an HMAC secret never checks an RS/ES/EdDSA token and a
// public key is never used as an HMAC secret. Headers that point at keys
// elsewhere are refused, never followed.

// foreignKeyHeaders name keys outside this server's set (RFC 7515 4.1.2-6).
var foreignKeyHeaders = [...]string{"jku", "jwk", "x5u", "x5c"}

// maxKIDLen bounds the kids that may ask for a reload: every kid this
// server makes is far shorter.
const maxKIDLen = 128

// keyRefusal is a key function's refusal; classify shows its reason.
type keyRefusal struct{ reason string }

func (e *keyRefusal) Error() string { return e.reason }

func refuseKey(format string, args ...any) error {
	return &keyRefusal{reason: fmt.Sprintf(format, args...)}
}

// key is the golang-jwt key function: the verifying key of the one key
// the kid names, or for a token without kid every HMAC secret in turn.
func (v *Verifier) key(st *keyState, t *jwt.Token) (any, error) {
	ks, err := v.keysFor(st, t)
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
func (v *Verifier) keysFor(st *keyState, t *jwt.Token) ([]*keys.Key, error) {
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
		if hm := st.set.Symmetric(); len(hm) > 0 {
			return hm, nil
		}
		return nil, refuseKey("the token names no key (kid) and this server has no HS256 secret")
	}
	kid, ok := raw.(string)
	if !ok {
		return nil, refuseKey("kid must be a string")
	}
	k, ok := st.set.Lookup(kid)
	if !ok && v.cfg.Refresh != nil && len(kid) <= maxKIDLen && v.cfg.Refresh(kid) {
		// Another replica may have rotated: the reloaded set decides.
		// The key function keeps st's algorithms, so a key of an
		// algorithm st has none of still fails (and the next request,
		// on the new state, verifies).
		k, ok = v.current().set.Lookup(kid)
	}
	if !ok {
		return nil, refuseKey("unknown signing key (kid): no key of this server has that kid")
	}
	if t.Method != k.Method() {
		return nil, refuseKey("the token's alg is not the algorithm of the key its kid names")
	}
	return []*keys.Key{k}, nil
}

// retiredRefusal is the refusal of a token whose header names a key of
// set that was retired (whatever else is wrong with it: the retirement
// is the reason a client can act on), or nil.
func retiredRefusal(set *keys.Set, token string) error {
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil
	}
	var h struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil || h.KID == "" {
		return nil
	}
	at, retired := set.Retired(h.KID)
	if !retired {
		return nil
	}
	return Refuse(ErrTokenInvalid, "the token was signed by a retired key (kid %s, retired %s): ask for a new token",
		untrusted.Clip(h.KID, maxKIDLen), at.UTC().Format(time.RFC3339))
}

// KeyInfo names the key that signed a token.
type KeyInfo struct {
	ID  string `json:"kid"`
	Alg string `json:"alg"`
}

// signedBy is the key whose signature token carries (claims unchecked),
// or nil when none of this server's keys made it.
func (v *Verifier) signedBy(token string) *KeyInfo {
	st := v.current()
	p := jwt.NewParser(jwt.WithValidMethods(st.algs), jwt.WithoutClaimsValidation())
	tok, _, err := p.ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return nil
	}
	ks, err := v.keysFor(st, tok)
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
