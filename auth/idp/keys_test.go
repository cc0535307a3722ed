package idp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
)

// Rule: a JWKS larger than the bound is not read: the provider's tokens
// are refused as unavailable (503), not as invalid.
func TestAJWKSOverTheSizeLimitIsRefused(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	tp := newTestProvider(t, k)
	tp.jwksBody = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 4096) + `"}`)
	s := newSet(t, c, Options{MaxResponseBytes: 1024}, tp)
	_, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil))
	if !errors.Is(err, auth.ErrIssuerUnavailable) || !auth.Unavailable(err) {
		t.Fatalf("Verify = %v", err)
	}
	if !strings.Contains(s.byIssuer[tp.srv.URL].keys.err().Error(), "larger than the limit") {
		t.Fatalf("kept error = %v", s.byIssuer[tp.srv.URL].keys.err())
	}
}

// Rule: a provider that does not answer within the timeout costs its
// callers that long at most, and is then refused as unavailable.
func TestASlowProviderIsCutAtTheTimeout(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	tp := newTestProvider(t, k)
	tp.delay = 2 * time.Second
	s := newSet(t, c, Options{Timeout: 200 * time.Millisecond}, tp)
	start := time.Now()
	_, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil))
	if !errors.Is(err, auth.ErrIssuerUnavailable) {
		t.Fatalf("Verify = %v", err)
	}
	// Discovery tries two metadata URLs, each bounded.
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}

