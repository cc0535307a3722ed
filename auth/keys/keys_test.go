package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

var (
	genOnce sync.Once
	genKeys map[string]*Key
)

// generated is one fresh key per asymmetric algorithm (RSA generation is
// slow, so they are shared).
func generated(t *testing.T, alg string) *Key {
	t.Helper()
	genOnce.Do(func() {
		genKeys = map[string]*Key{}
		for _, a := range Asymmetric {
			k, err := Generate(a)
			if err != nil {
				panic(err)
			}
			genKeys[a] = k
		}
	})
	return genKeys[alg]
}

func TestGeneratedKeysSignAndVerifyWithTheirOwnAlgorithm(t *testing.T) {
	for _, alg := range Asymmetric {
		t.Run(alg, func(t *testing.T) {
			k := generated(t, alg)
			if k.Alg() != alg || k.Method().Alg() != alg || !k.CanSign() || k.Symmetric() {
				t.Fatalf("key %s: alg %s method %s canSign %v", alg, k.Alg(), k.Method().Alg(), k.CanSign())
			}
			tok, err := jwt.NewWithClaims(k.Method(), jwt.MapClaims{"sub": "a"}).SignedString(k.SigningKey())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return k.VerifyOnly().VerifyingKey(), nil },
				jwt.WithValidMethods([]string{alg})); err != nil {
				t.Fatalf("verify with the public key: %v", err)
			}
			if k.VerifyOnly().CanSign() || k.VerifyOnly().SigningKey() != nil {
				t.Fatal("VerifyOnly kept the private key")
			}
		})
	}
}

// Rule: an asymmetric kid is the RFC 7638 thumbprint (the RFC's own
// example), so every replica names a key alike.
func TestKidIsTheRFC7638Thumbprint(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	k, err := NewVerifying(RS256, pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; k.ID() != want {
		t.Fatalf("kid %q, want the RFC 7638 example's %q", k.ID(), want)
	}
}

func TestHMACKeyIDIsStableOneWayAndSeparated(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef-hmac")
	k, err := NewHMAC(secret)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != HMACKeyID(secret) || !strings.HasPrefix(k.ID(), "hs-") {
		t.Fatalf("kid %q", k.ID())
	}
	if HMACKeyID(secret) == HMACKeyID(append(secret, 'x')) {
		t.Fatal("different secrets, same kid")
	}
	if strings.Contains(k.ID(), base64.RawURLEncoding.EncodeToString(secret)[:16]) {
		t.Fatal("kid reveals the secret")
	}
	// Not a bare SHA-256 of the secret: the prefix separates it.
	h := crypto.SHA256.New()
	h.Write(secret)
	if strings.Contains(k.ID(), base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])) {
		t.Fatal("kid is a bare hash of the secret")
	}
	if k.Public() != nil {
		t.Fatal("an HMAC key has no public key")
	}
	if _, err := NewHMAC(secret[:31]); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("short secret: %v", err)
	}
}

func TestKeysOfTheWrongTypeAreRefused(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := []struct {
		name string
		alg  string
		priv crypto.Signer
		want error
		text string
	}{
		{"RSA key for ES256", ES256, generated(t, RS256).SigningKey().(crypto.Signer), ErrKeyMismatch, "ES256 needs an ECDSA P-256 key"},
		{"P-384 key for ES256", ES256, p384, ErrKeyMismatch, "P-384"},
		{"Ed25519 key for RS256", RS256, generated(t, EdDSA).SigningKey().(crypto.Signer), ErrKeyMismatch, "RS256 needs an RSA key"},
		{"P-256 key for EdDSA", EdDSA, generated(t, ES256).SigningKey().(crypto.Signer), ErrKeyMismatch, "EdDSA needs an Ed25519 key"},
		{"1024-bit RSA", RS256, small, ErrWeakKey, "1024-bit"},
		{"HS256 with a private key", HS256, generated(t, ES256).SigningKey().(crypto.Signer), ErrKeyMismatch, "HS256 needs an HMAC secret"},
		{"unknown alg", "ES384", generated(t, ES256).SigningKey().(crypto.Signer), ErrUnsupportedAlg, "ES384"},
		{"alg none", "none", generated(t, ES256).SigningKey().(crypto.Signer), ErrUnsupportedAlg, "none"},
		{"lower-case alg", "es256", generated(t, ES256).SigningKey().(crypto.Signer), ErrUnsupportedAlg, "es256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSigning(c.alg, c.priv)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("NewSigning(%s) = %v, want %v mentioning %q", c.alg, err, c.want, c.text)
			}
		})
	}
}

