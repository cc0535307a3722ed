package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

// fakeRecorder records every Record call and fails when err is set.
type fakeRecorder struct {
	mu    sync.Mutex
	calls []IssuedToken
	err   error
}

func (r *fakeRecorder) Record(_ context.Context, t IssuedToken) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, t)
	return r.err
}

func (r *fakeRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

var hexJTI = regexp.MustCompile(`^[0-9a-f]{32}$`)

// issuerNow has a sub-second part: Issue truncates it to whole seconds.
var issuerNow = tokentest.T0.Add(700 * time.Millisecond)

func newTestIssuer(t *testing.T, edit func(*IssuerConfig)) (*Issuer, *fakeRecorder) {
	t.Helper()
	cfg := IssuerConfig{
		Secret:      tokentest.Secret,
		Issuer:      tokentest.Issuer,
		MaxLifetime: 90 * 24 * time.Hour,
		Now:         fixedClock(issuerNow),
	}
	if edit != nil {
		edit(&cfg)
	}
	rec := &fakeRecorder{}
	iss, err := NewIssuer(cfg, rec)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss, rec
}

func callerWith(scopes ...string) *Claims {
	return &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "operator"}, Scope: scopes}
}

func mustExpiry(t *testing.T, s string) Expiry {
	t.Helper()
	e, err := ParseExpiry(s)
	if err != nil {
		t.Fatalf("ParseExpiry(%q): %v", s, err)
	}
	return e
}

func TestNewIssuerRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  IssuerConfig
		rec  Recorder
	}{
		{"secret shorter than 32 bytes is refused", IssuerConfig{Secret: tokentest.Secret[:31], Issuer: tokentest.Issuer}, &fakeRecorder{}},
		{"empty issuer is refused", IssuerConfig{Secret: tokentest.Secret}, &fakeRecorder{}},
		{"nil recorder is refused", IssuerConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, err := NewIssuer(tc.cfg, tc.rec)
			if err == nil || iss != nil {
				t.Fatalf("NewIssuer = %v, %v; want nil, error", iss, err)
			}
			tokentest.AssertNoLeak(t, "NewIssuer error", err.Error(), "")
		})
	}
}

