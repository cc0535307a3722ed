package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// The fast path verifies the tokens mcpauth itself mints (the exact
// header it writes, ASCII string claims, integer times, nothing else)
// without golang-jwt's generic parsing. It never refuses: anything it
// does not recognise, or anything that fails, is left to the full path
// (golang-jwt plus the checks in Verify), which produces the precise
// error. So it can only ever accept what the full path accepts; tests
// and FuzzFastPathAgrees hold it to that.

// mintedHeader is the base64url header golang-jwt writes for HS256.
var mintedHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

var strictB64 = base64.RawURLEncoding.Strict()

// macPool holds HMAC-SHA256 states keyed with the verifier's secret.
type macPool struct{ p sync.Pool }

func newMACPool(secret []byte) *macPool {
	key := append([]byte(nil), secret...)
	return &macPool{p: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// claimsBlock puts the claims and their dates in one allocation.
type claimsBlock struct {
	c             Claims
	exp, nbf, iat jwt.NumericDate
}

// fast returns the claims of a token it can vouch for, or ok=false.
func (v *Verifier) fast(token string) (c *Claims, ok bool) {
	head, rest, _ := strings.Cut(token, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	if head != mintedHeader || len(sig) != 43 || len(payload) > 2048 {
		return nil, false
	}
	var want [32]byte
	if n, err := strictB64.Decode(want[:], unsafe.Slice(unsafe.StringData(sig), len(sig))); err != nil || n != 32 {
		return nil, false
	}
	mac := v.macs.p.Get().(hash.Hash)
	mac.Reset()
	signed := token[:len(head)+1+len(payload)]
	mac.Write(unsafe.Slice(unsafe.StringData(signed), len(signed)))
	var got [32]byte
	mac.Sum(got[:0])
	v.macs.p.Put(mac)
	if !hmac.Equal(got[:], want[:]) {
		return nil, false
	}
	var buf [1536]byte
	n, err := strictB64.Decode(buf[:], unsafe.Slice(unsafe.StringData(payload), len(payload)))
	if err != nil {
		return nil, false
	}
	return v.fastClaims(buf[:n])
}

// fastClaims reads a flat claims object of known members only.
func (v *Verifier) fastClaims(obj []byte) (*Claims, bool) {
	var (
		iss, sub, jti, aud, scope []byte
		exp, nbf, iat             int64
		hasExp, hasNbf, hasIat    bool
		seen                      uint16
	)
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] != '}' {
		name, next, ok := simpleString(obj, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(obj, next)
		if i >= len(obj) || obj[i] != ':' {
			return nil, false
		}
		i = skipSpace(obj, i+1)
		bit := uint16(0)
		switch string(name) {
		case "iss", "sub", "jti", "aud", "scope":
			val, next, ok := simpleString(obj, i)
			if !ok {
				return nil, false
			}
			i = next
			switch string(name) {
			case "iss":
				iss, bit = val, 1
			case "sub":
				sub, bit = val, 2
			case "jti":
				jti, bit = val, 4
			case "aud":
				aud, bit = val, 8
			case "scope":
				scope, bit = val, 16
			}
		case "exp", "nbf", "iat":
			val, next, ok := simpleInt(obj, i)
			if !ok {
				return nil, false
			}
			i = next
			switch string(name) {
			case "exp":
				exp, hasExp, bit = val, true, 32
			case "nbf":
				nbf, hasNbf, bit = val, true, 64
			case "iat":
				iat, hasIat, bit = val, true, 128
			}
		default:
			return nil, false // unknown member: the full path decides
		}
		if seen&bit != 0 {
			return nil, false // duplicate
		}
		seen |= bit
		i = skipSpace(obj, i)
		if i >= len(obj) {
			return nil, false
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
			if i >= len(obj) || obj[i] != '"' {
				return nil, false // trailing comma
			}
		case '}':
		default:
			return nil, false // members must be separated by commas
		}
	}
	if i >= len(obj) || skipSpace(obj, i+1) != len(obj) {
		return nil, false
	}

	// The checks of the full path, in its terms.
	now := v.cfg.Now()
	lw := v.cfg.Leeway
	if string(iss) != v.cfg.Issuer || len(sub) == 0 || len(jti) == 0 {
		return nil, false
	}
	if v.cfg.Audience != "" && string(aud) != v.cfg.Audience {
		return nil, false
	}
	if seen&8 != 0 && !v.audienceOK([]string{string(aud)}) {
		return nil, false
	}
	b := &claimsBlock{}
	if hasExp {
		b.exp.Time = time.Unix(exp, 0).Truncate(jwt.TimePrecision)
		if !now.Before(b.exp.Time.Add(lw)) {
			return nil, false
		}
		b.c.ExpiresAt = &b.exp
	} else if !v.cfg.AllowNever {
		return nil, false
	}
	if hasNbf {
		b.nbf.Time = time.Unix(nbf, 0).Truncate(jwt.TimePrecision)
		if now.Before(b.nbf.Time.Add(-lw)) {
			return nil, false
		}
		b.c.NotBefore = &b.nbf
	}
	if hasIat {
		b.iat.Time = time.Unix(iat, 0).Truncate(jwt.TimePrecision)
		if now.Before(b.iat.Time.Add(-lw)) {
			return nil, false
		}
		b.c.IssuedAt = &b.iat
	}
	b.c.Issuer = v.cfg.Issuer
	b.c.Subject = string(sub)
	b.c.ID = string(jti)
	if seen&8 != 0 {
		b.c.Audience = jwt.ClaimStrings{string(aud)}
	}
	if seen&16 != 0 {
		b.c.Scope = ParseScopes(string(scope))
	}
	return &b.c, true
}

// simpleString reads a JSON string at obj[i] made of printable ASCII
// without escapes (what mcpauth writes); anything else is not simple.
func simpleString(obj []byte, i int) (val []byte, next int, ok bool) {
	if i >= len(obj) || obj[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(obj); j++ {
		switch c := obj[j]; {
		case c == '"':
			return obj[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// simpleInt reads a JSON integer of at most 12 digits (dates up to the
// year 33658) at obj[i]; fractions, exponents and leading zeros are not
// simple.
func simpleInt(obj []byte, i int) (val int64, next int, ok bool) {
	j := i
	neg := j < len(obj) && obj[j] == '-'
	if neg {
		j++
	}
	start := j
	for j < len(obj) && obj[j] >= '0' && obj[j] <= '9' {
		val = val*10 + int64(obj[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 12 || (digits > 1 && obj[start] == '0') {
		return 0, 0, false
	}
	if j < len(obj) && (obj[j] == '.' || obj[j] == 'e' || obj[j] == 'E') {
		return 0, 0, false
	}
	if neg {
		val = -val
	}
	return val, j, true
}
