// Native Go fuzz tests for the token verifier, the expiry syntax, the
// Authorization header parser and the scope claim decoder.
//
// The seeds (f.Add below and testdata/fuzz/<FuzzName>/) run as ordinary
// tests with `go test ./auth`. To fuzz one target for longer, run e.g.
//
//	go test ./auth -run '^$' -fuzz '^FuzzVerify$' -fuzztime 10m
//	go test ./auth -run '^$' -fuzz '^FuzzParseExpiry$' -fuzztime 10m
//	go test ./auth -run '^$' -fuzz '^FuzzBearerToken$' -fuzztime 10m
//	go test ./auth -run '^$' -fuzz '^FuzzScopesJSON$' -fuzztime 10m
//
// Seeds near the 8 KiB token limit make minimizing a new input slow (the
// exec count can sit still for a minute); add -fuzzminimizetime 2s to keep
// FuzzVerify and FuzzBearerToken busy fuzzing instead.
//
// The generated corpus is kept in $GOCACHE/fuzz, outside the repository. A
// failing input is written to testdata/fuzz/<FuzzName>/; commit it only
// together with the fix.

package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

// fuzzSign signs claims with method and key outside a *testing.T (the
// helpers in helpers_test.go need one).
func fuzzSign(f *testing.F, method jwt.SigningMethod, claims jwt.Claims, key any) string {
	f.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		f.Fatalf("sign seed token: %v", err)
	}
	return s
}

