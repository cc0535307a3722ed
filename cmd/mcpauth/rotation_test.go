package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// testKEK is the key-encryption secret of the registry-kept key tests.
const testKEK = "kek-3c1f9a7d52e84b06a9d1c7f3e5b2a8d4c6e0f1a2b3"

// waitFor polls cond every 20ms until it holds or within passes; it
// returns how long that took, failing the test past within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// Rotation end to end with registry-kept keys on PostgreSQL: two
// replicas share the first key; rotate_signing_key on one makes the
// other sign with the new key within 1 s; the old key's tokens work
// through the grace on both and are refused after it, naming the
// retirement.
func TestRotationReachesEveryReplicaAndRetiresTheOldKey(t *testing.T) {
	db := postgresDB(t)
	e := testEnv(t, "MCP_DATABASE_URL="+db, "MCP_KEY_ENCRYPTION_SECRET="+testKEK, "MCP_SIGNING_ALG=ES256",
		"MCP_KEY_GRACE_MAX=4s", "MCP_LEEWAY=1s")
	admin := issue(t, e, "ops", "1h", "--scope", "admin")
	user := issue(t, e, "roaming-client", "1h")
	oldKid, _ := tokenHeader(t, user.Token)["kid"].(string)
	if h := tokenHeader(t, admin.Token); h["alg"] != "ES256" || h["kid"] != oldKid || oldKid == "" {
		t.Fatalf("the first registry-kept key signs %v and %v, want one ES256 key", h, tokenHeader(t, user.Token))
	}
	a, b := startServer(t, e), startServer(t, e)
	for _, addr := range []string{a, b} {
		if kids := jwksKids(t, addr); !slices.Equal(kids, []string{oldKid}) {
			t.Fatalf("JWKS of %s = %v, want [%s]", addr, kids, oldKid)
		}
	}

	res := testutil.CallTool(t, mcpClient(t, a, admin.Token), "rotate_signing_key", map[string]any{"alg": "EdDSA"})
	rotated := time.Now()
	if res.IsError {
		t.Fatalf("rotate_signing_key: %s", testutil.Text(res))
	}
	newKid, _ := structuredField(t, res, "kid").(string)
	if newKid == "" || newKid == oldKid || structuredField(t, res, "alg") != "EdDSA" {
		t.Fatalf("rotate_signing_key answered %v", res.StructuredContent)
	}
	took := waitFor(t, time.Second, "replica B publishing the new key", func() bool {
		return slices.Contains(jwksKids(t, b), newKid)
	})
	t.Logf("replica B published the new key %v after the rotation on A", took)
	minted := testutil.CallTool(t, mcpClient(t, b, admin.Token), "issue_token", map[string]any{"client_id": "after-rotation", "expires_in": "1h"})
	newTok, _ := structuredField(t, minted, "token").(string)
	if h := tokenHeader(t, newTok); h["kid"] != newKid || h["alg"] != "EdDSA" {
		t.Fatalf("replica B minted %v after the rotation, want EdDSA %s", h, newKid)
	}
	// The grace: the old key's token works on both.
	for _, addr := range []string{a, b} {
		if r := postMCP(t, addr, user.Token, initJSON); r.StatusCode != http.StatusOK {
			t.Fatalf("the old key's token on %s during the grace: %d %s", addr, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}

	// MCP_KEY_GRACE_MAX=4s caps the grace (the old tokens live an hour):
	// then both replicas refuse them, saying why.
	for _, addr := range []string{a, b} {
		waitFor(t, time.Until(rotated.Add(8*time.Second)), "the old key retired on "+addr, func() bool {
			r := postMCP(t, addr, user.Token, initJSON)
			return r.StatusCode == http.StatusUnauthorized && strings.Contains(r.Header.Get("WWW-Authenticate"), "retired key")
		})
	}
	if time.Since(rotated) < 3*time.Second {
		t.Fatalf("the old key was retired %v after the rotation, before its grace (4s) ended", time.Since(rotated))
	}
	if r := postMCP(t, b, newTok, initJSON); r.StatusCode != http.StatusOK {
		t.Fatalf("the new key's token after the retirement: %d", r.StatusCode)
	}
	resp, err := http.Get("http://" + a + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Auth struct{ Algorithm, Kid string } `json:"auth"`
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || health.Auth.Kid != newKid || health.Auth.Algorithm != "EdDSA" {
		t.Errorf("/health auth after the rotation = %+v (%v), want EdDSA %s", health.Auth, err, newKid)
	}
	if kids := jwksKids(t, a); !slices.Equal(kids, []string{newKid}) {
		t.Errorf("JWKS after the retirement = %v, want [%s]", kids, newKid)
	}
	out, errOut, code := run(t, e, "", "key", "list", "--json")
	var l struct {
		Keys []struct {
			KID, State string
			RetiredAt  string `json:"retired_at"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
		t.Fatalf("key list: exit %d %s %s", code, out, errOut)
	}
	states := map[string]string{}
	for _, k := range l.Keys {
		states[k.KID] = k.State
		if k.KID == oldKid && k.RetiredAt == "" {
			t.Errorf("the retired key has no retired_at: %s", out)
		}
	}
	if states[oldKid] != "retired" || states[newKid] != "signing" {
		t.Errorf("key list states %v, want %s retired and %s signing", states, oldKid, newKid)
	}
}

// The CLI rotates too (SQLite): a running server signs with the new key
// within about a second, and rotation without registry-kept keys is
// refused, saying how keys from settings are rotated.
func TestKeyRotateCommand(t *testing.T) {
	e := testEnv(t, "MCP_KEY_ENCRYPTION_SECRET="+testKEK)
	addr := startServer(t, e)
	admin := issue(t, e, "ops", "1h", "--scope", "admin")
	first, _ := tokenHeader(t, admin.Token)["kid"].(string)
	if !strings.HasPrefix(first, "hs-") {
		t.Fatalf("the first registry-kept key with MCP_SIGNING_ALG unset is %q, want an HS256 key", first)
	}
	out, errOut, code := run(t, e, "", "key", "rotate", "--json", "--alg", "es256")
	var r struct {
		KID      string   `json:"kid"`
		Alg      string   `json:"alg"`
		Previous []string `json:"previous"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Alg != "ES256" || !slices.Equal(r.Previous, []string{first}) {
		t.Fatalf("key rotate: exit %d %s %s", code, out, errOut)
	}
	waitFor(t, 3*time.Second, "the server publishing the key rotated by the CLI", func() bool {
		return slices.Contains(jwksKids(t, addr), r.KID)
	})
	minted := testutil.CallTool(t, mcpClient(t, addr, admin.Token), "issue_token", map[string]any{"client_id": "c", "expires_in": "1h"})
	if tk, _ := structuredField(t, minted, "token").(string); tokenHeader(t, tk)["kid"] != r.KID {
		t.Fatalf("minted %v after the CLI rotation, want kid %s", minted.StructuredContent, r.KID)
	}

	_, errOut, code = run(t, testEnv(t), "", "key", "rotate")
	if code == 0 || !strings.Contains(errOut, "MCP_KEY_ENCRYPTION_SECRET") || !strings.Contains(errOut, "MCP_JWT_SECRET_PREVIOUS") {
		t.Fatalf("key rotate without registry-kept keys: exit %d %q", code, errOut)
	}
	_, errOut, code = run(t, testEnv(t, "MCP_KEY_ENCRYPTION_SECRET="+testKEK, "MCP_SIGNING_ALG=ES256", "MCP_SIGNING_KEY_FILE=/nonexistent.pem"), "", "key", "list")
	if code == 0 || !strings.Contains(errOut, "exclude each other") {
		t.Fatalf("registry-kept keys with a key file: exit %d %q", code, errOut)
	}
	_, errOut, code = run(t, e, "", "key", "rotate", "--alg", "HS512")
	if code == 0 || !strings.Contains(errOut, "HS512") {
		t.Fatalf("key rotate --alg HS512: exit %d %q", code, errOut)
	}
}
