package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
)

func getJSON(t *testing.T, url string, v any) http.Header {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %s: %v", url, body, err)
	}
	return resp.Header
}

func newKey(t *testing.T, alg string) *keys.Key {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Rule: the public keys are published at /.well-known/jwks.json (under
// the base path too), named by jwks_uri in the authorization-server
// metadata; with HS256 only the set is empty, never the secret.
func TestJWKSIsPublishedAndNamedInTheMetadata(t *testing.T) {
	es := newKey(t, keys.ES256)
	cases := []struct {
		name     string
		key      *keys.Key
		basePath string
		wantKids []string
	}{
		{"HS256 only", nil, "", nil},
		{"ES256", es, "", []string{es.ID()}},
		{"ES256 under a base path", es, "/v1", []string{es.ID()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startStack(t, stackOpts{oauth: true, signingKey: c.key, basePath: c.basePath})
			var md struct {
				JWKSURI string `json:"jwks_uri"`
			}
			getJSON(t, s.URL+"/.well-known/oauth-authorization-server", &md)
			if md.JWKSURI != s.URL+"/.well-known/jwks.json" {
				t.Fatalf("jwks_uri %q, want %q", md.JWKSURI, s.URL+"/.well-known/jwks.json")
			}
			root := strings.TrimSuffix(s.URL, c.basePath) + "/.well-known/jwks.json"
			for _, url := range []string{md.JWKSURI, root} {
				var raw map[string][]map[string]any
				h := getJSON(t, url, &raw)
				if cc := h.Get("Cache-Control"); cc != "public, max-age=300" {
					t.Errorf("Cache-Control %q", cc)
				}
				set := raw["keys"]
				if set == nil || len(set) != len(c.wantKids) {
					t.Fatalf("%s: keys %v, want kids %v", url, raw, c.wantKids)
				}
				for i, jwk := range set {
					if jwk["kid"] != c.wantKids[i] || jwk["kty"] != "EC" || jwk["alg"] != "ES256" || jwk["d"] != nil {
						t.Errorf("JWK %v", jwk)
					}
				}
			}
		})
	}
}

// Rule: an ES256 token minted by a running server verifies with nothing
// but the JWKS fetched over HTTP: golang-jwt here, the jose npm package
// below.
func TestES256TokenVerifiesWithTheFetchedJWKSAlone(t *testing.T) {
	s := startStack(t, stackOpts{signingKey: newKey(t, keys.ES256)})
	tok := s.mint(t, "jwks-reader", time.Hour, "tools:call")

	resp, err := http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		found := set.Key(kid)
		if len(found) != 1 {
			return nil, jwt.ErrTokenUnverifiable
		}
		return found[0].Key, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("mcpauth-test"))
	if err != nil || !parsed.Valid || claims["sub"] != "jwks-reader" {
		t.Fatalf("golang-jwt with the JWKS: %v (claims %v)", err, claims)
	}

	t.Run("jose npm package", func(t *testing.T) {
		node, dir := requireNodePackage(t, "jose", "jose")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "verify.mjs"), s.URL+"/.well-known/jwks.json", "mcpauth-test", "ES256")
		cmd.Env = append(os.Environ(), "MCP_TOKEN="+tok)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("jose: %v: %s", err, stderr.String())
		}
		var out struct{ Kid, Alg, Sub, Scope string }
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("jose output %q: %v", stdout.String(), err)
		}
		if out.Kid != s.Server.Keys.Active().ID() || out.Alg != "ES256" || out.Sub != "jwks-reader" || out.Scope != "tools:call" {
			t.Fatalf("jose verified %+v", out)
		}
		// And jose refuses a token whose signature is not the key's.
		parts := strings.Split(tok, ".")
		forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
		cmd = exec.CommandContext(ctx, node, filepath.Join(dir, "verify.mjs"), s.URL+"/.well-known/jwks.json", "mcpauth-test", "ES256")
		cmd.Env = append(os.Environ(), "MCP_TOKEN="+forged)
		if err := cmd.Run(); err == nil {
			t.Fatal("jose accepted a forged signature")
		}
	})
}