// Rule: issuer and JWKS URLs must be https; http is allowed only to
// loopback and only when the option (development mode) says so, and a
// discovered jwks_uri is held to the same rule.
func TestOnlyHTTPSURLsAreFetched(t *testing.T) {
	for _, tc := range []struct {
		iss      string
		loopback bool
		ok       bool
	}{
		{"https://login.example.com", false, true},
		{"http://login.example.com", true, false},
		{"http://127.0.0.1:9", false, false},
		{"http://127.0.0.1:9", true, true},
		{"http://[::1]:9", true, true},
		{"http://localhost:9", true, true},
		{"ftp://login.example.com", true, false},
		{"https://login.example.com?x=1", false, false},
		{"https://user@login.example.com", false, false},
		{"login.example.com", false, false},
	} {
		_, err := New([]Provider{{Name: "corp", Issuer: tc.iss}}, Options{AllowLoopbackHTTP: tc.loopback})
		if (err == nil) != tc.ok {
			t.Errorf("issuer %q (loopback http %v): %v", tc.iss, tc.loopback, err)
		}
	}
	// The discovered jwks_uri: the metadata names an http one on a
	// non-loopback host.
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"http://` + r.Host + `","jwks_uri":"http://jwks.example.com/keys"}`))
	}))
	defer meta.Close()
	s := newSetOf(t, c, Options{}, Provider{Name: "corp", Issuer: meta.URL})
	claims := jwt.MapClaims{"iss": meta.URL, "sub": "a", "aud": resource, "exp": c.Now().Add(time.Hour).Unix()}
	_, err := s.Verify(k.sign(t, claims, nil))
	if !errors.Is(err, auth.ErrIssuerUnavailable) || !strings.Contains(s.byIssuer[meta.URL].keys.err().Error(), "must be an https URL") {
		t.Fatalf("Verify = %v (kept %v)", err, s.byIssuer[meta.URL].keys.err())
	}
}

// Rule: tokens naming a key id the provider does not publish make it
// fetch its JWKS again at most once per MinRefresh, however many arrive;
// a new key the provider published is then found without a restart.
func TestUnknownKeyIDsRefreshTheJWKSAtMostOncePerInterval(t *testing.T) {
	c := newClock()
	k1, k2 := newSigner(t, "k1", jwt.SigningMethodES256), newSigner(t, "k2", jwt.SigningMethodES256)
	tp := newTestProvider(t, k1)
	s := newSet(t, c, Options{MinRefresh: 5 * time.Second}, tp)
	if _, err := s.Verify(k1.sign(t, tp.claimsFor(c, nil), nil)); err != nil {
		t.Fatal(err)
	}
	c.add(5 * time.Second)
	for range 50 {
		if _, err := s.Verify(k2.sign(t, tp.claimsFor(c, nil), nil)); !errors.Is(err, auth.ErrTokenInvalid) {
			t.Fatalf("Verify = %v", err)
		}
	}
	if n := tp.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (first use, one refresh)", n)
	}
	tp.setKeys(k1, k2) // the provider rotates in k2
	c.add(time.Second)
	if _, err := s.Verify(k2.sign(t, tp.claimsFor(c, nil), nil)); err == nil {
		t.Fatal("refreshed within the interval")
	}
	c.add(4 * time.Second)
	if _, err := s.Verify(k2.sign(t, tp.claimsFor(c, nil), nil)); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := tp.jwksHits.Load(); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", n)
	}
}

// Rule: a JWKS is reused for what its Cache-Control max-age says (held
// between 1m and MaxRefresh), then fetched again; a key the provider
// withdrew is refused after that.
func TestTheJWKSIsCachedForItsMaxAge(t *testing.T) {
	c := newClock()
	k1, k2 := newSigner(t, "k1", jwt.SigningMethodES256), newSigner(t, "k2", jwt.SigningMethodES256)
	tp := newTestProvider(t, k1)
	tp.jwksHeader.Set("Cache-Control", "public, max-age=600")
	s := newSet(t, c, Options{}, tp)
	for range 3 {
		if _, err := s.Verify(k1.sign(t, tp.claimsFor(c, nil), nil)); err != nil {
			t.Fatal(err)
		}
		c.add(time.Minute)
	}
	if n := tp.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times within max-age", n)
	}
	tp.setKeys(k2) // k1 withdrawn
	c.add(10 * time.Minute)
	if _, err := s.Verify(k1.sign(t, tp.claimsFor(c, nil), nil)); !errors.Is(err, auth.ErrTokenInvalid) {
		t.Fatalf("withdrawn key after max-age: %v", err)
	}
	for cc, want := range map[string]time.Duration{"max-age=600": 10 * time.Minute, "no-store": time.Minute, "max-age=1": time.Minute, "": 15 * time.Minute, "max-age=999999": 24 * time.Hour} {
		o := Options{}
		o.defaults()
		if got := o.cacheFor(maxAge(cc)); got != want {
			t.Errorf("Cache-Control %q: cached %v, want %v", cc, got, want)
		}
	}
}

// Rule: a provider that is down refuses only its own callers: another
// provider's tokens keep verifying, and the down one is not asked again
// more than once per MinRefresh.
func TestAProviderThatIsDownDoesNotStopTheOthers(t *testing.T) {
	c := newClock()
	kUp, kDown := newSigner(t, "k1", jwt.SigningMethodES256), newSigner(t, "k1", jwt.SigningMethodEdDSA)
	up, down := newTestProvider(t, kUp), newTestProvider(t, kDown)
	down.srv.Close()
	s := newSet(t, c, Options{}, down, up)
	for _, st := range s.Status() {
		if st.State != StatePending || st.Keys != 0 {
			t.Fatalf("before any use: %+v, want pending", st)
		}
	}
	for range 5 {
		if _, err := s.Verify(kDown.sign(t, down.claimsFor(c, nil), nil)); !errors.Is(err, auth.ErrIssuerUnavailable) {
			t.Fatalf("down provider: %v", err)
		}
		got, err := s.Verify(kUp.sign(t, up.claimsFor(c, nil), nil))
		if err != nil || got.Subject != "p1:alice" {
			t.Fatalf("up provider: %+v %v", got, err)
		}
	}
	// /health's view: the one that is down says why, the other is up.
	sts := s.Status()
	if len(sts) != 2 || sts[0].Issuer != down.srv.URL || sts[0].State != StateDown || sts[0].LastError == "" || sts[0].Keys != 0 {
		t.Errorf("the down provider's status: %+v", sts)
	}
	if len(sts) == 2 && (sts[1].State != StateUp || sts[1].Keys != 1 || sts[1].FetchedAt == "" || sts[1].LastError != "") {
		t.Errorf("the up provider's status: %+v", sts[1])
	}
}

// Rule: a provider that goes down after its keys were fetched keeps
// being served on them, up to MaxKeyAge.
func TestKeysOutliveAnOutageUpToMaxKeyAge(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	tp := newTestProvider(t, k)
	s := newSet(t, c, Options{MaxKeyAge: 2 * time.Hour}, tp)
	if _, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil)); err != nil {
		t.Fatal(err)
	}
	tp.srv.Close()
	c.add(time.Hour)
	if _, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil)); err != nil {
		t.Fatalf("during the outage: %v", err)
	}
	c.add(time.Hour)
	if _, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil)); !errors.Is(err, auth.ErrIssuerUnavailable) {
		t.Fatalf("after MaxKeyAge: %v", err)
	}
}

// Rule: without OpenID discovery the RFC 8414 metadata is read; metadata
// naming another issuer is refused (mix-up).
func TestDiscoveryFallsBackToRFC8414AndChecksTheIssuer(t *testing.T) {
	c := newClock()
	k := newSigner(t, "k1", jwt.SigningMethodES256)
	tp := newTestProvider(t, k)
	tp.noOIDC = true
	s := newSet(t, c, Options{}, tp)
	if _, err := s.Verify(k.sign(t, tp.claimsFor(c, nil), nil)); err != nil {
		t.Fatalf("RFC 8414: %v", err)
	}
	mixed := newTestProvider(t, k)
	mixed.issuer = "https://evil.example.com"
	s = newSet(t, c, Options{}, mixed)
	if _, err := s.Verify(k.sign(t, mixed.claimsFor(c, nil), nil)); !errors.Is(err, auth.ErrIssuerUnavailable) {
		t.Fatalf("mixed-up issuer: %v", err)
	}
	if got := metadataURLs("https://h.example.com/realms/corp"); got[0] != "https://h.example.com/realms/corp/.well-known/openid-configuration" ||
		got[1] != "https://h.example.com/.well-known/oauth-authorization-server/realms/corp" {
		t.Fatalf("metadata URLs = %q", got)
	}
}

// Rule: only asymmetric signing keys of accepted types are taken from a
// JWKS; the rest (symmetric, encryption, small RSA) are skipped.
func TestParseJWKSKeepsOnlyUsableSigningKeys(t *testing.T) {
	ok := newSigner(t, "ok", jwt.SigningMethodES256).jwk()
	b, _ := ok.MarshalJSON()
	doc := `{"keys":[` + string(b) + `,
		{"kty":"oct","kid":"sym","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
		{"kty":"RSA","kid":"small","n":"sXch","e":"AQAB"},
		{"kty":"XYZ","kid":"odd"}]}`
	keys, err := parseJWKS([]byte(doc))
	if err != nil || len(keys) != 1 || keys["ok"].alg != "ES256" {
		t.Fatalf("parseJWKS = %v, %v", keys, err)
	}
	if _, err := parseJWKS([]byte(`[]`)); err == nil {
		t.Fatal("a JSON array was read as a JWKS")
	}
}
