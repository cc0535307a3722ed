package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/internal/strictjson"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// MaxTokenLen is the largest token accepted; anything longer is refused
// before any parsing (bounded work for hostile input).
const MaxTokenLen = 8 << 10

// DefaultLeeway is the clock skew tolerated on exp and nbf.
const DefaultLeeway = 30 * time.Second

// RevocationChecker reports whether a token id has been revoked.
type RevocationChecker interface {
	IsRevoked(jti string) bool
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Secret is the HS256 secret, the only key when Keys is nil.
	Secret []byte
	// Keys, when set, are the keys that verify (Secret is then unused):
	// a token names its key by kid, and is verified with that key's
	// algorithm only. A token without kid may only be HS256 and is
	// verified with the set's HMAC secrets (tokens minted before tokens
	// carried a kid, and the legacy issuers' tokens).
	Keys *keys.Set
	// Ring, when set, holds the keys instead of Keys, and may be swapped
	// (a rotation, a retirement): every verification uses the set the
	// ring holds then, and a swap forgets every remembered token.
	Ring *keys.Ring
	// Refresh, when set, is asked to reload the ring when a token names
	// a kid the set does not hold (another replica may have rotated); it
	// reports whether the ring changed, and bounds its own rate.
	Refresh func(kid string) bool
	// Issuer is the required iss claim.
	Issuer string
	// Audience, when set, must appear in aud.
	Audience string
	// Leeway is the tolerated clock skew; DefaultLeeway when zero.
	Leeway time.Duration
	// AllowNever accepts tokens without exp.
	AllowNever bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// LegacyIssuers are more iss values accepted on tokens signed with
	// this server's secret: those of the scripts operators minted tokens
	// with before mcpauth. Such tokens may lack jti; theirs is then
	// LegacyJTI of the token, so they can be recorded (token import),
	// listed and revoked like any other.
	LegacyIssuers []string
	// Revoked, when set, refuses tokens whose jti it reports revoked.
	Revoked RevocationChecker
	// RevocationMaxAge, when positive, refuses every token with
	// ErrRevocationStale once Revoked (which must then report SyncedAt)
	// has not matched the registry for longer: a replica cut off from
	// the registry fails closed instead of honouring revoked tokens for
	// as long as the cut lasts.
	RevocationMaxAge time.Duration
	// AllowedClients, when non-empty, refuses tokens of any other
	// subject (MCP_ALLOWED_CLIENTS).
	AllowedClients []string
	// Resources are this server's resource URLs (RFC 8707). A token that
	// names an audience must name Audience or one of these: a token
	// granted for another resource is refused here.
	Resources []string
	// CacheSize bounds how many verified tokens are remembered so that a
	// client's repeated requests skip the HMAC and claim parsing (expiry
	// and revocation are still checked every time). 0 means 8192; a
	// negative value disables the cache.
	CacheSize int
	// External, when set, verifies the tokens of trusted identity
	// providers (auth/idp): those whose iss it trusts. They pass the same
	// revocation and staleness checks and the same cache; AllowedClients
	// does not apply to them (their provider entry admits them).
	External ExternalIssuers
}

// Verifier validates mcpauth tokens: the signature with the key the kid
// names (in that key's algorithm), issuer, audience, expiry and
// not-before with leeway, the presence of sub and jti, and (when
// configured) that the jti has not been revoked.
type Verifier struct {
	cfg  VerifierConfig
	ring *keys.Ring
	// opts are the parser options every key state shares.
	opts  []jwt.ParserOption
	state atomic.Pointer[keyState]
	// synced bounds the revocation set's age (RevocationMaxAge); nil:
	// unbounded.
	synced syncedChecker
}

// keyState is what verification derives from one key set; a new set
// gets a new state, with an empty cache, so no token verified by a key
// that has since gone is served from memory.
type keyState struct {
	set    *keys.Set
	algs   []string // the algorithms of the keys: the only ones parsed
	parser *jwt.Parser
	// macs and fastHeader serve the fast path: the first HMAC key's
	// states and the header the Issuer writes with it; macs is nil when
	// the set has no HMAC key.
	macs       *macPool
	fastHeader string
	cache      *verifiedCache
}

