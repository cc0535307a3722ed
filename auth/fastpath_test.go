package auth

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

// agree checks the fast path's one promise: whatever it accepts, the full
// path accepts with identical claims.
func agree(t testing.TB, v *Verifier, tok string) (fastAccepted bool) {
	fc, ok := v.fast(v.current(), tok)
	if !ok {
		return false
	}
	full, err := v.full(v.current(), tok)
	if err != nil {
		t.Fatalf("fast path accepted what the full path refuses (%v): %q", err, tok)
	}
	if !reflect.DeepEqual(fc, full) {
		t.Fatalf("fast and full paths disagree on %q:\nfast %+v\nfull %+v", tok, fc, full)
	}
	return true
}

func TestFastPathAgreesWithFullPath(t *testing.T) {
	v := newTestVerifier(t, nil)
	va := newTestVerifier(t, func(c *VerifierConfig) { c.Audience = testAudience; c.AllowNever = true })
	sign := func(claims string) string {
		return mintedHeader + "." + b64JSONRaw(claims) + "." + macB64(mintedHeader+"."+b64JSONRaw(claims))
	}
	base := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"sub":"my-app","iat":%d,"nbf":%d,"exp":%d,"jti":"j1","scope":"read write"%s}`,
			tokentest.Issuer, tokentest.T0.Unix(), tokentest.T0.Unix(), tokentest.T0.Add(time.Hour).Unix(), extra)
	}
	cases := []struct {
		name   string
		v      *Verifier
		claims string
		fast   bool // whether the fast path should take it
	}{
		{"minted shape", v, base(""), true},
		{"minted by the issuer", v, "", true},
		{"whitespace", v, " { \"iss\" : \"" + tokentest.Issuer + "\" , \"sub\":\"a\",\"jti\":\"b\",\"exp\": " + fmt.Sprint(tokentest.T0.Add(time.Hour).Unix()) + " } ", true},
		{"audience", va, base(`,"aud":"` + testAudience + `"`), true},
		{"audience array (full path)", va, base(`,"aud":["` + testAudience + `"]`), false},
		{"wrong audience", va, base(`,"aud":"other"`), false},
		{"no exp, never allowed", va, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","aud":%q}`, tokentest.Issuer, testAudience), true},
		{"no exp, never not allowed", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b"}`, tokentest.Issuer), false},
		{"float exp", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d.5}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"exponent exp", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":1.9e9}`, tokentest.Issuer), false},
		{"leading zero exp", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":0%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"negative nbf", v, base(`,"x":1`), false},
		{"escaped string", v, fmt.Sprintf(`{"iss":%q,"sub":"a\u0062","jti":"b","exp":%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"non-ASCII sub", v, fmt.Sprintf(`{"iss":%q,"sub":"é","jti":"b","exp":%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"duplicate sub", v, fmt.Sprintf(`{"iss":%q,"sub":"a","sub":"b","jti":"b","exp":%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"upper-case EXP", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","EXP":%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"trailing comma", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d,}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"trailing garbage", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d}x`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"expired beyond leeway", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d}`, tokentest.Issuer, tokentest.T0.Add(-time.Minute).Unix()), false},
		{"expired within leeway", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d}`, tokentest.Issuer, tokentest.T0.Add(-10*time.Second).Unix()), true},
		{"nbf in the future", v, base(`,"x":1`)[:0] + fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d,"nbf":%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix(), tokentest.T0.Add(time.Minute).Unix()), false},
		{"iat in the future within leeway", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d,"iat":%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix(), tokentest.T0.Add(20*time.Second).Unix()), true},
		{"empty sub", v, fmt.Sprintf(`{"iss":%q,"sub":"","jti":"b","exp":%d}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"wrong issuer", v, fmt.Sprintf(`{"iss":"x","sub":"a","jti":"b","exp":%d}`, tokentest.T0.Add(time.Hour).Unix()), false},
		{"scope array", v, base(`,"x":1`)[:0] + fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d,"scope":["a"]}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), false},
		{"empty scope string", v, fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d,"scope":""}`, tokentest.Issuer, tokentest.T0.Add(time.Hour).Unix()), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tok string
			if c.claims == "" {
				iss, err := NewIssuer(IssuerConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer, MaxLifetime: time.Hour, Now: fixedClock(tokentest.T0)}, &fakeRecorder{})
				if err != nil {
					t.Fatal(err)
				}
				admin := &Claims{Scope: Scopes{ScopeAdmin}}
				admin.Subject = "root"
				it, err := iss.Issue(t.Context(), IssueRequest{ClientID: "c", Expiry: Expiry{Duration: time.Hour}, Scopes: []string{"a", "b"}, Caller: admin})
				if err != nil {
					t.Fatal(err)
				}
				tok = it.Token
			} else {
				tok = sign(c.claims)
			}
			if got := agree(t, c.v, tok); got != c.fast {
				t.Fatalf("fast path taken = %v, want %v", got, c.fast)
			}
		})
	}
}

// FuzzFastPathAgrees mutates claims (signed with the test secret, so
// that mutations reach the claim checks) and holds the fast path to its
// promise. Run longer: go test ./auth -run '^$' -fuzz '^FuzzFastPathAgrees$' -fuzztime 10m
func FuzzFastPathAgrees(f *testing.F) {
	exp := tokentest.T0.Add(time.Hour).Unix()
	for _, s := range []string{
		fmt.Sprintf(`{"iss":%q,"sub":"my-app","iat":%d,"nbf":%d,"exp":%d,"jti":"j1","scope":"read write"}`, tokentest.Issuer, tokentest.T0.Unix(), tokentest.T0.Unix(), exp),
		fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":%d,"aud":"x"}`, tokentest.Issuer, exp),
		fmt.Sprintf(`{"iss":%q,"sub":"a","jti":"b","exp":-%d}`, tokentest.Issuer, exp),
		fmt.Sprintf(` {"sub":"a" ,"iss":%q,"jti":"b","exp":%d} `, tokentest.Issuer, exp),
		`{}`, `[]`, `{"iss":1}`,
	} {
		f.Add(s)
	}
	v := newTestVerifier(f, nil)
	f.Fuzz(func(t *testing.T, claims string) {
		p := b64JSONRaw(claims)
		for _, head := range [...]string{mintedHeader, v.current().fastHeader} { // without and with the kid
			agree(t, v, head+"."+p+"."+macB64(head+"."+p))
		}
	})
}

func b64JSONRaw(s string) string { return jwtB64([]byte(s)) }

func jwtB64(b []byte) string { return strictB64.EncodeToString(b) }

func macB64(input string) string {
	m := newMACPool(tokentest.Secret).p.Get().(interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	})
	m.Write([]byte(input))
	return strictB64.EncodeToString(m.Sum(nil))
}

var _ = jwt.TimePrecision
