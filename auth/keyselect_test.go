package auth

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/internal/tokentest"
)

var (
	asymOnce sync.Once
	asymKeys map[string]*keys.Key // one per asymmetric algorithm, plus "stranger" (ES256, in no set)
)

func asymKey(t testing.TB, name string) *keys.Key {
	t.Helper()
	asymOnce.Do(func() {
		asymKeys = map[string]*keys.Key{}
		for _, alg := range append(keys.Asymmetric, "stranger") {
			a := alg
			if a == "stranger" {
				a = keys.ES256
			}
			k, err := keys.Generate(a)
			if err != nil {
				panic(err)
			}
			asymKeys[alg] = k
		}
	})
	return asymKeys[name]
}

func hmacKey(t testing.TB, secret []byte) *keys.Key {
	t.Helper()
	k, err := keys.NewHMAC(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keySet is active plus every other test key (all asymmetric algorithms
// and the test secret), the set a server in mid-migration has.
func keySet(t testing.TB, active *keys.Key) *keys.Set {
	t.Helper()
	verify := []*keys.Key{hmacKey(t, tokentest.Secret)}
	for _, alg := range keys.Asymmetric {
		verify = append(verify, asymKey(t, alg).VerifyOnly())
	}
	set, err := keys.NewSet(active, verify...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// forge signs claims with method and key under exactly header.
func forge(t testing.TB, header map[string]any, claims jwt.MapClaims, method jwt.SigningMethod, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header = header
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	return s
}

func issueWith(t *testing.T, key *keys.Key) string {
	t.Helper()
	iss, err := NewIssuer(IssuerConfig{Key: key, Issuer: tokentest.Issuer, MaxLifetime: time.Hour, Now: fixedClock(tokentest.T0)}, &fakeRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	admin := &Claims{Scope: Scopes{ScopeAdmin}}
	admin.Subject = "root"
	it, err := iss.Issue(t.Context(), IssueRequest{ClientID: "c", Expiry: Expiry{Duration: time.Hour}, Scopes: []string{"a"}, Caller: admin})
	if err != nil {
		t.Fatal(err)
	}
	return it.Token
}

// Rule: each algorithm signs with its key, names it by kid, and the token
// verifies with that key alone, in that algorithm.
func TestEveryAlgorithmSignsAndVerifiesByKid(t *testing.T) {
	for _, key := range []*keys.Key{hmacKey(t, tokentest.Secret), asymKey(t, keys.ES256), asymKey(t, keys.EdDSA), asymKey(t, keys.RS256)} {
		t.Run(key.Alg(), func(t *testing.T) {
			tok := issueWith(t, key)
			h := decodeSegment(t, strings.Split(tok, ".")[0])
			if h["alg"] != key.Alg() || h["kid"] != key.ID() {
				t.Fatalf("header %v, want alg %s kid %s", h, key.Alg(), key.ID())
			}
			v := newTestVerifier(t, func(c *VerifierConfig) { c.Keys = keySet(t, key) })
			c, err := v.Verify(tok)
			if err != nil || c.Subject != "c" {
				t.Fatalf("Verify: %v", err)
			}
			in := v.Inspect(tok)
			if !in.Valid || in.SignedBy == nil || *in.SignedBy != (KeyInfo{ID: key.ID(), Alg: key.Alg()}) {
				t.Fatalf("Inspect: valid %v signed by %+v", in.Valid, in.SignedBy)
			}
			// A server without the key refuses it.
			other := newTestVerifier(t, func(c *VerifierConfig) { c.Secret = tokentest.ForeignSecret })
			if _, err := other.Verify(tok); !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("a server without the key: %v", err)
			}
		})
	}
}

// Rule: tokens without kid (minted before tokens carried one) verify with
// an HS256 secret only: the current one or the previous one.
func TestTokensWithoutKidVerifyWithHMACSecretsOnly(t *testing.T) {
	previous := []byte("prev-secret-Qw7TzP1xR4mN8bY2cL6hJ0")
	set, err := keys.NewSet(asymKey(t, keys.ES256), hmacKey(t, tokentest.Secret), hmacKey(t, previous))
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, func(c *VerifierConfig) { c.Keys = set })
	for _, secret := range [][]byte{tokentest.Secret, previous} {
		if _, err := v.Verify(tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), secret)); err != nil {
			t.Errorf("kidless HS256 token: %v", err)
		}
	}
	in := v.Inspect(tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), previous))
	if in.SignedBy == nil || in.SignedBy.ID != keys.HMACKeyID(previous) {
		t.Errorf("Inspect names %+v, want the previous secret's kid", in.SignedBy)
	}
	es := tokentest.Sign(t, jwt.SigningMethodES256, tokentest.BaseClaims(), asymKey(t, keys.ES256).SigningKey())
	if _, err := v.Verify(es); err == nil || !strings.Contains(err.Error(), "must name its key (kid)") {
		t.Errorf("kidless ES256 token: %v", err)
	}
}

