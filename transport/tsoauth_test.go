package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// tsOAuthResult is what testdata/tsclient/oauth.mjs prints.
type tsOAuthResult struct {
	Tools  []string `json:"tools"`
	Whoami struct {
		ClientID string `json:"client_id"`
	} `json:"whoami"`
	AccessToken          string `json:"accessToken"`
	RefreshedAccessToken string `json:"refreshedAccessToken"`
	RevokeStatus         int    `json:"revokeStatus"`
	RefusedAfterRevoke   bool   `json:"refusedAfterRevoke"`
	Refreshed            bool   `json:"refreshed"`
	WhoamiAfterRefresh   struct {
		ClientID string `json:"client_id"`
	} `json:"whoamiAfterRefresh"`
	Authorize struct {
		Resource            string `json:"resource"`
		Scope               string `json:"scope"`
		RedirectURI         string `json:"redirect_uri"`
		CodeChallengeMethod string `json:"code_challenge_method"`
	} `json:"authorize"`
	Registration struct {
		ApplicationType         string   `json:"application_type"`
		TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
		RedirectURIs            []string `json:"redirect_uris"`
		Scope                   string   `json:"scope"`
	} `json:"registration"`
	TokenRequests []struct {
		GrantType string  `json:"grant_type"`
		Resource  *string `json:"resource"`
		Scope     *string `json:"scope"`
		ClientID  *string `json:"client_id"`
	} `json:"tokenRequests"`
}

// runTSOAuth runs the SDK's OAuth sign-in against url with an enrollment
// code; it returns the script's output, or its exit error and stderr.
func runTSOAuth(t *testing.T, url, code string) (tsOAuthResult, string, error) {
	t.Helper()
	node, dir := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "oauth.mjs"), url)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ENROLLMENT_CODE="+code)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return tsOAuthResult{}, stderr.String(), err
	}
	var r tsOAuthResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("oauth.mjs output %q: %v", stdout.String(), err)
	}
	t.Logf("oauth.mjs: %s", bytes.TrimSpace(stdout.Bytes()))
	return r, stderr.String(), nil
}