// fuzzSeg base64url-encodes a raw segment.
func fuzzSeg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// hs256Sig is the canonical HS256 signature segment of signingInput under
// tokentest.Secret.
func hs256Sig(signingInput string) string {
	mac := hmac.New(sha256.New, tokentest.Secret)
	mac.Write([]byte(signingInput))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func FuzzVerify(f *testing.F) {
	v, err := NewVerifier(VerifierConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer, Now: fixedClock(tokentest.T0)})
	if err != nil {
		f.Fatalf("NewVerifier: %v", err)
	}

	valid := fuzzSign(f, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.Secret)
	vp := strings.Split(valid, ".")
	payload := fuzzSeg(`{"iss":"` + tokentest.Issuer + `","sub":"admin","jti":"x","exp":4102444800,"scope":"admin"}`)
	hugeHeader := fuzzSeg(`{"alg":"HS256","typ":"JWT","pad":"` + strings.Repeat("A", MaxTokenLen) + `"}`)
	seeds := []string{
		valid,
		// alg none, unsigned and with an empty signature.
		fuzzSeg(`{"alg":"none","typ":"JWT"}`) + "." + vp[1] + ".",
		fuzzSeg(`{"alg":"none"}`) + "." + payload + ".",
		// Same secret, other HMAC algorithms.
		fuzzSign(f, jwt.SigningMethodHS512, tokentest.BaseClaims(), tokentest.Secret),
		fuzzSign(f, jwt.SigningMethodHS384, tokentest.BaseClaims(), tokentest.Secret),
		// Algorithm confusion: RS256 header over an HMAC signature.
		fuzzSeg(`{"alg":"RS256","typ":"JWT"}`) + "." + vp[1] + "." + hs256Sig(fuzzSeg(`{"alg":"RS256","typ":"JWT"}`)+"."+vp[1]),
		fuzzSeg(`{"alg":"hs256"}`) + "." + vp[1] + "." + hs256Sig(fuzzSeg(`{"alg":"hs256"}`)+"."+vp[1]),
		// Truncated: signature cut, parts missing.
		valid[:len(valid)-10],
		vp[0] + "." + vp[1],
		vp[0] + "." + vp[1] + ".",
		vp[0],
		// Tampered payload, original signature.
		vp[0] + "." + payload + "." + vp[2],
		// Foreign secret, wrong issuer, expired, not yet valid, no jti.
		fuzzSign(f, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.ForeignSecret),
		fuzzSign(f, jwt.SigningMethodHS256, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), tokentest.Secret),
		fuzzSign(f, jwt.SigningMethodHS256, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-time.Hour).Unix() }), tokentest.Secret),
		fuzzSign(f, jwt.SigningMethodHS256, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["nbf"] = tokentest.T0.Add(time.Hour).Unix() }), tokentest.Secret),
		fuzzSign(f, jwt.SigningMethodHS256, tokentest.ClaimsWith(func(c jwt.MapClaims) { delete(c, "jti") }), tokentest.Secret),
		fuzzSign(f, jwt.SigningMethodHS256, tokentest.ClaimsWith(func(c jwt.MapClaims) { delete(c, "exp") }), tokentest.Secret),
		// Padded segments, surrounding whitespace, extra parts.
		vp[0] + "=." + vp[1] + "." + vp[2],
		" " + valid + "\n",
		valid + ".",
		"..",
		// Garbage and empty.
		"not a jwt",
		"a.b.c",
		"e30.e30.",
		"bnVsbA.bnVsbA.",
		"",
		// Oversized header.
		hugeHeader + "." + vp[1] + "." + vp[2],
	}
	for _, s := range seeds {
		f.Add(s)
	}

	// Every message Verify and Inspect produce is fixed text. Collect
	// them so that an input which merely quotes that text (e.g. "Invalid
	// token: a JWT") is not mistaken for the token being echoed.
	var vocabulary strings.Builder
	for _, s := range seeds {
		if _, err := v.Verify(s); err != nil {
			vocabulary.WriteString(err.Error() + "\n" + Message(err) + "\n")
		}
		vocabulary.WriteString(v.Inspect(s).Reason + "\n")
	}
	fixedText := vocabulary.String()
	echoes := func(text, tok string) bool {
		return len(tok) > 16 && strings.Contains(text, tok) && !strings.Contains(fixedText, tok)
	}

	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := v.Verify(tok)
		in := v.Inspect(tok)

		if err != nil {
			if claims != nil {
				t.Errorf("Verify returned claims together with error %v", err)
			}
			if !errors.Is(err, ErrTokenMissing) && !errors.Is(err, ErrTokenInvalid) &&
				!errors.Is(err, ErrTokenExpired) && !errors.Is(err, ErrTokenNotYetValid) &&
				!errors.Is(err, ErrTokenRevoked) {
				t.Errorf("Verify error %q wraps none of the sentinel errors", err)
			}
			if echoes(err.Error(), tok) {
				t.Errorf("Verify error echoes the input: %q", err)
			}
		}
		if echoes(in.Reason, tok) || echoes(in.Reason, strings.TrimSpace(tok)) {
			t.Errorf("Inspect reason echoes the input: %q", in.Reason)
		}

		// Inspect and Verify agree on validity. Inspect trims surrounding
		// whitespace first (documented in inspect_test.go) and Verify does
		// not (verifier_test.go), so Inspect's verdict is Verify's on the
		// trimmed string; on an already trimmed input they must agree
		// exactly.
		trimmedOK := err == nil
		if trimmed := strings.TrimSpace(tok); trimmed != tok {
			_, terr := v.Verify(trimmed)
			trimmedOK = terr == nil
		}
		if in.Valid != trimmedOK {
			t.Fatalf("Inspect.Valid = %v but Verify(TrimSpace(tok)) error = %v (Inspect reason %q)", in.Valid, err, in.Reason)
		}
		if in.Valid && (!in.Decodable || !in.SignatureValid || in.Reason != "" || in.Verified == nil) {
			t.Errorf("Inspect says valid but: %+v", in)
		}
		if !in.Valid && in.Reason == "" {
			t.Errorf("Inspect says invalid without a reason")
		}

		if err != nil {
			return
		}

		// Accepted: the token must be exactly what this server would have
		// signed, so nothing unsigned, re-encoded or forged gets through.
		if claims == nil {
			t.Fatal("Verify returned neither claims nor an error")
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token with %d parts", len(parts))
		}
		hb, herr := base64.RawURLEncoding.DecodeString(parts[0])
		var header map[string]any
		if herr != nil || json.Unmarshal(hb, &header) != nil {
			t.Fatalf("accepted a token whose header does not decode")
		}
		if header["alg"] != "HS256" {
			t.Fatalf("accepted a token with header alg %#v", header["alg"])
		}
		if want := hs256Sig(parts[0] + "." + parts[1]); parts[2] != want {
			t.Fatalf("accepted signature segment %q; the HMAC-SHA256 of the signing input encodes as %q", parts[2], want)
		}
		if claims.Issuer != tokentest.Issuer || claims.Subject == "" || claims.ID == "" {
			t.Errorf("accepted claims iss=%q sub=%q jti=%q", claims.Issuer, claims.Subject, claims.ID)
		}
		if exp, ok := claims.Expires(); !ok || !exp.After(tokentest.T0.Add(-DefaultLeeway)) {
			t.Errorf("accepted a token without exp or expired at %v", exp)
		}
	})
}

