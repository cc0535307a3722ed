package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

func jtiOf(t *testing.T, s *stack, token string) string {
	t.Helper()
	in := s.Verifier.Inspect(token)
	jti, _ := in.Claims["jti"].(string)
	if !in.SignatureValid || jti == "" {
		t.Fatalf("not one of this stack's tokens: %s", in.Reason)
	}
	return jti
}

func TestRevokeTokenToolRevokesByJTITokenAndClient(t *testing.T) {
	s := startStack(t, stackOpts{})
	admin := s.mint(t, "admin-console", time.Hour, "admin")
	c, err := connect(t, kinds[0], s.URL, admin)
	if err != nil {
		t.Fatal(err)
	}
	a1 := s.mint(t, "alpha", time.Hour)
	a2 := s.mint(t, "alpha", time.Hour)
	b1 := s.mint(t, "beta", time.Hour)
	b2 := s.mint(t, "beta", time.Hour)

	type revoked struct {
		Revoked []struct {
			JTI       string `json:"jti"`
			ClientID  string `json:"client_id"`
			RevokedBy string `json:"revoked_by"`
			Reason    string `json:"reason"`
			Already   bool   `json:"already_revoked"`
		} `json:"revoked"`
	}
	refusals := []struct {
		name string
		args map[string]any
		want string
	}{
		{"nothing given", map[string]any{"reason": "x"}, "exactly one of jti, token or client_id"},
		{"two given", map[string]any{"jti": jtiOf(t, s, a1), "client_id": "alpha"}, "exactly one"},
		{"unknown jti", map[string]any{"jti": "00000000000000000000000000000000"}, "no token with jti"},
		{"foreign token", map[string]any{"token": signedWith(t, "another-secret-another-secret-0123456789", "alpha")}, "not signed by this server"},
		{"not a token", map[string]any{"token": "garbage"}, "not a token"},
		{"unknown client", map[string]any{"client_id": "nobody"}, "no tokens recorded"},
		{"bad client id", map[string]any{"client_id": "a b"}, "invalid client_id"},
		{"control characters in reason", map[string]any{"jti": jtiOf(t, s, a1), "reason": "a\nb"}, "control characters"},
		{"reason too long", map[string]any{"jti": jtiOf(t, s, a1), "reason": strings.Repeat("x", 501)}, "longer than 500"},
	}
	for _, r := range refusals {
		t.Run("refused: "+r.name, func(t *testing.T) {
			res := testutil.CallTool(t, c, "revoke_token", r.args)
			if !res.IsError || !strings.Contains(testutil.Text(res), r.want) {
				t.Fatalf("isError=%v text=%q, want error with %q", res.IsError, testutil.Text(res), r.want)
			}
			if s.Revoker.Set().Len() != 0 {
				t.Fatal("a refused revocation changed the revocation set")
			}
		})
	}

	// By jti, with a reason; then again: idempotent.
	var out revoked
	structured(t, testutil.CallTool(t, c, "revoke_token", map[string]any{"jti": jtiOf(t, s, a1), "reason": "laptop stolen"}), &out)
	if len(out.Revoked) != 1 || out.Revoked[0].ClientID != "alpha" || out.Revoked[0].RevokedBy != "admin-console" || out.Revoked[0].Reason != "laptop stolen" || out.Revoked[0].Already {
		t.Fatalf("revoke by jti = %+v", out)
	}
	structured(t, testutil.CallTool(t, c, "revoke_token", map[string]any{"jti": jtiOf(t, s, a1), "reason": "again"}), &out)
	if !out.Revoked[0].Already || out.Revoked[0].Reason != "laptop stolen" {
		t.Fatalf("second revoke = %+v, want already_revoked with the original reason", out)
	}
	// By the token itself.
	structured(t, testutil.CallTool(t, c, "revoke_token", map[string]any{"token": "Bearer " + b1}), &out)
	if len(out.Revoked) != 1 || out.Revoked[0].JTI != jtiOf(t, s, b1) {
		t.Fatalf("revoke by token = %+v", out)
	}
	// Every token of a client: only the not-yet-revoked one.
	structured(t, testutil.CallTool(t, c, "revoke_token", map[string]any{"client_id": "alpha"}), &out)
	if len(out.Revoked) != 1 {
		t.Fatalf("revoke client = %+v, want 1 newly revoked", out)
	}

	for name, tok := range map[string]string{"a1": a1, "a2": a2, "b1": b1} {
		if _, err := s.Verifier.Verify(tok); err != auth.ErrTokenRevoked {
			t.Errorf("%s: Verify = %v, want ErrTokenRevoked", name, err)
		}
	}
	if _, err := s.Verifier.Verify(b2); err != nil {
		t.Errorf("b2 was not revoked but Verify = %v", err)
	}

	// decode_token and list_clients show the state.
	var dec struct {
		Valid    bool `json:"valid"`
		Revoked  bool `json:"revoked"`
		Registry struct {
			RevokedBy    string `json:"revoked_by"`
			RevokeReason string `json:"revoke_reason"`
		} `json:"registry"`
	}
	structured(t, testutil.CallTool(t, c, "decode_token", map[string]any{"token": a1}), &dec)
	if dec.Valid || !dec.Revoked || dec.Registry.RevokedBy != "admin-console" || dec.Registry.RevokeReason != "laptop stolen" {
		t.Fatalf("decode_token of a revoked token = %+v", dec)
	}
	var list struct {
		Clients []struct {
			ClientID      string `json:"client_id"`
			ActiveTokens  int    `json:"active_tokens"`
			RevokedTokens int    `json:"revoked_tokens"`
		} `json:"clients"`
	}
	structured(t, testutil.CallTool(t, c, "list_clients", nil), &list)
	got := map[string][2]int{}
	for _, cl := range list.Clients {
		got[cl.ClientID] = [2]int{cl.ActiveTokens, cl.RevokedTokens}
	}
	if got["alpha"] != [2]int{0, 2} || got["beta"] != [2]int{1, 1} {
		t.Fatalf("list_clients active/revoked = %v", got)
	}
}

