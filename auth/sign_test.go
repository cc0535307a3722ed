package auth

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
)

// Rule: the claims a minted token carries are encoded exactly as
// json.Marshal encodes them (golang-jwt's encoding, which the tokens had
// before), whatever the strings hold, and the encoder knows every field
// of Claims.
func TestClaimsJSONIsWhatEncodingJSONWrites(t *testing.T) {
	at := func(sec int64) *jwt.NumericDate { return jwt.NewNumericDate(time.Unix(sec, 0)) }
	full := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "mcpauth", Subject: "research-bot", Audience: jwt.ClaimStrings{"https://mcp.example.test"},
		ExpiresAt: at(1796136094), NotBefore: at(1796132494), IssuedAt: at(1796132494), ID: "147a82efb97c3c113b5e56d401af9fc5",
	}, Scope: Scopes{"tools:call", "admin"}}
	cases := []struct {
		name string
		edit func(c *Claims)
	}{
		{"every field", func(*Claims) {}},
		{"nothing", func(c *Claims) { *c = Claims{} }},
		{"a token that never expires", func(c *Claims) { c.ExpiresAt = nil }},
		{"no audience, no scopes", func(c *Claims) { c.Audience, c.Scope = nil, nil }},
		{"empty audience and scopes", func(c *Claims) { c.Audience, c.Scope = jwt.ClaimStrings{}, Scopes{} }},
		{"two audiences", func(c *Claims) { c.Audience = jwt.ClaimStrings{"a", "b"} }},
		{"an issuer with HTML characters and quotes", func(c *Claims) { c.Issuer = `<a href="x">&'</a>\` }},
		{"control characters", func(c *Claims) { c.Issuer = "a\tb\nc\x00d\x7f" }},
		{"non-ASCII, U+2028 and invalid UTF-8", func(c *Claims) { c.Issuer = "é\u2028\u2029\xff\xfe日本" }},
		{"an audience with HTML characters", func(c *Claims) { c.Audience = jwt.ClaimStrings{"https://x.test/?a=1&b=<2>"} }},
		{"times before 1970 and far ahead", func(c *Claims) { c.NotBefore, c.ExpiresAt = at(-5), at(1<<40) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := full
			tc.edit(&c)
			want, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendClaimsJSON(nil, &c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("claims JSON\n got %s\nwant %s", got, want)
			}
		})
	}
	// A field added to Claims or RegisteredClaims must be added to
	// appendClaimsJSON (and here).
	var names []string
	for _, typ := range []reflect.Type{reflect.TypeFor[Claims](), reflect.TypeFor[jwt.RegisteredClaims]()} {
		for i := range typ.NumField() {
			names = append(names, typ.Field(i).Name)
		}
	}
	if got, want := strings.Join(names, " "), "RegisteredClaims Scope Issuer Subject Audience ExpiresAt NotBefore IssuedAt ID"; got != want {
		t.Errorf("fields of Claims are %q, appendClaimsJSON writes %q", got, want)
	}
}

// Rule: a token the signer signs is the token golang-jwt's SignedString
// signs with the same header, for each algorithm (ECDSA signatures are
// randomized: there the header and claims are compared and the signature
// verified), and the header follows a change of key.
func TestSignerSignsWhatGolangJWTSigns(t *testing.T) {
	hs, err := keys.NewHMAC([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	hs2, err := keys.NewHMAC([]byte(strings.Repeat("j", 32)))
	if err != nil {
		t.Fatal(err)
	}
	ks := []*keys.Key{hs, hs2}
	for _, alg := range []string{keys.ES256, keys.EdDSA, keys.RS256} {
		k, err := keys.Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	claims := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "mcpauth", Subject: "research-bot", ExpiresAt: jwt.NewNumericDate(time.Unix(1796136094, 0)),
		NotBefore: jwt.NewNumericDate(time.Unix(1796132494, 0)), IssuedAt: jwt.NewNumericDate(time.Unix(1796132494, 0)), ID: "j1",
	}, Scope: Scopes{"tools:call"}}
	var s signer
	for round := range 2 { // the second round switches keys with the header cached
		for _, k := range ks {
			got, err := s.sign(k, &claims)
			if err != nil {
				t.Fatal(err)
			}
			ref := jwt.NewWithClaims(k.Method(), claims)
			ref.Header["kid"] = k.ID()
			want, err := ref.SignedString(k.SigningKey())
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg() != keys.ES256 { // deterministic signatures
				if got != want {
					t.Errorf("round %d %s: token\n got %s\nwant %s", round, k.Alg(), got, want)
				}
				continue
			}
			gi, wi := strings.LastIndexByte(got, '.'), strings.LastIndexByte(want, '.')
			if got[:gi] != want[:wi] {
				t.Errorf("round %d %s: signing input\n got %s\nwant %s", round, k.Alg(), got[:gi], want[:wi])
			}
			if _, err := jwt.Parse(got, func(*jwt.Token) (any, error) { return k.VerifyingKey(), nil }, jwt.WithValidMethods([]string{k.Alg()}), jwt.WithoutClaimsValidation()); err != nil {
				t.Errorf("round %d %s: signature does not verify: %v", round, k.Alg(), err)
			}
		}
	}
}