func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{
		"30d", "24h", "15m", "30s", "1s", "never", "36500d", "36501d", "0d", "0s",
		"", "d", "-1d", "+1d", "1.5h", "1e3s", "1 d", " 1d", "1D", "Never", "NEVER",
		"007m", "9223372036854775807s", "9223372036854775808s", "3153600000s",
		"3153600001s", "876000h", "52560000m", "1w", "1y", "١d",
		strings.Repeat("9", 31) + "s", strings.Repeat("0", 31) + "1s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpiry(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidExpiry) {
				t.Fatalf("ParseExpiry(%q) error %v does not wrap ErrInvalidExpiry", s, err)
			}
			if e != (Expiry{}) {
				t.Fatalf("ParseExpiry(%q) returned %+v together with an error", s, e)
			}
			return
		}
		if e.Never {
			if s != "never" || e.Duration != 0 {
				t.Fatalf("ParseExpiry(%q) = %+v; only \"never\" means never", s, e)
			}
			if e.String() != "never" {
				t.Fatalf("never renders as %q", e.String())
			}
			return
		}
		if e.Duration < time.Second {
			t.Fatalf("ParseExpiry(%q) = %v, below 1s", s, e.Duration)
		}
		if e.Duration > 36500*24*time.Hour {
			t.Fatalf("ParseExpiry(%q) = %v, above 36500d", s, e.Duration)
		}
		if e.Duration%time.Second != 0 {
			t.Fatalf("ParseExpiry(%q) = %v, not a whole number of seconds", s, e.Duration)
		}
		back, err := ParseExpiry(e.String())
		if err != nil {
			t.Fatalf("ParseExpiry(%q) = %v renders as %q, which does not parse: %v", s, e.Duration, e.String(), err)
		}
		if back != e {
			t.Fatalf("ParseExpiry(%q) = %+v renders as %q, which parses to %+v", s, e, e.String(), back)
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	valid := fuzzSign(f, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.Secret)
	for _, s := range []string{
		"Bearer " + valid,
		"bearer " + valid,
		"BEARER " + valid,
		"  Bearer   " + valid + "  ",
		"Bearer\t" + valid,
		"Bearer",
		"Bearer ",
		"Bearer  \t ",
		"Basic dXNlcjpwYXNz",
		"Bearertoken",
		"Bearer a b",
		"Bearer " + strings.Repeat("a", MaxTokenLen),
		"Bearer " + strings.Repeat("a", MaxTokenLen+1),
		"Bearer \u00a0" + valid + "\u2028",
		"\u00a0Bearer x",
		"Token " + valid,
		"",
	} {
		f.Add(s)
	}
	// One request, reused: only its Authorization header changes.
	r := httptest.NewRequest("GET", "http://mcp.example.test/mcp", nil)
	f.Fuzz(func(t *testing.T, header string) {
		// Set directly rather than parsed from the wire, so any byte
		// string (CR, LF, NUL included) reaches BearerToken.
		r.Header.Set("Authorization", header)

		tok, err := BearerToken(r)
		if err != nil {
			if tok != "" {
				t.Fatalf("BearerToken(%q) returned token %q with error %v", header, tok, err)
			}
			if !errors.Is(err, ErrTokenMissing) && !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("BearerToken(%q) error %v wraps neither ErrTokenMissing nor ErrTokenInvalid", header, err)
			}
			return
		}
		// The scheme is matched after trimming the value (as HTTP strips
		// optional whitespace around a field value).
		h := strings.TrimSpace(header)
		if len(h) < len("bearer ") || !strings.EqualFold(h[:len("bearer")], "bearer") || h[len("bearer")] != ' ' {
			t.Fatalf("BearerToken(%q) accepted a header without the Bearer scheme", header)
		}
		if tok == "" {
			t.Fatalf("BearerToken(%q) returned an empty token without error", header)
		}
		if strings.TrimSpace(tok) != tok || strings.TrimFunc(tok, unicode.IsSpace) != tok {
			t.Fatalf("BearerToken(%q) = %q has surrounding whitespace", header, tok)
		}
		if len(tok) > MaxTokenLen {
			t.Fatalf("BearerToken(%q...) returned a %d-byte token", header[:32], len(tok))
		}
		if !strings.HasSuffix(h, tok) {
			t.Fatalf("BearerToken(%q) = %q, which is not the end of the header", header, tok)
		}
	})
}

func FuzzScopesJSON(f *testing.F) {
	for _, s := range []string{
		`"read write"`, `"  read   read write "`, `""`, `"admin"`, `["read","write"]`,
		`["read write","read"]`, `[]`, `[""," "]`, `null`, `[null]`, `"a\tb\u00a0c\u2028d"`,
		`"\ud800"`, `123`, `{"scope":"read"}`, `["read",1]`, `"unterminated`, `"a" "b"`,
		"\"\xff\xfe\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Scopes
		if err := s.UnmarshalJSON(data); err != nil {
			return
		}
		seen := make(map[string]bool, len(s))
		for _, sc := range s {
			if sc == "" {
				t.Fatalf("UnmarshalJSON(%q) = %q holds an empty scope", data, []string(s))
			}
			if strings.TrimSpace(sc) != sc || len(strings.Fields(sc)) != 1 {
				t.Fatalf("UnmarshalJSON(%q) = %q holds scope %q with whitespace", data, []string(s), sc)
			}
			if seen[sc] {
				t.Fatalf("UnmarshalJSON(%q) = %q holds %q twice", data, []string(s), sc)
			}
			seen[sc] = true
		}
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON(%q): %v", []string(s), err)
		}
		var back Scopes
		if err := back.UnmarshalJSON(b); err != nil {
			t.Fatalf("UnmarshalJSON(MarshalJSON(%q) = %s): %v", []string(s), b, err)
		}
		if !slices.Equal(s, back) {
			t.Fatalf("round trip: %q -> %s -> %q", []string(s), b, []string(back))
		}
	})
}
