package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Rule: client-supplied strings in audit records (client ids, tool names,
// claimed ids, reasons) never carry anything shaped like a token; the
// audit helper replaces it with a marker, whoever the caller is.
func TestAuditRecordsNeverCarryTokenShapedValues(t *testing.T) {
	jwtTok := tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.Secret)
	header, _, _ := strings.Cut(jwtTok, ".")
	generic := strings.Repeat("Ab9_", 6) + "." + strings.Repeat("Zq-3", 6) + "." + strings.Repeat("x7Yw", 11)
	clipped := strings.TrimSuffix(untrusted.Clip(jwtTok, 64), "…")
	cases := []struct {
		name, value string
		token       string // the token-shaped part that must not survive; "" when nothing is redacted
	}{
		{"a JWT as a client id", jwtTok, jwtTok},
		{"a JWT inside a tool name", "tool:" + jwtTok + ":x", jwtTok},
		{"a JWT clipped to 64 characters", untrusted.Clip(jwtTok, 64), clipped},
		{"a JWT after Bearer", "Bearer " + jwtTok, jwtTok},
		{"a JWE-like five-part value", jwtTok + ".AAAAAAAA.BBBBBBBB", jwtTok},
		{"long base64url.base64url.base64url without eyJ", generic, generic},
		{"63 characters in three parts without eyJ", strings.Repeat("Ab9_", 5) + "." + strings.Repeat("Zq-3", 5) + "." + strings.Repeat("x7Yw", 5) + "a", ""},
		{"64 characters in three parts without eyJ", strings.Repeat("Ab9_", 5) + "." + strings.Repeat("Zq-3", 5) + "." + strings.Repeat("x7Yw", 5) + "ab",
			strings.Repeat("Ab9_", 5) + "." + strings.Repeat("Zq-3", 5) + "." + strings.Repeat("x7Yw", 5) + "ab"},
		{"a short JOSE header and payload", "eyJhbGciOi.e30", "eyJhbGciOi.e30"},
		{"an IPv4 address and port", "127.0.0.1:52814", ""},
		{"a JWT header alone", header, ""},
		{"an ordinary client id", "claude-ai", ""},
		{"a dotted client id", "my.app.v2", ""},
		{"a host name", "mcp.example.com", ""},
		{"a jti", tokentest.JTI, ""},
		{"a reason sentence", "Invalid token: signature does not match.", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			Audit(WithRemoteAddr(context.Background(), "192.0.2.1"), logger, EventAuthFailed,
				"client_id", tc.value, slog.String("tool", tc.value), "reason", errors.New(tc.value))
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("audit record is not JSON: %v: %s", err, buf.Bytes())
			}
			for _, key := range []string{"client_id", "tool", "reason"} {
				got, _ := rec[key].(string)
				if tc.token == "" {
					if got != tc.value {
						t.Errorf("%s = %q, want it unchanged", key, got)
					}
					continue
				}
				if !strings.Contains(got, RedactedJWT) {
					t.Errorf("%s = %q, want the %s marker", key, got, RedactedJWT)
				}
				for i := 0; i+16 <= len(tc.token); i++ {
					if w := tc.token[i : i+16]; strings.Contains(got, w) {
						t.Errorf("%s still carries %q of the token", key, w)
						break
					}
				}
			}
			if rec["event"] != EventAuthFailed || rec["remote"] != "192.0.2.1" {
				t.Errorf("event/remote changed: %v", rec)
			}
		})
	}
}