// newKeyState derives the verification state of set.
func (v *Verifier) newKeyState(set *keys.Set) *keyState {
	algs := keyAlgorithms(set)
	// Only the algorithms of the keys are parsed at all: this stops
	// "alg":"none" and every algorithm no key has; the key function then
	// holds each token to its own key's algorithm. A ring that may be
	// reloaded on an unknown kid parses every algorithm mcpauth signs
	// with (never "none"): the reloaded set may hold a key of another
	// one, and the key function still holds the token to that key's.
	parsed := algs
	if v.cfg.Refresh != nil {
		parsed = keys.Algorithms
	}
	opts := append([]jwt.ParserOption{jwt.WithValidMethods(parsed)}, v.opts...)
	st := &keyState{set: set, algs: algs, parser: jwt.NewParser(opts...), cache: newVerifiedCache(cacheSize(v.cfg.CacheSize))}
	if hm := set.Symmetric(); len(hm) > 0 {
		st.macs, st.fastHeader = newMACPool(hm[0].VerifyingKey().([]byte)), mintedHeaderWithKID(hm[0].ID())
	}
	return st
}

// current is the state of the ring's set, derived anew after a swap.
func (v *Verifier) current() *keyState {
	set := v.ring.Set()
	st := v.state.Load()
	if st.set == set {
		return st
	}
	next := v.newKeyState(set)
	if v.state.CompareAndSwap(st, next) {
		return next
	}
	return v.state.Load()
}

// verifiedCacheSize is the default CacheSize.
const verifiedCacheSize = 8192

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	set, err := verifierKeys(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		return nil, errors.New("issuer must not be empty")
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("leeway must not be negative")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithIssuedAt(),
		// Canonical base64 only (no stray trailing bits), so a token has
		// exactly one spelling.
		jwt.WithStrictDecoding(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if !cfg.AllowNever {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	ring := cfg.Ring
	if ring == nil {
		ring = keys.NewRing(set)
	}
	v := &Verifier{cfg: cfg, ring: ring, opts: opts}
	v.state.Store(v.newKeyState(ring.Set()))
	if cfg.RevocationMaxAge > 0 {
		synced, ok := cfg.Revoked.(syncedChecker)
		if !ok {
			return nil, errors.New("a revocation age bound needs a revocation set that reports when it was synced")
		}
		v.synced = synced
	}
	return v, nil
}

// syncedChecker is a revocation set that knows when it last matched the
// registry (*RevocationSet).
type syncedChecker interface {
	SyncedAt() time.Time
}

// verifierKeys is the ring's set, cfg.Keys, or the set of cfg.Secret
// alone.
func verifierKeys(cfg VerifierConfig) (*keys.Set, error) {
	if cfg.Ring != nil {
		return cfg.Ring.Set(), nil
	}
	if cfg.Keys != nil {
		return cfg.Keys, nil
	}
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("signing secret must be at least %d bytes", MinSecretLen)
	}
	k, err := keys.NewHMAC(cfg.Secret)
	if err != nil {
		return nil, err
	}
	return keys.NewSet(k)
}

// keyAlgorithms are the algorithms of the keys in set, each once.
func keyAlgorithms(set *keys.Set) []string {
	var algs []string
	for _, k := range set.Keys() {
		if !slices.Contains(algs, k.Alg()) {
			algs = append(algs, k.Alg())
		}
	}
	return algs
}

// Verify checks a token and returns its claims. Errors wrap one of
// ErrTokenMissing, ErrTokenExpired, ErrTokenNotYetValid, ErrTokenRevoked or
// ErrTokenInvalid with a short reason.
//
// The returned claims are shared between calls with the same token and
// must not be modified.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	st := v.current()
	if c, ok := st.cache.get(token); ok {
		if exp, has := c.Expires(); !has || v.cfg.Now().Before(exp.Add(v.cfg.Leeway)) {
			return v.admit(c)
		}
		st.cache.drop(token) // expired: the full path below says so
	}
	if len(token) > MaxTokenLen {
		return nil, Refuse(ErrTokenInvalid, "token is larger than %d bytes", MaxTokenLen)
	}
	if strings.Count(token, ".") != 2 {
		return nil, Refuse(ErrTokenInvalid, "a JWT has three dot-separated parts")
	}
	// Only the base64url alphabet: the decoder would otherwise skip CR/LF
	// and padding, so one token could be spelled many ways.
	for i := 0; i < len(token); i++ {
		if c := token[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, Refuse(ErrTokenInvalid, "characters outside base64url")
		}
	}
	claims, ok := v.fast(st, token)
	if !ok {
		var err error
		if claims, err = v.slow(st, token); err != nil {
			return nil, err
		}
	}
	c, err := v.admit(claims)
	if err == nil {
		st.cache.put(token, c)
	}
	return c, err
}