func TestRevokedTokenIsRefusedOnItsVeryNextRequest(t *testing.T) {
	s := startStack(t, stackOpts{})
	user := s.mint(t, "victim", time.Hour)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			tok := s.mint(t, "victim", time.Hour)
			c, err := connect(t, k, s.URL, tok)
			if err != nil {
				t.Fatal(err)
			}
			testutil.CallTool(t, c, "whoami", nil)
			if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := c.ListTools(ctx, listReq()); err == nil {
				t.Fatal("a revoked token was still served")
			}
		})
	}
	// Over raw HTTP the refusal says why.
	if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, user), "test", "leaked"); err != nil {
		t.Fatal(err)
	}
	resp := do(t, "POST", s.URL+"/mcp", user, initBody, nil)
	wa := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(wa, "Token has been revoked") || !strings.Contains(wa, `error="invalid_token"`) {
		t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, wa)
	}
}

func TestRevocationClosesOpenStreamsAndSessions(t *testing.T) {
	s := startStack(t, stackOpts{})
	tok := s.mint(t, "streamer", time.Hour)
	other := s.mint(t, "streamer", time.Hour) // same subject, not revoked

	// A legacy SSE stream.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 256)
	if _, err := resp.Body.Read(buf); err != nil { // the endpoint event
		t.Fatal(err)
	}

	// A Streamable HTTP session opened with the same token.
	init := do(t, "POST", s.URL+"/mcp", tok, initBody, nil)
	sid := init.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session id")
	}
	if s.HTTP.OpenSessions() != 2 {
		t.Fatalf("%d sessions open, want 2", s.HTTP.OpenSessions())
	}

	if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _ = io.Copy(io.Discard, resp.Body) // returns when the server closes the stream
	if ctx.Err() != nil {
		t.Fatal("the SSE stream of a revoked token stayed open")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stream closed after %v", el)
	}
	// The session is gone: even a valid token of the same subject gets 404.
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
	r := do(t, "POST", s.URL+"/mcp", other, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, hdr)
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("session of a revoked token: status %d, want 404", r.StatusCode)
	}
	if n := s.HTTP.OpenSessions(); n != 0 {
		t.Fatalf("%d sessions still open", n)
	}
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
}