func TestIssueMintsTokenWithExpectedClaims(t *testing.T) {
	now := issuerNow.Truncate(time.Second)
	tests := []struct {
		name     string
		audience string
		expiry   string
		scopes   []string
		wantScp  string
	}{
		{"30d token carries exp = now+30d and no aud", "", "30d", []string{"read", "write"}, "read write"},
		{"configured audience becomes aud", testAudience, "15m", []string{"read"}, "read"},
		{"duplicate requested scopes are collapsed", "", "1h", []string{"read", "read", " write "}, "read write"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, rec := newTestIssuer(t, func(c *IssuerConfig) { c.Audience = tc.audience })
			exp := mustExpiry(t, tc.expiry)
			tok, err := iss.Issue(context.Background(), IssueRequest{
				ClientID: "research.bot_2",
				Expiry:   exp,
				Scopes:   tc.scopes,
				Caller:   callerWith("read", "write"),
			})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}

			parts := strings.Split(tok.Token, ".")
			if len(parts) != 3 {
				t.Fatalf("token has %d segments", len(parts))
			}
			hdr := decodeSegment(t, parts[0])
			if hdr["alg"] != "HS256" {
				t.Errorf("alg = %v, want HS256", hdr["alg"])
			}
			raw := decodeSegment(t, parts[1])
			if raw["iss"] != tokentest.Issuer {
				t.Errorf("iss = %v", raw["iss"])
			}
			if raw["sub"] != "research.bot_2" {
				t.Errorf("sub = %v", raw["sub"])
			}
			if raw["iat"] != float64(now.Unix()) {
				t.Errorf("iat = %v, want %d", raw["iat"], now.Unix())
			}
			if raw["nbf"] != float64(now.Unix()) {
				t.Errorf("nbf = %v, want %d", raw["nbf"], now.Unix())
			}
			if want := float64(now.Add(exp.Duration).Unix()); raw["exp"] != want {
				t.Errorf("exp = %v, want %v", raw["exp"], want)
			}
			jti, _ := raw["jti"].(string)
			if !hexJTI.MatchString(jti) {
				t.Errorf("jti = %q, want 32 lower-case hex chars", jti)
			}
			if scope, ok := raw["scope"].(string); !ok || scope != tc.wantScp {
				t.Errorf("scope = %#v, want string %q", raw["scope"], tc.wantScp)
			}
			aud, hasAud := raw["aud"]
			if tc.audience == "" && hasAud {
				t.Errorf("aud = %v present without a configured audience", aud)
			}
			if tc.audience != "" {
				var got []string
				switch a := aud.(type) {
				case string:
					got = []string{a}
				case []any:
					for _, x := range a {
						s, _ := x.(string)
						got = append(got, s)
					}
				}
				if !slices.Equal(got, []string{tc.audience}) {
					t.Errorf("aud = %#v, want %q", aud, tc.audience)
				}
			}

			// The signature verifies with the secret.
			if _, err := jwt.Parse(tok.Token, func(*jwt.Token) (any, error) { return tokentest.Secret, nil },
				jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(fixedClock(now))); err != nil {
				t.Errorf("token does not verify with the secret: %v", err)
			}

			// The returned facts match the token.
			if tok.JTI != jti || tok.ClientID != "research.bot_2" || tok.IssuedBy != "operator" {
				t.Errorf("IssuedToken facts = %+v", tok)
			}
			if !tok.IssuedAt.Equal(now) || !tok.ExpiresAt.Equal(now.Add(exp.Duration)) {
				t.Errorf("IssuedAt/ExpiresAt = %v/%v, want %v/%v", tok.IssuedAt, tok.ExpiresAt, now, now.Add(exp.Duration))
			}
			if tok.Scopes.String() != tc.wantScp {
				t.Errorf("Scopes = %q, want %q", tok.Scopes, tc.wantScp)
			}

			// Exactly one record, of exactly what was returned.
			if rec.count() != 1 {
				t.Fatalf("recorder saw %d calls, want 1", rec.count())
			}
			if !reflect.DeepEqual(rec.calls[0], tok) {
				t.Errorf("recorded %+v, returned %+v", rec.calls[0], tok)
			}
		})
	}
}

func TestIssueNeverExpiringTokenWhenAllowed(t *testing.T) {
	iss, rec := newTestIssuer(t, func(c *IssuerConfig) { c.AllowNever = true })
	tok, err := iss.Issue(context.Background(), IssueRequest{
		ClientID: "my-app", Expiry: Expiry{Never: true}, Scopes: []string{"read"}, Caller: callerWith("read"),
	})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	raw := decodeSegment(t, strings.Split(tok.Token, ".")[1])
	if _, has := raw["exp"]; has {
		t.Errorf("never-expiring token has exp %v", raw["exp"])
	}
	if !tok.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero", tok.ExpiresAt)
	}
	if rec.count() != 1 {
		t.Errorf("recorder saw %d calls, want 1", rec.count())
	}
	// A verifier that allows never-expiring tokens accepts it even 50 years on.
	v := newTestVerifier(t, func(c *VerifierConfig) {
		c.AllowNever = true
		c.Now = fixedClock(tokentest.T0.AddDate(50, 0, 0))
	})
	if _, err := v.Verify(tok.Token); err != nil {
		t.Errorf("Verify(never token) = %v", err)
	}
}