// admit applies the checks that can change for a verified token: the
// allowed-clients list and revocation.
func (v *Verifier) admit(claims *Claims) (*Claims, error) {
	if v.synced != nil && v.cfg.Now().Sub(v.synced.SyncedAt()) > v.cfg.RevocationMaxAge {
		return nil, ErrRevocationStale
	}
	if len(v.cfg.AllowedClients) > 0 && !slices.Contains(v.cfg.AllowedClients, claims.Subject) && !v.external(claims) {
		return nil, Refuse(ErrTokenInvalid, "client is not in the allowed clients list")
	}
	if err := v.checkNamespace(claims); err != nil {
		return nil, err
	}
	if v.cfg.Revoked != nil && v.cfg.Revoked.IsRevoked(claims.ID) {
		return nil, ErrTokenRevoked
	}
	return claims, nil
}

// full verifies any token with golang-jwt and mcpauth's extra checks; it
// produces the precise error for every refusal.
func (v *Verifier) full(st *keyState, token string) (*Claims, error) {
	claims := new(Claims)
	tok, err := st.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return v.key(st, t) })
	if err != nil {
		if rerr := retiredRefusal(st.set, token); rerr != nil {
			return nil, rerr
		}
		return nil, classify(err)
	}
	legacy, err := v.checkIssuer(claims.Issuer)
	if err != nil {
		return nil, err
	}
	// RFC 7515 4.1.11: a "crit" header names extensions the recipient
	// must understand; mcpauth understands none.
	if _, ok := tok.Header["crit"]; ok {
		return nil, Refuse(ErrTokenInvalid, "critical header extensions are not supported")
	}
	// Duplicate member names are read differently by different JSON
	// parsers, and golang-jwt reads a quoted number as a NumericDate; a
	// token must mean one thing, in the types RFC 7519 gives.
	if err := checkMembers(token); err != nil {
		return nil, Refuse(ErrTokenInvalid, "%s", err)
	}
	if claims.Subject == "" {
		return nil, Refuse(ErrTokenInvalid, "missing sub claim")
	}
	if claims.ID == "" && legacy {
		claims.ID = LegacyJTI(token)
	}
	if claims.ID == "" {
		return nil, Refuse(ErrTokenInvalid, "missing jti claim")
	}
	if len(claims.Audience) > 0 && !v.audienceOK(claims.Audience) {
		return nil, Refuse(ErrTokenInvalid, "the token was granted for another resource")
	}
	return claims, nil
}

// checkIssuer accepts this server's issuer, or a legacy one (legacy
// true); anything else is refused naming the issuer expected.
func (v *Verifier) checkIssuer(iss string) (legacy bool, err error) {
	switch {
	case iss == v.cfg.Issuer:
		return false, nil
	case iss != "" && slices.Contains(v.cfg.LegacyIssuers, iss):
		return true, nil
	}
	return false, Refuse(ErrTokenInvalid, "wrong issuer %q (this server's tokens carry iss %q)", untrusted.Clip(iss, 64), v.cfg.Issuer)
}

