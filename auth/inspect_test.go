package auth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

func TestInspectDecodableTokens(t *testing.T) {
	tests := []struct {
		name         string
		cfg          func(*VerifierConfig)
		token        func(t *testing.T) string
		valid        bool
		sigValid     bool
		expired      bool
		timeLeft     string
		reasonHas    string // substring of Reason; "" means Reason must be empty
		wantExpireAt *time.Time
	}{
		{
			name:     "valid token is valid with signature and time left",
			token:    func(t *testing.T) string { return tokentest.HS256(t, tokentest.BaseClaims()) },
			valid:    true,
			sigValid: true,
			timeLeft: "1h0m0s",
		},
		{
			name:     "surrounding whitespace is trimmed before inspection",
			token:    func(t *testing.T) string { return "  " + tokentest.HS256(t, tokentest.BaseClaims()) + "\n" },
			valid:    true,
			sigValid: true,
			timeLeft: "1h0m0s",
		},
		{
			name: "time left above an hour is rounded to the minute",
			token: func(t *testing.T) string {
				return tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) {
					c["exp"] = tokentest.T0.Add(49*time.Hour + 10*time.Minute + 17*time.Second).Unix()
				}))
			},
			valid:    true,
			sigValid: true,
			timeLeft: "49h10m0s",
		},
		{
			name: "token from a foreign secret is decodable but its signature is not valid",
			token: func(t *testing.T) string {
				return tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.ForeignSecret)
			},
			timeLeft:  "1h0m0s",
			reasonHas: "Invalid token",
		},
		{
			name: "expired token is reported expired with a valid signature",
			token: func(t *testing.T) string {
				return tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-2 * time.Hour).Unix() }))
			},
			sigValid:  true,
			expired:   true,
			timeLeft:  "expired 2h0m0s ago",
			reasonHas: "Token has expired",
		},
		{
			name: "alg none token is decodable but has no valid signature",
			token: func(t *testing.T) string {
				return tokentest.Sign(t, jwt.SigningMethodNone, tokentest.BaseClaims(), jwt.UnsafeAllowNoneSignatureType)
			},
			timeLeft:  "1h0m0s",
			reasonHas: "Invalid token",
		},
		{
			name: "HS512 token with the right secret has no valid signature under the pinned algorithm",
			token: func(t *testing.T) string {
				return tokentest.Sign(t, jwt.SigningMethodHS512, tokentest.BaseClaims(), tokentest.Secret)
			},
			timeLeft:  "1h0m0s",
			reasonHas: "Invalid token",
		},
		{
			name: "token without exp has time left never when allowed",
			cfg:  func(c *VerifierConfig) { c.AllowNever = true },
			token: func(t *testing.T) string {
				return tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { delete(c, "exp") }))
			},
			valid:    true,
			sigValid: true,
			timeLeft: "never",
		},
		{
			name: "token without exp is refused with a reason when never is not allowed",
			token: func(t *testing.T) string {
				return tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { delete(c, "exp") }))
			},
			sigValid:  true,
			timeLeft:  "never",
			reasonHas: "Invalid token",
		},
		{
			name: "wrong issuer is explained",
			token: func(t *testing.T) string {
				return tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["iss"] = "other" }))
			},
			sigValid:  true,
			timeLeft:  "1h0m0s",
			reasonHas: "wrong issuer",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, tc.cfg)
			tok := tc.token(t)
			in := v.Inspect(tok)
			if !in.Decodable {
				t.Fatalf("Decodable = false (reason %q)", in.Reason)
			}
			if in.Valid != tc.valid || in.SignatureValid != tc.sigValid || in.Expired != tc.expired {
				t.Fatalf("Valid/SignatureValid/Expired = %v/%v/%v, want %v/%v/%v (reason %q)",
					in.Valid, in.SignatureValid, in.Expired, tc.valid, tc.sigValid, tc.expired, in.Reason)
			}
			if in.TimeLeft != tc.timeLeft {
				t.Errorf("TimeLeft = %q, want %q", in.TimeLeft, tc.timeLeft)
			}
			if tc.reasonHas == "" && in.Reason != "" {
				t.Errorf("Reason = %q, want empty", in.Reason)
			}
			if tc.reasonHas != "" && !strings.Contains(in.Reason, tc.reasonHas) {
				t.Errorf("Reason = %q, want it to contain %q", in.Reason, tc.reasonHas)
			}
			if in.Valid != (in.Verified != nil) {
				t.Errorf("Verified = %v with Valid = %v", in.Verified, in.Valid)
			}
			if in.Valid && in.Verified.ClientID() != "my-app" {
				t.Errorf("Verified.ClientID() = %q", in.Verified.ClientID())
			}
			if in.Header["alg"] == nil || in.Claims["sub"] != "my-app" {
				t.Errorf("Header/Claims not decoded: %v / %v", in.Header, in.Claims)
			}
			if exp, ok := in.Claims["exp"].(float64); ok {
				if in.ExpiresAt == nil || in.ExpiresAt.Unix() != int64(exp) || in.ExpiresAt.Location() != time.UTC {
					t.Errorf("ExpiresAt = %v, want UTC %v", in.ExpiresAt, int64(exp))
				}
			} else if in.ExpiresAt != nil {
				t.Errorf("ExpiresAt = %v for a token without exp", in.ExpiresAt)
			}
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatalf("marshal inspection: %v", err)
			}
			tokentest.AssertNoLeak(t, "Inspection JSON", string(b), strings.TrimSpace(tok))
		})
	}
}

