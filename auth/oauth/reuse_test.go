package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// fakeMinter mints numbered jtis; during, when set, runs once inside the
// next Issue (after the grant was consumed, before the refresh token is
// stored): the window a concurrent replay can hit.
type fakeMinter struct {
	n      int
	during func()
}

func (m *fakeMinter) Issue(_ context.Context, req auth.IssueRequest) (auth.IssuedToken, error) {
	m.n++
	if f := m.during; f != nil {
		m.during = nil
		f()
	}
	return auth.IssuedToken{Token: fmt.Sprintf("access-%d", m.n), JTI: fmt.Sprintf("jti-%d", m.n), ClientID: req.ClientID, Scopes: auth.Scopes(req.Scopes)}, nil
}

type fakeRevoker struct{ revoked map[string]bool }

func (f *fakeRevoker) RevokeJTI(_ context.Context, jti, _, _ string) (registry.Token, bool, error) {
	already := f.revoked[jti]
	f.revoked[jti] = true
	return registry.Token{JTI: jti}, already, nil
}

// Rule: a refresh-token replay detected while the real refresh is still
// minting revokes what that refresh mints too: the family's current
// access token never survives detected reuse.
func TestReuseDetectedDuringARefreshRevokesWhatItMints(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.OpenSQLite(ctx, filepath.Join(t.TempDir(), "reg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	minter, revoker := &fakeMinter{}, &fakeRevoker{revoked: map[string]bool{}}
	s, err := New(Config{Issuer: "https://as.example", Resources: []string{"https://as.example/mcp"}, Store: reg, Minter: minter, Revoker: revoker})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	post := func(form url.Values) (int, map[string]any) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		mux.ServeHTTP(w, r)
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out
	}
	verifier := strings.Repeat("v", 43)
	rec, _ := json.Marshal(codeRecord{ClientID: "mcp-c", RedirectURI: "https://app.example/cb", CodeChallenge: s256(verifier),
		Resource: "https://as.example/mcp", Subject: "app", Scopes: []string{"tools:call"}, ApprovedBy: "admin"})
	if err := reg.PutState(ctx, registry.State{Kind: kindCode, Key: hashKey("the-code"), Value: rec, ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	status, tok := post(url.Values{"grant_type": {"authorization_code"}, "code": {"the-code"}, "client_id": {"mcp-c"},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}})
	if status != 200 {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	rt1 := tok["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "client_id": {"mcp-c"}}
	var replay int
	minter.during = func() { replay, _ = post(refresh) }
	status, out := post(refresh)
	if replay != 400 {
		t.Fatalf("the concurrent replay: %d", replay)
	}
	if status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("the refresh that raced a detected replay: %d %v, want invalid_grant", status, out)
	}
	for _, jti := range []string{"jti-1", "jti-2"} {
		if !revoker.revoked[jti] {
			t.Errorf("%s (the family's access tokens) not revoked; revoked: %v", jti, revoker.revoked)
		}
	}
}