// LegacyJTI is the id of a token without jti from a legacy issuer: the
// first 128 bits of its signature's SHA-256, so the same token always has
// the same id.
func LegacyJTI(token string) string {
	sig := token[strings.LastIndexByte(token, '.')+1:]
	sum := sha256.Sum256([]byte(sig))
	return "legacy-" + hex.EncodeToString(sum[:16])
}

// audienceOK reports whether one of the token's audiences is this server
// (always, when the server knows no audience or resource of its own).
func (v *Verifier) audienceOK(aud []string) bool {
	if v.cfg.Audience == "" && len(v.cfg.Resources) == 0 {
		return true
	}
	for _, a := range aud {
		if a == v.cfg.Audience || slices.Contains(v.cfg.Resources, a) {
			return true
		}
	}
	return false
}

// classify maps jwt errors to mcpauth's sentinel errors with a reason safe
// to show to the caller.
func classify(err error) error {
	var refused *keyRefusal
	if errors.As(err, &refused) {
		return Refuse(ErrTokenInvalid, "%s", refused.reason)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Refuse(ErrTokenInvalid, "malformed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Refuse(ErrTokenInvalid, "signature does not match (wrong secret, algorithm or tampered token)")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return Refuse(ErrTokenInvalid, "signing algorithm not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return Refuse(ErrTokenInvalid, "wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Refuse(ErrTokenInvalid, "wrong audience")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Refuse(ErrTokenInvalid, "missing required claim")
	default:
		return Refuse(ErrTokenInvalid, "invalid claims")
	}
}

// checkMembers refuses a header or payload object that repeats a member
// name (compared exactly, as JSON does) and registered claims of the wrong
// JSON type. It runs only on tokens whose signature already verified.
func checkMembers(token string) error {
	first, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	for i, seg := range [2]string{first, payload} {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
		if err != nil {
			return errors.New("undecodable segment")
		}
		check := noTypeCheck
		if i == 1 {
			check = claimTypes
		}
		if err := scanObject(b, check); err != nil {
			return err
		}
	}
	return nil
}

func noTypeCheck(string, byte) error { return nil }

// registeredClaims are the claim names mcpauth reads.
var registeredClaims = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope"}

// claimTypes checks the JSON type of a registered claim by the first byte
// of its value, and refuses other spellings of registered names ("EXP"),
// which encoding/json would read as the real claim.
func claimTypes(name string, first byte) error {
	for _, rc := range registeredClaims {
		if name != rc && strings.EqualFold(name, rc) {
			return errors.New("claim " + rc + " must be spelled in lower case")
		}
	}
	switch name {
	case "exp", "nbf", "iat":
		if first != '-' && (first < '0' || first > '9') {
			return errors.New(name + " must be a JSON number")
		}
	case "iss", "sub", "jti":
		if first != '"' {
			return errors.New(name + " must be a JSON string")
		}
	case "scope":
		if first != '"' && first != '[' {
			return errors.New("scope must be a string or an array of strings")
		}
	}
	return nil
}

// scanObject walks a JSON object's top-level members (strictjson.Walk),
// refusing repeated member names (compared ignoring case: encoding/json,
// and so golang-jwt, matches member names case-insensitively), escaped
// member names (which mcpauth never writes) and values that check
// refuses. What follows the object is golang-jwt's to judge.
func scanObject(obj []byte, check func(name string, first byte) error) error {
	_, err := strictjson.Walk(obj, func(name, value []byte) error {
		if bytes.IndexByte(name, '\\') >= 0 {
			return errors.New("escaped member names are not accepted")
		}
		return check(string(name), value[0])
	})
	var dup *strictjson.DuplicateError
	switch {
	case errors.As(err, &dup):
		return errors.New("duplicate JSON member names")
	case errors.Is(err, strictjson.ErrNotObject), errors.Is(err, strictjson.ErrMalformed):
		return errors.New("malformed JSON object")
	}
	return err
}

func cacheSize(n int) int {
	switch {
	case n == 0:
		return verifiedCacheSize
	case n < 0:
		return 0
	}
	return n
}