func TestPrivateKeysLoadFromEveryPEMForm(t *testing.T) {
	ec := generated(t, ES256).SigningKey().(*ecdsa.PrivateKey)
	rs := generated(t, RS256).SigningKey().(*rsa.PrivateKey)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rs)
	pkixEC, _ := x509.MarshalPKIXPublicKey(ec.Public())
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	mustPEM := func(k *Key) []byte {
		b, err := k.PEM()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ecParams := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
	cases := []struct {
		name string
		pem  []byte
		alg  string
		kid  string
		err  string
	}{
		{"PKCS#8 ES256", mustPEM(generated(t, ES256)), ES256, generated(t, ES256).ID(), ""},
		{"PKCS#8 EdDSA", mustPEM(generated(t, EdDSA)), EdDSA, generated(t, EdDSA).ID(), ""},
		{"PKCS#8 RS256", mustPEM(generated(t, RS256)), RS256, generated(t, RS256).ID(), ""},
		{"SEC1", block("EC PRIVATE KEY", sec1), ES256, generated(t, ES256).ID(), ""},
		{"SEC1 after EC PARAMETERS (openssl ecparam -genkey)", append(ecParams, block("EC PRIVATE KEY", sec1)...), ES256, generated(t, ES256).ID(), ""},
		{"PKCS#1", block("RSA PRIVATE KEY", pkcs1), RS256, generated(t, RS256).ID(), ""},
		{"public key where a private one is needed", block("PUBLIC KEY", pkixEC), ES256, "", `"PUBLIC KEY" PEM block is not a private key`},
		{"encrypted", block("ENCRYPTED PRIVATE KEY", []byte("x")), ES256, "", "encrypted"},
		{"two keys", append(mustPEM(generated(t, ES256)), mustPEM(generated(t, ES256))...), ES256, "", "more than one key"},
		{"not PEM", []byte("MCP_JWT_SECRET=abc"), ES256, "", "no PEM private key block"},
		{"garbage DER", block("PRIVATE KEY", []byte("garbage")), ES256, "", "PRIVATE KEY block"},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i))+".pem")
			if err := os.WriteFile(path, c.pem, 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadSigningFile(path, c.alg)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want one naming the file and %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.ID() != c.kid || k.Alg() != c.alg {
				t.Fatalf("loaded kid %s alg %s, want %s %s", k.ID(), k.Alg(), c.kid, c.alg)
			}
		})
	}
}

func TestVerifyingFilesTakePublicOrPrivateKeys(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range Asymmetric {
		k := generated(t, alg)
		der, _ := x509.MarshalPKIXPublicKey(k.Public())
		priv, _ := k.PEM()
		for name, data := range map[string][]byte{"public": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "private": priv} {
			path := filepath.Join(dir, alg+"-"+name+".pem")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			v, err := LoadVerifyingFile(path)
			if err != nil {
				t.Fatalf("%s %s: %v", alg, name, err)
			}
			if v.ID() != k.ID() || v.Alg() != alg || v.CanSign() {
				t.Fatalf("%s %s: kid %s alg %s canSign %v", alg, name, v.ID(), v.Alg(), v.CanSign())
			}
		}
	}
}

func TestWriteNewFileIsPrivateAndNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.pem")
	k := generated(t, EdDSA)
	if err := k.WriteNewFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, err %v", st.Mode(), err)
	}
	if err := generated(t, ES256).WriteNewFile(path); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second write: %v, want os.ErrExist", err)
	}
	back, err := LoadSigningFile(path, EdDSA)
	if err != nil || back.ID() != k.ID() {
		t.Fatalf("reload: %v, kid %v", err, back)
	}
	if _, err := mustHMAC(t).PEM(); err == nil {
		t.Fatal("an HMAC secret was written as a PEM key")
	}
}

func mustHMAC(t *testing.T) *Key {
	t.Helper()
	k, err := NewHMAC([]byte("0123456789abcdef0123456789abcdef-hmac"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Rule: the JWKS holds the public keys only: no HMAC secret, no private
// member of any key type.
func TestJWKSHoldsPublicKeysOnly(t *testing.T) {
	hm := mustHMAC(t)
	set, err := NewSet(generated(t, ES256), hm, generated(t, EdDSA).VerifyOnly(), generated(t, RS256))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := set.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{generated(t, ES256).ID(): "EC", generated(t, EdDSA).ID(): "OKP", generated(t, RS256).ID(): "RSA"}
	if len(doc.Keys) != len(want) {
		t.Fatalf("%d keys in %s", len(doc.Keys), raw)
	}
	for _, jwk := range doc.Keys {
		kid, _ := jwk["kid"].(string)
		if want[kid] == "" || jwk["kty"] != want[kid] || jwk["use"] != "sig" || jwk["alg"] != set.byID[kid].Alg() {
			t.Errorf("unexpected JWK %v", jwk)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := jwk[private]; ok {
				t.Errorf("JWK %s has private member %q", kid, private)
			}
		}
	}
	if strings.Contains(string(raw), hm.ID()) || strings.Contains(string(raw), `"oct"`) {
		t.Fatalf("JWKS names the HMAC key: %s", raw)
	}
	only, _ := NewSet(hm)
	if raw, _ := only.JWKS(); string(raw) != `{"keys":[]}` {
		t.Fatalf("HS256-only JWKS = %s", raw)
	}
}

func TestSetFindsKeysByKidOnly(t *testing.T) {
	hm := mustHMAC(t)
	prev, _ := NewHMAC([]byte("another-secret-0123456789abcdef-xyz"))
	set, err := NewSet(generated(t, ES256), hm, prev, generated(t, ES256).VerifyOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys()) != 3 || set.Active() != generated(t, ES256) {
		t.Fatalf("keys %d (the duplicate of the active key is kept once)", len(set.Keys()))
	}
	if s := set.Symmetric(); len(s) != 2 || s[0] != hm || s[1] != prev {
		t.Fatalf("symmetric keys %v", s)
	}
	for _, kid := range []string{"", "../../etc/passwd", "' OR 1=1 --", strings.Repeat("A", 10000), strings.ToUpper(hm.ID())} {
		if _, ok := set.Lookup(kid); ok {
			t.Errorf("Lookup(%.20q) found a key", kid)
		}
	}
	if k, ok := set.Lookup(prev.ID()); !ok || k != prev {
		t.Fatal("previous secret not found by its kid")
	}
	if _, err := NewSet(generated(t, ES256).VerifyOnly()); err == nil {
		t.Fatal("a verify-only key became the active key")
	}
}