// Rule: the algorithm comes from the key the kid names, never from the
// header; keys elsewhere are never fetched; a kid is only ever looked up.
func TestKeyConfusionIsRefused(t *testing.T) {
	es, rs, ed := asymKey(t, keys.ES256), asymKey(t, keys.RS256), asymKey(t, keys.EdDSA)
	stranger := asymKey(t, "stranger")
	v := newTestVerifier(t, func(c *VerifierConfig) { c.Keys = keySet(t, es) })
	der, _ := x509.MarshalPKIXPublicKey(es.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: es.Public(), KeyID: es.ID(), Algorithm: "ES256", Use: "sig"})
	strangerJWK, _ := json.Marshal(jose.JSONWebKey{Key: stranger.Public()})
	var jwkHeader map[string]any
	_ = json.Unmarshal(strangerJWK, &jwkHeader)
	hdr := func(alg string, kv ...any) map[string]any {
		h := map[string]any{"alg": alg, "typ": "JWT"}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i].(string)] = kv[i+1]
		}
		return h
	}
	hs, esM, rsM, edM := jwt.SigningMethodHS256, jwt.SigningMethodES256, jwt.SigningMethodRS256, jwt.SigningMethodEdDSA
	cases := []struct {
		name, token, reason string
	}{
		{"HS256 keyed with the public key PEM, ES kid", forge(t, hdr("HS256", "kid", es.ID()), tokentest.BaseClaims(), hs, pubPEM), "not the algorithm of the key"},
		{"HS256 keyed with the public JWK, ES kid", forge(t, hdr("HS256", "kid", es.ID()), tokentest.BaseClaims(), hs, pubJWK), "not the algorithm of the key"},
		{"HS256 keyed with the public key PEM, no kid", forge(t, hdr("HS256"), tokentest.BaseClaims(), hs, pubPEM), "signature does not match"},
		{"HS256 keyed with the RSA public key PEM, RS kid", forge(t, hdr("HS256", "kid", rs.ID()), tokentest.BaseClaims(), hs, rsaPEM(t, rs)), "not the algorithm of the key"},
		{"RS256 token presented with the ES kid", forge(t, hdr("RS256", "kid", es.ID()), tokentest.BaseClaims(), rsM, rs.SigningKey()), "not the algorithm of the key"},
		{"ES256 token presented with the EdDSA kid", forge(t, hdr("ES256", "kid", ed.ID()), tokentest.BaseClaims(), esM, es.SigningKey()), "not the algorithm of the key"},
		{"EdDSA token presented with the HMAC kid", forge(t, hdr("EdDSA", "kid", keys.HMACKeyID(tokentest.Secret)), tokentest.BaseClaims(), edM, ed.SigningKey()), "not the algorithm of the key"},
		{"ES256 token signed by a stranger, ES kid", forge(t, hdr("ES256", "kid", es.ID()), tokentest.BaseClaims(), esM, stranger.SigningKey()), "signature does not match"},
		{"alg none, ES kid", forge(t, hdr("none", "kid", es.ID()), tokentest.BaseClaims(), jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), "Invalid token"},
		{"HS384 with the HMAC kid", forge(t, hdr("HS384", "kid", keys.HMACKeyID(tokentest.Secret)), tokentest.BaseClaims(), jwt.SigningMethodHS384, tokentest.Secret), "Invalid token"},
		{"unknown kid (a stranger's key)", forge(t, hdr("ES256", "kid", stranger.ID()), tokentest.BaseClaims(), esM, stranger.SigningKey()), "unknown signing key"},
		{"kid path traversal", forge(t, hdr("HS256", "kid", "../../etc/passwd"), tokentest.BaseClaims(), hs, []byte("")), "unknown signing key"},
		{"kid /dev/null", forge(t, hdr("HS256", "kid", "/dev/null"), tokentest.BaseClaims(), hs, []byte("")), "unknown signing key"},
		{"kid SQL", forge(t, hdr("HS256", "kid", "x' UNION SELECT 'secret"), tokentest.BaseClaims(), hs, []byte("secret")), "unknown signing key"},
		{"kid very long", forge(t, hdr("ES256", "kid", strings.Repeat(es.ID(), 100)), tokentest.BaseClaims(), esM, es.SigningKey()), "unknown signing key"},
		{"kid empty", forge(t, hdr("ES256", "kid", ""), tokentest.BaseClaims(), esM, es.SigningKey()), "unknown signing key"},
		{"kid a number", forge(t, hdr("ES256", "kid", 1), tokentest.BaseClaims(), esM, es.SigningKey()), "kid must be a string"},
		{"kid null", forge(t, hdr("ES256", "kid", nil), tokentest.BaseClaims(), esM, es.SigningKey()), "kid must be a string"},
		{"kid in other case", forge(t, hdr("ES256", "kid", strings.ToLower(es.ID())), tokentest.BaseClaims(), esM, es.SigningKey()), "unknown signing key"},
		{"jku to an attacker's JWKS", forge(t, hdr("ES256", "kid", stranger.ID(), "jku", "https://evil.example/jwks.json"), tokentest.BaseClaims(), esM, stranger.SigningKey()), "jku, which is never followed"},
		{"jku beside a real kid", forge(t, hdr("ES256", "kid", es.ID(), "jku", "https://evil.example/jwks.json"), tokentest.BaseClaims(), esM, es.SigningKey()), "jku, which is never followed"},
		{"x5u", forge(t, hdr("ES256", "x5u", "https://evil.example/cert.pem"), tokentest.BaseClaims(), esM, stranger.SigningKey()), "x5u, which is never followed"},
		{"embedded jwk", forge(t, hdr("ES256", "jwk", jwkHeader), tokentest.BaseClaims(), esM, stranger.SigningKey()), "jwk, which is never followed"},
		{"embedded x5c", forge(t, hdr("ES256", "x5c", []string{"MIIB"}), tokentest.BaseClaims(), esM, stranger.SigningKey()), "x5c, which is never followed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.Verify(c.token)
			if err == nil || claims != nil || !errors.Is(err, ErrTokenInvalid) || !strings.Contains(Message(err), c.reason) {
				t.Fatalf("Verify = %v, %v; want ErrTokenInvalid whose message has %q", claims, err, c.reason)
			}
			if in := v.Inspect(c.token); in.Valid || in.SignatureValid || in.SignedBy != nil {
				t.Fatalf("Inspect: valid %v signature valid %v signed by %+v", in.Valid, in.SignatureValid, in.SignedBy)
			}
			if fc, ok := v.fast(v.current(), c.token); ok || fc != nil {
				t.Fatal("the fast path took it")
			}
		})
	}
}