func TestIssueGrants(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*IssuerConfig)
		req    IssueRequest
		scopes string
	}{
		{
			name:   "admin caller may grant any scope including admin",
			req:    IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: time.Hour}, Scopes: []string{"read", "billing:export", "admin"}, Caller: callerWith("admin")},
			scopes: "read billing:export admin",
		},
		{
			name:   "caller may grant a subset of its scopes",
			req:    IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: time.Hour}, Scopes: []string{"write"}, Caller: callerWith("read", "write")},
			scopes: "write",
		},
		{
			name:   "token with no scopes may be minted",
			req:    IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: time.Hour}, Caller: callerWith()},
			scopes: "",
		},
		{
			name:   "lifetime equal to MaxLifetime is allowed",
			req:    IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: 90 * 24 * time.Hour}, Caller: callerWith()},
			scopes: "",
		},
		{
			name:   "client in AllowedClients may receive a token",
			edit:   func(c *IssuerConfig) { c.AllowedClients = []string{"other", "my-app"} },
			req:    IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: time.Hour}, Caller: callerWith()},
			scopes: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, rec := newTestIssuer(t, tc.edit)
			tok, err := iss.Issue(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if tok.Token == "" || tok.Scopes.String() != tc.scopes {
				t.Fatalf("token = %+v, want scopes %q", tok, tc.scopes)
			}
			if rec.count() != 1 {
				t.Fatalf("recorder saw %d calls, want 1", rec.count())
			}
			raw := decodeSegment(t, strings.Split(tok.Token, ".")[1])
			if tc.scopes == "" {
				if _, has := raw["scope"]; has {
					t.Errorf("scope claim %v present for an unscoped token", raw["scope"])
				}
			} else if raw["scope"] != tc.scopes {
				t.Errorf("scope claim = %v, want %q", raw["scope"], tc.scopes)
			}
		})
	}
}

func TestIssueRefusalsRecordNothing(t *testing.T) {
	hour := Expiry{Duration: time.Hour}
	tests := []struct {
		name    string
		edit    func(*IssuerConfig)
		req     IssueRequest
		wantErr error
	}{
		{"invalid client id is refused", nil,
			IssueRequest{ClientID: "a b", Expiry: hour, Caller: callerWith("admin")}, ErrInvalidClientID},
		{"empty client id is refused", nil,
			IssueRequest{ClientID: "", Expiry: hour, Caller: callerWith("admin")}, ErrInvalidClientID},
		{"client not in AllowedClients is refused", func(c *IssuerConfig) { c.AllowedClients = []string{"alpha", "beta"} },
			IssueRequest{ClientID: "gamma", Expiry: hour, Caller: callerWith("admin")}, ErrClientNotAllowed},
		{"AllowedClients match is case-sensitive", func(c *IssuerConfig) { c.AllowedClients = []string{"alpha"} },
			IssueRequest{ClientID: "Alpha", Expiry: hour, Caller: callerWith("admin")}, ErrClientNotAllowed},
		{"nil caller is refused", nil,
			IssueRequest{ClientID: "my-app", Expiry: hour}, ErrNoCallerIdentity},
		{"scope not held by a non-admin caller is refused", nil,
			IssueRequest{ClientID: "my-app", Expiry: hour, Scopes: []string{"read", "write"}, Caller: callerWith("read")}, ErrScopeNotHeld},
		{"non-admin caller may not grant admin", nil,
			IssueRequest{ClientID: "my-app", Expiry: hour, Scopes: []string{"admin"}, Caller: callerWith("read", "write")}, ErrScopeNotHeld},
		{"caller with no scopes may not grant any", nil,
			IssueRequest{ClientID: "my-app", Expiry: hour, Scopes: []string{"read"}, Caller: callerWith()}, ErrScopeNotHeld},
		{"malformed scope name is refused even for admin", nil,
			IssueRequest{ClientID: "my-app", Expiry: hour, Scopes: []string{`bad"scope`}, Caller: callerWith("admin")}, ErrInvalidScope},
		{"lifetime above MaxLifetime is refused", nil,
			IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: 90*24*time.Hour + time.Second}, Caller: callerWith("admin")}, ErrLifetimeTooLong},
		{"never when AllowNever is false is refused", nil,
			IssueRequest{ClientID: "my-app", Expiry: Expiry{Never: true}, Caller: callerWith("admin")}, ErrNeverNotAllowed},
		{"zero Expiry is refused", nil,
			IssueRequest{ClientID: "my-app", Expiry: Expiry{}, Caller: callerWith("admin")}, ErrInvalidExpiry},
		{"negative lifetime is refused", nil,
			IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: -time.Hour}, Caller: callerWith("admin")}, ErrInvalidExpiry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, rec := newTestIssuer(t, tc.edit)
			tok, err := iss.Issue(context.Background(), tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Issue error = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(tok, IssuedToken{}) {
				t.Errorf("refused Issue returned a token: %+v", tok)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("refused Issue recorded %d tokens, want 0", n)
			}
			tokentest.AssertNoLeak(t, "Issue error", err.Error(), "")
		})
	}
}

