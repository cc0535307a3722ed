package idp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

const resource = "https://mcp.example.com/mcp"

// signer is one of a test provider's keys.
type signer struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func newSigner(t *testing.T, kid string, method jwt.SigningMethod) signer {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch method {
	case jwt.SigningMethodRS256, jwt.SigningMethodPS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jwt.SigningMethodES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwt.SigningMethodEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, method: method, priv: priv}
}

func (s signer) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.priv.Public(), KeyID: s.kid, Algorithm: s.method.Alg(), Use: "sig"}
}

// sign signs claims with header overrides (a nil value removes one).
func (s signer) sign(t *testing.T, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, claims)
	tok.Header["kid"] = s.kid
	tok.Header["typ"] = "at+jwt"
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	str, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return str
}

// testProvider is an OpenID provider's metadata and JWKS over httptest.
type testProvider struct {
	srv        *httptest.Server
	mu         sync.Mutex
	keys       []signer
	jwksHits   atomic.Int32
	jwksHeader http.Header
	// jwksBody, when set, is served instead of the keys.
	jwksBody []byte
	// delay holds every response.
	delay time.Duration
	// noOIDC answers 404 for OpenID discovery (RFC 8414 only).
	noOIDC bool
	// issuer, when set, is named in the metadata instead of the real one.
	issuer string
}

func newTestProvider(t *testing.T, keys ...signer) *testProvider {
	t.Helper()
	tp := &testProvider{keys: keys, jwksHeader: http.Header{}}
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		tp.mu.Lock()
		iss := tp.issuer
		tp.mu.Unlock()
		if iss == "" {
			iss = tp.srv.URL
		}
		tp.wait()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": tp.srv.URL + "/jwks"})
	}
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if tp.noOIDC {
			http.NotFound(w, r)
			return
		}
		meta(w, r)
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", meta)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		tp.jwksHits.Add(1)
		tp.wait()
		tp.mu.Lock()
		body := tp.jwksBody
		if body == nil {
			var set jose.JSONWebKeySet
			for _, k := range tp.keys {
				set.Keys = append(set.Keys, k.jwk())
			}
			body, _ = json.Marshal(set)
		}
		for k, v := range tp.jwksHeader {
			w.Header()[k] = v
		}
		tp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	tp.srv = httptest.NewServer(mux)
	t.Cleanup(tp.srv.Close)
	return tp
}

func (tp *testProvider) wait() {
	tp.mu.Lock()
	d := tp.delay
	tp.mu.Unlock()
	time.Sleep(d)
}

func (tp *testProvider) setKeys(keys ...signer) {
	tp.mu.Lock()
	tp.keys = keys
	tp.mu.Unlock()
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// claimsFor are valid claims of tp's tokens for the test resource.
func (tp *testProvider) claimsFor(c *clock, more jwt.MapClaims) jwt.MapClaims {
	now := c.Now()
	mc := jwt.MapClaims{
		"iss": tp.srv.URL, "sub": "alice", "aud": resource, "jti": "j1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "crm:read",
	}
	for k, v := range more {
		if v == nil {
			delete(mc, k)
		} else {
			mc[k] = v
		}
	}
	return mc
}

// newSet is a Set trusting each provider (named p0, p1, …) with loopback
// http allowed and the test clock.
func newSet(t *testing.T, c *clock, o Options, tps ...*testProvider) *Set {
	t.Helper()
	var ps []Provider
	for i, tp := range tps {
		ps = append(ps, Provider{Name: "p" + string(rune('0'+i)), Issuer: tp.srv.URL})
	}
	return newSetOf(t, c, o, ps...)
}

func newSetOf(t *testing.T, c *clock, o Options, ps ...Provider) *Set {
	t.Helper()
	o.AllowLoopbackHTTP = true
	o.Resources = []string{resource}
	o.Now = c.Now
	s, err := New(ps, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