func rsaPEM(t *testing.T, k *keys.Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Rule: the fast path takes the HS256 tokens of the first secret (with its
// kid or none) and nothing signed with another key.
func TestFastPathTakesOnlyTheFirstSecretsTokens(t *testing.T) {
	previous := []byte("prev-secret-Qw7TzP1xR4mN8bY2cL6hJ0")
	set, err := keys.NewSet(asymKey(t, keys.ES256), hmacKey(t, tokentest.Secret), hmacKey(t, previous))
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, func(c *VerifierConfig) { c.Keys = set })
	cases := []struct {
		name  string
		token string
		fast  bool
	}{
		{"issued with the secret (kid)", issueWith(t, hmacKey(t, tokentest.Secret)), true},
		{"minted before kids", tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.Secret), true},
		{"issued with the previous secret", issueWith(t, hmacKey(t, previous)), false},
		{"issued with ES256", issueWith(t, asymKey(t, keys.ES256)), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := agree(t, v, c.token); got != c.fast {
				t.Fatalf("fast path taken = %v, want %v", got, c.fast)
			}
			if _, err := v.Verify(c.token); err != nil {
				t.Fatal(err)
			}
		})
	}
	onlyES, _ := keys.NewSet(asymKey(t, keys.ES256))
	if v := newTestVerifier(t, func(c *VerifierConfig) { c.Keys = onlyES }); agree(t, v, issueWith(t, hmacKey(t, tokentest.Secret))) {
		t.Fatal("a verifier without HMAC keys took the fast path")
	}
}