func TestIssueRecorderFailureReturnsNoToken(t *testing.T) {
	iss, rec := newTestIssuer(t, nil)
	dbErr := errors.New("disk full")
	rec.err = dbErr
	tok, err := iss.Issue(context.Background(), IssueRequest{
		ClientID: "my-app", Expiry: Expiry{Duration: time.Hour}, Caller: callerWith(),
	})
	if !errors.Is(err, ErrRecordFailed) {
		t.Fatalf("error = %v, want ErrRecordFailed", err)
	}
	if !errors.Is(err, dbErr) {
		t.Errorf("error = %v does not wrap the recorder's error", err)
	}
	if !reflect.DeepEqual(tok, IssuedToken{}) {
		t.Errorf("token returned despite record failure: %+v", tok)
	}
	if rec.count() != 1 {
		t.Fatalf("recorder saw %d calls, want 1", rec.count())
	}
	if recorded := rec.calls[0].Token; recorded != "" && strings.Contains(err.Error(), recorded) {
		t.Errorf("error contains the token")
	}
}

func TestIssueTwoMintsHaveDifferentJTIs(t *testing.T) {
	iss, rec := newTestIssuer(t, nil)
	req := IssueRequest{ClientID: "my-app", Expiry: Expiry{Duration: time.Hour}, Scopes: []string{"read"}, Caller: callerWith("read")}
	a, err := iss.Issue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := iss.Issue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.JTI == b.JTI {
		t.Fatalf("two mints share jti %q", a.JTI)
	}
	if a.Token == b.Token {
		t.Fatalf("two mints at the same instant produced the same token")
	}
	if rec.count() != 2 {
		t.Fatalf("recorder saw %d calls, want 2", rec.count())
	}
}

func TestIssuedTokenVerifiesUntilExpiry(t *testing.T) {
	iss, _ := newTestIssuer(t, func(c *IssuerConfig) { c.Audience = testAudience })
	tok, err := iss.Issue(context.Background(), IssueRequest{
		ClientID: "my-app", Expiry: mustExpiry(t, "24h"), Scopes: []string{"read"}, Caller: callerWith("read"),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := issuerNow.Truncate(time.Second)
	tests := []struct {
		name    string
		at      time.Time
		wantErr error
	}{
		{"minted token verifies at issue time", now, nil},
		{"minted token verifies one second before exp", now.Add(24*time.Hour - time.Second), nil},
		{"minted token verifies within leeway after exp", now.Add(24*time.Hour + DefaultLeeway - time.Second), nil},
		{"minted token is expired once exp+leeway is reached", now.Add(24*time.Hour + DefaultLeeway), ErrTokenExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, func(c *VerifierConfig) { c.Audience = testAudience; c.Now = fixedClock(tc.at) })
			claims, err := v.Verify(tok.Token)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.ClientID() != "my-app" || claims.ID != tok.JTI || !slices.Equal(claims.Scope, Scopes{"read"}) {
				t.Fatalf("claims = %+v", claims)
			}
		})
	}
}

