package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

// generateKey runs "key generate" into a new file in dir and returns the
// file and the kid it printed.
func generateKey(t *testing.T, alg, dir string) (path, kid string) {
	t.Helper()
	path = filepath.Join(dir, strings.ToLower(alg)+"-signing.pem")
	out, errOut, code := run(t, testEnv(t), "", "key", "generate", "--alg", alg, "--out", path)
	if code != 0 {
		t.Fatalf("key generate --alg %s: exit %d: %s", alg, code, errOut)
	}
	m := regexp.MustCompile(`kid (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("key generate printed no kid: %q", out)
	}
	return path, m[1]
}

func TestKeyGenerateWritesAPrivateKeyFileAndItsKid(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range keys.Asymmetric {
		t.Run(alg, func(t *testing.T) {
			path, kid := generateKey(t, alg, dir)
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v, err %v", st.Mode(), err)
			}
			k, err := keys.LoadSigningFile(path, alg)
			if err != nil || k.ID() != kid {
				t.Fatalf("the file holds kid %v (err %v), the command printed %s", k, err, kid)
			}
			before, _ := os.ReadFile(path)
			_, errOut, code := run(t, testEnv(t), "", "key", "generate", "--alg", alg, "--out", path)
			if after, _ := os.ReadFile(path); code == 0 || !strings.Contains(errOut, "exists") || string(after) != string(before) {
				t.Fatalf("second generate into the same file: exit %d %q, file changed %v", code, errOut, string(after) != string(before))
			}
		})
	}
	t.Run("to stdout", func(t *testing.T) {
		out, errOut, code := run(t, testEnv(t), "", "key", "generate", "--alg", "EdDSA")
		if code != 0 || !strings.HasPrefix(out, "-----BEGIN PRIVATE KEY-----") || !strings.Contains(errOut, "MCP_SIGNING_ALG=EdDSA MCP_SIGNING_KEY_FILE=") {
			t.Fatalf("exit %d, stdout %.40q, stderr %q", code, out, errOut)
		}
	})
	for _, c := range []struct{ alg, want string }{{"HS256", "mcpauth secret generate"}, {"HS512", "unsupported signing algorithm"}, {"none", "unsupported"}} {
		t.Run("refuses "+c.alg, func(t *testing.T) {
			_, errOut, code := run(t, testEnv(t), "", "key", "generate", "--alg", c.alg, "--out", filepath.Join(dir, "x.pem"))
			if code == 0 || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, c.want)
			}
		})
	}
}

// Rule: a signing setting that cannot work stops the start, naming the
// setting and what to do.
func TestSigningSettingsAreCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	rsa, _ := generateKey(t, "RS256", dir)
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		extra []string
		want  []string
	}{
		{"ES256 without a key file", []string{"MCP_SIGNING_ALG=ES256"}, []string{"MCP_SIGNING_KEY_FILE", "mcpauth key generate --alg ES256"}},
		{"a key of another type", []string{"MCP_SIGNING_ALG=ES256", "MCP_SIGNING_KEY_FILE=" + rsa}, []string{"MCP_SIGNING_KEY_FILE", "ES256 needs an ECDSA P-256 key", "RSA"}},
		{"a key file for HS256", []string{"MCP_SIGNING_KEY_FILE=" + rsa}, []string{"MCP_SIGNING_KEY_FILE is set but MCP_SIGNING_ALG is HS256"}},
		{"an unknown algorithm", []string{"MCP_SIGNING_ALG=HS512"}, []string{"MCP_SIGNING_ALG", "HS512"}},
		{"a missing key file", []string{"MCP_SIGNING_ALG=RS256", "MCP_SIGNING_KEY_FILE=" + filepath.Join(dir, "nope.pem")}, []string{"MCP_SIGNING_KEY_FILE", "nope.pem"}},
		{"a file that is no key", []string{"MCP_SIGNING_ALG=RS256", "MCP_SIGNING_KEY_FILE=" + junk}, []string{"MCP_SIGNING_KEY_FILE", "no PEM private key block"}},
		{"a weak previous secret", []string{"MCP_JWT_SECRET_PREVIOUS=changeme"}, []string{"MCP_JWT_SECRET_PREVIOUS is refused"}},
		{"the previous secret is the secret", []string{"MCP_JWT_SECRET_PREVIOUS=" + testSecret}, []string{"MCP_JWT_SECRET_PREVIOUS equals MCP_JWT_SECRET"}},
		{"a verify key file that is no key", []string{"MCP_VERIFY_KEY_FILES=" + junk}, []string{"MCP_VERIFY_KEY_FILES", "junk.pem"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := run(t, testEnv(t, c.extra...), "", "serve")
			for _, w := range c.want {
				if code == 0 || !strings.Contains(errOut, w) {
					t.Fatalf("exit %d, stderr %q, want a refusal mentioning %q", code, errOut, w)
				}
			}
			if strings.Contains(errOut, testSecret) || strings.Contains(errOut, "-----BEGIN") {
				t.Fatalf("the refusal shows key material: %q", errOut)
			}
		})
	}
}

func tokenHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func jwksKids(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// The whole path with an ES256 key file: a token minted by the CLI names
// the key, is served over Streamable HTTP, and a token of the secret
// minted before the switch still works.
func TestServerSignsWithAnES256KeyFileEndToEnd(t *testing.T) {
	path, kid := generateKey(t, "ES256", t.TempDir())
	hs := testEnv(t)
	before := issue(t, hs, "before-switch", "1h")
	es := mergeEnv(hs, []string{"MCP_SIGNING_ALG=ES256", "MCP_SIGNING_KEY_FILE=" + path})

	tok := issue(t, es, "es-client", "1h", "--scope", "admin")
	if h := tokenHeader(t, tok.Token); h["alg"] != "ES256" || h["kid"] != kid {
		t.Fatalf("CLI-minted token header %v, want ES256 and kid %s", h, kid)
	}
	out, errOut, code := run(t, es, tok.Token, "token", "decode", "--json")
	var in struct {
		SignedBy struct{ Kid, Alg string } `json:"signed_by"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.SignedBy.Kid != kid || in.SignedBy.Alg != "ES256" {
		t.Fatalf("token decode: exit %d %s %s", code, out, errOut)
	}

	addr := startServer(t, es)
	c := mcpClient(t, addr, tok.Token)
	if who := structuredField(t, testutil.CallTool(t, c, "whoami", nil), "client_id"); who != "es-client" {
		t.Fatalf("whoami with the ES256 token = %v", who)
	}
	// The issue_token tool mints with the key too.
	minted := testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": "tool-minted", "expires_in": "1h"})
	if tk, _ := structuredField(t, minted, "token").(string); tk == "" || tokenHeader(t, tk)["kid"] != kid {
		t.Fatalf("issue_token minted %v", minted.StructuredContent)
	}
	if who := structuredField(t, testutil.CallTool(t, mcpClient(t, addr, before.Token), "whoami", nil), "client_id"); who != "before-switch" {
		t.Fatalf("whoami with the HS256 token minted before the switch = %v", who)
	}
	if kids := jwksKids(t, addr); len(kids) != 1 || kids[0] != kid {
		t.Fatalf("JWKS kids %v, want [%s]", kids, kid)
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var health struct {
		Auth struct{ Algorithm string } `json:"auth"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil || health.Auth.Algorithm != "ES256" {
		t.Fatalf("/health auth.algorithm = %q (%v), want ES256", health.Auth.Algorithm, err)
	}
}

// Rotation by settings alone: the previous secret and the previous key
// file keep verifying what they signed; new tokens use the new ones.
func TestPreviousSecretAndVerifyKeyFilesKeepOldTokensValid(t *testing.T) {
	dir := t.TempDir()
	oldKey, oldKid := generateKey(t, "EdDSA", dir)
	newKey, newKid := generateKey(t, "ES256", filepath.Join(dir))
	oldSecretTok := issue(t, testEnv(t), "old-secret", "1h")
	db := filepath.Join(t.TempDir(), "reg.db")
	oldKeyTok := issue(t, testEnv(t, "MCP_DATABASE_URL="+db, "MCP_SIGNING_ALG=EdDSA", "MCP_SIGNING_KEY_FILE="+oldKey), "old-key", "1h")

	const newSecret = "rotated-secret-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	e := testEnv(t, "MCP_DATABASE_URL="+db, "MCP_JWT_SECRET="+newSecret, "MCP_JWT_SECRET_PREVIOUS="+testSecret,
		"MCP_SIGNING_ALG=ES256", "MCP_SIGNING_KEY_FILE="+newKey, "MCP_VERIFY_KEY_FILES="+oldKey)
	addr := startServer(t, e)
	for _, tk := range []issuedJSON{oldSecretTok, oldKeyTok} {
		if who := structuredField(t, testutil.CallTool(t, mcpClient(t, addr, tk.Token), "whoami", nil), "client_id"); who != tk.ClientID {
			t.Fatalf("whoami with %s's token = %v", tk.ClientID, who)
		}
	}
	if kids := strings.Join(jwksKids(t, addr), ","); kids != newKid+","+oldKid {
		t.Fatalf("JWKS kids %s, want the new key then the old", kids)
	}
	// Without the previous settings, the old tokens are refused.
	bare := testEnv(t, "MCP_DATABASE_URL="+db, "MCP_JWT_SECRET="+newSecret, "MCP_SIGNING_ALG=ES256", "MCP_SIGNING_KEY_FILE="+newKey)
	for _, tk := range []issuedJSON{oldSecretTok, oldKeyTok} {
		if _, _, code := run(t, bare, tk.Token, "token", "decode"); code != 2 {
			t.Fatalf("token decode of %s's token without the previous settings: exit %d, want 2", tk.ClientID, code)
		}
	}
}

// Rule: the registry records which key signed each token. key list (and
// the list_keys tool) shows every key in use with its live tokens; once a
// key is no longer configured, token list and key list report its live
// tokens as retired (they are refused), not as active.
func TestKeyListCountsLiveTokensAndReportsRetiredKeys(t *testing.T) {
	dir := t.TempDir()
	oldKey, oldKid := generateKey(t, "ES256", dir)
	newKey, newKid := generateKey(t, "EdDSA", dir)
	e := testEnv(t)
	hsTok := issue(t, e, "hs-client", "1h")
	withOld := mergeEnv(e, []string{"MCP_SIGNING_ALG=ES256", "MCP_SIGNING_KEY_FILE=" + oldKey})
	issue(t, withOld, "es-client", "1h")
	issue(t, withOld, "es-client", "2h")
	revoked := issue(t, withOld, "es-client", "3h")
	if _, errOut, code := run(t, withOld, "", "token", "revoke", revoked.JTI); code != 0 {
		t.Fatal(errOut)
	}

	type keyInfo struct {
		KID        string `json:"kid"`
		Alg        string `json:"alg"`
		State      string `json:"state"`
		Public     bool   `json:"public"`
		LiveTokens int    `json:"live_tokens"`
	}
	keyList := func(environ []string) map[string]keyInfo {
		t.Helper()
		out, errOut, code := run(t, environ, "", "key", "list", "--json")
		if code != 0 {
			t.Fatalf("key list: %s", errOut)
		}
		var l struct{ Keys []keyInfo }
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("key list output %q: %v", out, err)
		}
		m := map[string]keyInfo{}
		for _, k := range l.Keys {
			m[k.State+" "+k.Alg] = k
		}
		return m
	}
	got := keyList(withOld)
	if k := got["signing ES256"]; k.KID != oldKid || !k.Public || k.LiveTokens != 2 {
		t.Errorf("signing key = %+v, want %s with 2 live tokens", k, oldKid)
	}
	if k := got["verifying HS256"]; k.Public || k.LiveTokens != 1 {
		t.Errorf("the secret = %+v, want unpublished with 1 live token (%s)", k, hsTok.JTI)
	}

	// The ES256 key is dropped for an EdDSA one: its tokens are retired.
	withNew := mergeEnv(e, []string{"MCP_SIGNING_ALG=EdDSA", "MCP_SIGNING_KEY_FILE=" + newKey})
	got = keyList(withNew)
	if k := got["retired "]; k.KID != oldKid || k.LiveTokens != 2 {
		t.Errorf("retired key = %+v, want %s with 2 live tokens", k, oldKid)
	}
	if k := got["signing EdDSA"]; k.KID != newKid || k.LiveTokens != 0 {
		t.Errorf("new signing key = %+v", k)
	}
	out, _, _ := run(t, withNew, "", "token", "list", "--client", "es-client")
	if strings.Count(out, "KEY RETIRED") != 2 || !strings.Contains(out, oldKid) {
		t.Errorf("token list after the key was dropped:\n%s", out)
	}
	out, _, _ = run(t, withNew, "", "key", "list")
	if !strings.Contains(out, oldKid+": retired (no longer configured), 2 live token(s) it signed are refused") {
		t.Errorf("key list:\n%s", out)
	}
}