func TestInspectWithinLeewayAgreesWithVerify(t *testing.T) {
	// A token 10s past exp is still accepted (30s leeway). Inspect must
	// report it Valid like Verify does. Note: Expired is computed without
	// leeway, so it reads true here — see the report.
	v := newTestVerifier(t, nil)
	tok := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-10 * time.Second).Unix() }))
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify = %v, want success within leeway", err)
	}
	in := v.Inspect(tok)
	if !in.Valid || in.Reason != "" {
		t.Fatalf("Inspect Valid = %v, Reason %q; want valid like Verify", in.Valid, in.Reason)
	}
}

func TestInspectGarbageNeverPanicsAndIsNotDecodable(t *testing.T) {
	validHdr := "eyJhbGciOiJIUzI1NiJ9" // {"alg":"HS256"}
	tests := []struct {
		name  string
		token string
	}{
		{"empty string is not decodable", ""},
		{"whitespace only is not decodable", " \t\n"},
		{"single word is not decodable", "abc"},
		{"a.b.c is not decodable", "a.b.c"},
		{"punctuation segments are not decodable", "!!!.!!!.!!!"},
		{"only dots are not decodable", ".."},
		{"four segments are not decodable", "a.b.c.d"},
		{"huge string is not decodable", strings.Repeat("A", 1<<20)},
		{"huge dotted string is not decodable", strings.Repeat("a.", 1<<16)},
		{"JSON null header is not decodable", b64JSON(t, nil) + "." + b64JSON(t, map[string]any{}) + ".sig"},
		{"JSON array header is not decodable", b64JSON(t, []int{1}) + "." + b64JSON(t, map[string]any{}) + ".sig"},
		{"string payload is not decodable", validHdr + "." + b64JSON(t, "hello") + ".sig"},
		{"non-JSON payload is not decodable", validHdr + ".bm90IGpzb24.sig"},
		{"invalid UTF-8 is not decodable", "\xff\xfe.\xff.\xff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, nil)
			in := v.Inspect(tc.token)
			if in.Decodable || in.Valid || in.SignatureValid || in.Verified != nil {
				t.Fatalf("Inspect = %+v, want not decodable/valid", in)
			}
			if in.Reason == "" {
				t.Fatalf("Reason empty for undecodable input")
			}
			if len(tc.token) > 16 && strings.Contains(in.Reason, tc.token) {
				t.Fatalf("Reason echoes the input")
			}
		})
	}
}

func TestInspectOddClaimValuesNeverPanic(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		exp     any
		expired *bool // nil: platform-dependent, only "no panic" is asserted
		valid   bool  // checked only when expired is not nil
	}{
		{"exp far in the future is not expired and valid", float64(1 << 40), &no, true},
		{"exp of zero is expired", 0, &yes, false},
		{"negative exp is expired", -1e18, &yes, false},
		// float64 -> int64 conversion of out-of-range values is
		// implementation-defined in Go, so only absence of a panic and
		// of a bogus Valid=true on such input is asserted.
		{"exp of 1e300 does not panic", 1e300, nil, false},
		{"exp of -1e300 does not panic", -1e300, nil, false},
		{"exp as a string is ignored and refused", "tomorrow", &no, false},
		{"exp as an object is ignored and refused", map[string]int{"a": 1}, &no, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, nil)
			tok := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["exp"] = tc.exp }))
			in := v.Inspect(tok)
			if !in.Decodable {
				t.Fatalf("Decodable = false: %q", in.Reason)
			}
			if tc.expired != nil && in.Expired != *tc.expired {
				t.Fatalf("Expired = %v, want %v (TimeLeft %q)", in.Expired, *tc.expired, in.TimeLeft)
			}
			if tc.expired != nil && in.Valid != tc.valid {
				t.Fatalf("Valid = %v, want %v (reason %q)", in.Valid, tc.valid, in.Reason)
			}
		})
	}
}