func TestIssuerRefusesScopesOutsideTheKnownSet(t *testing.T) {
	rec := &fakeRecorder{}
	iss, err := NewIssuer(IssuerConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer, MaxLifetime: time.Hour, KnownScopes: []string{"tools:call"}, Now: fixedClock(tokentest.T0)}, rec)
	if err != nil {
		t.Fatal(err)
	}
	admin := &Claims{Scope: Scopes{ScopeAdmin}}
	admin.Subject = "root"
	if _, err := iss.Issue(t.Context(), IssueRequest{ClientID: "a", Expiry: Expiry{Duration: time.Minute}, Scopes: []string{"tools:call", "admin"}, Caller: admin}); err != nil {
		t.Fatalf("known scopes refused: %v", err)
	}
	_, err = iss.Issue(t.Context(), IssueRequest{ClientID: "a", Expiry: Expiry{Duration: time.Minute}, Scopes: []string{"billing:write"}, Caller: admin})
	if !errors.Is(err, ErrUnknownScope) {
		t.Fatalf("unknown scope: %v", err)
	}
	if len(rec.calls) != 1 {
		t.Fatalf("recorder saw %d calls, want 1", len(rec.calls))
	}
}

// Rule: the Issuer audits every mint and every refusal itself, for every
// caller, naming the path the request came by; the record never carries
// the token.
func TestIssuerAuditsMintsAndRefusalsInOnePlace(t *testing.T) {
	var buf bytes.Buffer
	iss, _ := newTestIssuer(t, func(c *IssuerConfig) { c.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	admin := &Claims{Scope: Scopes{ScopeAdmin}}
	admin.Subject = "root"
	tok, err := iss.Issue(context.Background(), IssueRequest{ClientID: "bot", Expiry: Expiry{Duration: time.Hour}, Caller: admin,
		Via: "oauth", AuditAttrs: []any{"oauth_client_id", "app-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Issue(context.Background(), IssueRequest{ClientID: "bot", Expiry: Expiry{Duration: 3000 * time.Hour}, Caller: admin, Via: "cli"}); err == nil {
		t.Fatal("an over-long lifetime was minted")
	}
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 2 {
		t.Fatalf("%d audit records, want 2: %s", len(recs), buf.String())
	}
	if r := recs[0]; r["event"] != EventTokenIssued || r["via"] != "oauth" || r["jti"] != tok.JTI || r["issued_by"] != "root" ||
		r["oauth_client_id"] != "app-1" || r["expires_in"] != "1h" {
		t.Errorf("mint record = %v", r)
	}
	if r := recs[1]; r["event"] != EventIssueRefused || r["via"] != "cli" || !strings.Contains(r["reason"].(string), "longer than") {
		t.Errorf("refusal record = %v", r)
	}
	if strings.Contains(buf.String(), tok.Token) {
		t.Fatal("an audit record carries the token")
	}
}

// Rule: a registry that cannot record refuses every mint the same way;
// those refusals are written once per 10s window, and the next record
// says how many were held back, instead of one line per mint.
func TestRepeatedRecordFailuresAreSummarized(t *testing.T) {
	var buf bytes.Buffer
	now := issuerNow
	iss, rec := newTestIssuer(t, func(c *IssuerConfig) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
		c.Now = func() time.Time { return now }
	})
	rec.err = errors.New("registry: record token x: disk full")
	admin := &Claims{Scope: Scopes{ScopeAdmin}}
	admin.Subject = "root"
	mint := func() {
		if _, err := iss.Issue(context.Background(), IssueRequest{ClientID: "bot", Expiry: Expiry{Duration: time.Hour}, Caller: admin}); err == nil {
			t.Fatal("a mint that could not be recorded succeeded")
		}
	}
	for range 100 {
		mint()
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d audit lines for 100 identical refusals in one window, want 1", n)
	}
	now = now.Add(11 * time.Second)
	mint()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"repeated_before":99`) {
		t.Fatalf("after the window: %s", buf.String())
	}
	// A policy refusal is never summarized: each says who asked what.
	buf.Reset()
	for range 3 {
		if _, err := iss.Issue(context.Background(), IssueRequest{ClientID: "bad id!", Expiry: Expiry{Duration: time.Hour}, Caller: admin}); err == nil {
			t.Fatal("an invalid client id was minted")
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Fatalf("%d audit lines for 3 policy refusals, want 3", n)
	}
}
