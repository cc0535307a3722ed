package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/strictjson"
)

// The fast path verifies the HS256 tokens mcpauth itself mints with its
// first HMAC secret (the exact header it writes, with that secret's kid
// or with no kid, ASCII string claims, integer times, nothing else)
// without golang-jwt's generic parsing. Tokens of every other key (ES256,
// EdDSA, RS256, a previous HS256 secret) take the full path. It never refuses: anything it
// does not recognise, or anything that fails, is left to the full path
// (golang-jwt plus the checks in Verify), which produces the precise
// error. So it can only ever accept what the full path accepts; tests
// and FuzzFastPathAgrees hold it to that.

// mintedHeader is the base64url header golang-jwt writes for HS256
// without a kid: tokens minted before tokens carried one.
var mintedHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// mintedHeaderWithKID is the base64url header the Issuer writes with the
// HS256 key kid (golang-jwt marshals the header map, members sorted).
func mintedHeaderWithKID(kid string) string {
	b, _ := json.Marshal(map[string]string{"alg": "HS256", "kid": kid, "typ": "JWT"})
	return base64.RawURLEncoding.EncodeToString(b)
}

var strictB64 = base64.RawURLEncoding.Strict()

// macPool holds HMAC-SHA256 states keyed with the verifier's first HMAC
// secret: the kid of mintedHeaderWithKID, or no kid at all.
type macPool struct{ p sync.Pool }

func newMACPool(secret []byte) *macPool {
	key := append([]byte(nil), secret...)
	return &macPool{p: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// payloadBufs hold decoded claims while the fast path reads them (the
// claims it returns copy what they keep). A pool rather than the stack:
// the bytes reach strictjson.Walk's callback, so they would escape.
var payloadBufs = sync.Pool{New: func() any { return new([1536]byte) }}

// claimsBlock puts the claims and their dates in one allocation.
type claimsBlock struct {
	c             Claims
	exp, nbf, iat jwt.NumericDate
}

// fast returns the claims of a token it can vouch for, or ok=false.
func (v *Verifier) fast(st *keyState, token string) (c *Claims, ok bool) {
	head, rest, _ := strings.Cut(token, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	if st.macs == nil || (head != st.fastHeader && head != mintedHeader) || len(sig) != 43 || len(payload) > 2048 {
		return nil, false
	}
	var want [32]byte
	if n, err := strictB64.Decode(want[:], unsafe.Slice(unsafe.StringData(sig), len(sig))); err != nil || n != 32 {
		return nil, false
	}
	mac := st.macs.p.Get().(hash.Hash)
	mac.Reset()
	signed := token[:len(head)+1+len(payload)]
	mac.Write(unsafe.Slice(unsafe.StringData(signed), len(signed)))
	var got [32]byte
	mac.Sum(got[:0])
	st.macs.p.Put(mac)
	if !hmac.Equal(got[:], want[:]) {
		return nil, false
	}
	buf := payloadBufs.Get().(*[1536]byte)
	defer payloadBufs.Put(buf)
	n, err := strictB64.Decode(buf[:], unsafe.Slice(unsafe.StringData(payload), len(payload)))
	if err != nil {
		return nil, false
	}
	return v.fastClaims(buf[:n])
}

// mintedClaims are the members of a claims object in the shape mcpauth
// mints: ASCII strings without escapes and integer dates.
type mintedClaims struct {
	iss, sub, jti, aud, scope []byte
	exp, nbf, iat             int64
	has                       uint8 // the optional members present: has* bits
}

const (
	hasAud = 1 << iota
	hasScope
	hasExp
	hasNbf
	hasIat
)

// errNotMinted stops the walk of a claims object the fast path leaves to
// the full path.
var errNotMinted = errors.New("not in the minted shape")

// member reads one claim; an unknown member or a value in another shape
// is errNotMinted. Repeated names never get here (strictjson.Walk).
func (m *mintedClaims) member(name, value []byte) error {
	var ok bool
	switch string(name) {
	case "iss":
		m.iss, ok = simpleString(value)
	case "sub":
		m.sub, ok = simpleString(value)
	case "jti":
		m.jti, ok = simpleString(value)
	case "aud":
		m.aud, ok = simpleString(value)
		m.has |= hasAud
	case "scope":
		m.scope, ok = simpleString(value)
		m.has |= hasScope
	case "exp":
		m.exp, ok = simpleInt(value)
		m.has |= hasExp
	case "nbf":
		m.nbf, ok = simpleInt(value)
		m.has |= hasNbf
	case "iat":
		m.iat, ok = simpleInt(value)
		m.has |= hasIat
	}
	if !ok {
		return errNotMinted
	}
	return nil
}

// fastClaims reads a flat claims object of known members only and applies
// the checks of the full path, in its terms.
func (v *Verifier) fastClaims(obj []byte) (*Claims, bool) {
	var m mintedClaims
	end, err := strictjson.Walk(obj, func(name, value []byte) error { return m.member(name, value) })
	if err != nil || len(bytes.TrimLeft(obj[end:], " \t\n\r")) != 0 {
		return nil, false
	}
	if string(m.iss) != v.cfg.Issuer || len(m.sub) == 0 || len(m.jti) == 0 {
		return nil, false
	}
	if v.cfg.Audience != "" && string(m.aud) != v.cfg.Audience {
		return nil, false
	}
	if m.has&hasAud != 0 && !v.audienceOK([]string{string(m.aud)}) {
		return nil, false
	}
	if m.has&hasExp == 0 && !v.cfg.AllowNever {
		return nil, false
	}
	b := &claimsBlock{}
	if !v.fastDates(&m, b) {
		return nil, false
	}
	b.c.Issuer = v.cfg.Issuer
	b.c.Subject = string(m.sub)
	b.c.ID = string(m.jti)
	if m.has&hasAud != 0 {
		b.c.Audience = jwt.ClaimStrings{string(m.aud)}
	}
	if m.has&hasScope != 0 {
		b.c.Scope = ParseScopes(string(m.scope))
	}
	return &b.c, true
}

// fastDates checks exp, nbf and iat against the clock with the leeway and
// puts them in b.
func (v *Verifier) fastDates(m *mintedClaims, b *claimsBlock) bool {
	now, lw := v.cfg.Now(), v.cfg.Leeway
	if m.has&hasExp != 0 {
		b.exp.Time = time.Unix(m.exp, 0).Truncate(jwt.TimePrecision)
		if !now.Before(b.exp.Time.Add(lw)) {
			return false
		}
		b.c.ExpiresAt = &b.exp
	}
	if m.has&hasNbf != 0 {
		b.nbf.Time = time.Unix(m.nbf, 0).Truncate(jwt.TimePrecision)
		if now.Before(b.nbf.Time.Add(-lw)) {
			return false
		}
		b.c.NotBefore = &b.nbf
	}
	if m.has&hasIat != 0 {
		b.iat.Time = time.Unix(m.iat, 0).Truncate(jwt.TimePrecision)
		if now.Before(b.iat.Time.Add(-lw)) {
			return false
		}
		b.c.IssuedAt = &b.iat
	}
	return true
}

// simpleString reads a JSON string value made of printable ASCII without
// escapes (what mcpauth writes); anything else is not simple.
func simpleString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x7f {
			return nil, false
		}
	}
	return v[1 : len(v)-1], true
}

// simpleInt reads a JSON integer value of at most 12 digits (dates up to
// the year 33658); fractions, exponents and leading zeros are not simple.
func simpleInt(v []byte) (int64, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 12 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(v) {
		n = -n
	}
	return n, true
}