// The official TypeScript SDK signs in by itself with its OAuthClientProvider
// support: 401 -> protected resource metadata -> authorization server
// metadata -> dynamic registration -> PKCE authorization (the script plays
// the user on the consent page) -> token exchange -> MCP calls -> a refresh
// when the access token goes stale.
func TestTypeScriptSDKSignsInWithOAuth(t *testing.T) {
	requireNode(t)
	s := startStack(t, stackOpts{oauth: true})

	t.Run("approve", func(t *testing.T) {
		code := enroll(t, s, "ts-oauth", "tools:call")
		before := s.tokenCount(t)
		r, stderr, err := runTSOAuth(t, s.URL+"/mcp", code)
		if err != nil {
			t.Fatalf("oauth.mjs: %v: %s", err, stderr)
		}

		// What the SDK asked for. The 401 from /mcp names the root resource
		// metadata (resource_metadata=<base>/.well-known/oauth-protected-resource),
		// whose resource is the origin, so that is the RFC 8707 resource the
		// SDK sends, verbatim (no trailing slash), to /authorize and /token.
		// With no scope in the challenge it asks for all of the metadata's
		// scopes_supported.
		if r.Authorize.Resource != s.URL {
			t.Errorf("authorize resource = %q, want %q", r.Authorize.Resource, s.URL)
		}
		if r.Authorize.Scope != "admin tools:call" || r.Authorize.CodeChallengeMethod != "S256" {
			t.Errorf("authorize scope = %q, code_challenge_method = %q", r.Authorize.Scope, r.Authorize.CodeChallengeMethod)
		}
		if reg := r.Registration; reg.ApplicationType != "native" || reg.TokenEndpointAuthMethod != "none" ||
			!slices.Equal(reg.RedirectURIs, []string{r.Authorize.RedirectURI}) || !loopbackCallback.MatchString(r.Authorize.RedirectURI) {
			t.Errorf("registration = %+v, redirect_uri %q", reg, r.Authorize.RedirectURI)
		}
		var grants []string
		for _, tr := range r.TokenRequests {
			grants = append(grants, tr.GrantType)
			if tr.Resource == nil || *tr.Resource != s.URL || tr.ClientID == nil || *tr.ClientID == "" {
				t.Errorf("token request %s: resource %v, client_id %v", tr.GrantType, tr.Resource, tr.ClientID)
			}
		}
		if !slices.Equal(grants, []string{"authorization_code", "refresh_token"}) {
			t.Errorf("token requests = %v", grants)
		}

		// What it got: a token for the enrolled name, narrowed to the
		// enrollment's scopes, for the resource it named, recorded.
		if r.Whoami.ClientID != "ts-oauth" {
			t.Errorf("whoami client_id = %q", r.Whoami.ClientID)
		}
		if !slices.Equal(r.Tools, []string{"whoami"}) {
			t.Errorf("tools = %v", r.Tools)
		}
		// The script ends by revoking the family (RFC 7009 2.1: every
		// access token of the grant goes too), so read it without Verify.
		if _, err := s.Verifier.Verify(r.AccessToken); err != auth.ErrTokenRevoked {
			t.Fatalf("the revoked family's first access token: %v", err)
		}
		in := s.Verifier.Inspect(r.AccessToken)
		firstJTI, _ := in.Claims["jti"].(string)
		if !in.SignatureValid || in.Claims["sub"] != "ts-oauth" || in.Claims["scope"] != "tools:call" || fmt.Sprint(in.Claims["aud"]) != "["+s.URL+"]" || firstJTI == "" {
			t.Errorf("access token claims: %v", in.Claims)
		}

		// After RFC 7009 revocation of the refresh token, its family's
		// access tokens are refused.
		if r.RevokeStatus != 200 || !r.RefusedAfterRevoke {
			t.Fatalf("revoke status %d, refused after revoke = %v", r.RevokeStatus, r.RefusedAfterRevoke)
		}
		if _, err := s.Verifier.Verify(r.RefreshedAccessToken); err != auth.ErrTokenRevoked {
			t.Fatalf("the revoked family's access token: %v", err)
		}
		// The SDK refreshed on the 401 and retried with the new token.
		if !r.Refreshed || r.WhoamiAfterRefresh.ClientID != "ts-oauth" {
			t.Fatalf("refreshed = %v, whoami after refresh = %q", r.Refreshed, r.WhoamiAfterRefresh.ClientID)
		}
		// (It is revoked by now, so read its claims without Verify.)
		rin := s.Verifier.Inspect(r.RefreshedAccessToken)
		if !rin.SignatureValid || rin.Claims["sub"] != "ts-oauth" || rin.Claims["scope"] != "tools:call" ||
			fmt.Sprint(rin.Claims["aud"]) != "["+s.URL+"]" || rin.Claims["jti"] == firstJTI {
			t.Errorf("refreshed token claims: %v (first jti %q)", rin.Claims, firstJTI)
		}

		// Both access tokens are in the registry, and nothing else was minted.
		if got := s.tokenCount(t); got != before+2 {
			t.Errorf("registry count %d, want %d", got, before+2)
		}
		toks, err := s.Reg.ListTokens(context.Background(), "ts-oauth")
		if err != nil {
			t.Fatal(err)
		}
		var jtis []string
		for _, tok := range toks {
			jtis = append(jtis, tok.JTI)
		}
		rjti, _ := rin.Claims["jti"].(string)
		if !slices.Contains(jtis, firstJTI) || !slices.Contains(jtis, rjti) {
			t.Errorf("registry jtis for ts-oauth = %v, want %s and %s", jtis, firstJTI, rjti)
		}
	})

	t.Run("wrong enrollment code", func(t *testing.T) {
		before := s.tokenCount(t)
		_, stderr, err := runTSOAuth(t, s.URL+"/mcp", "WRONG-CODE1")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("oauth.mjs with a wrong code: %v (want exit 1): %s", err, stderr)
		}
		if !strings.Contains(stderr, "consent refused: 401") {
			t.Errorf("stderr = %q", stderr)
		}
		if got := s.tokenCount(t); got != before {
			t.Errorf("a wrong enrollment code minted %d tokens", got-before)
		}
	})
}

var loopbackCallback = regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/callback$`)
