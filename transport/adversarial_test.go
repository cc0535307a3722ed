package transport_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/transport"
)

// The adversarial table: every row is an attack on a running server (real
// listener, real middleware, real registry) and states the status and
// message it must get. After every row the registry must hold exactly the
// tokens it held before: a refusal never mints anything.

var b64 = base64.RawURLEncoding

func seg(v any) string {
	if s, ok := v.(string); ok {
		return b64.EncodeToString([]byte(s))
	}
	b, _ := json.Marshal(v)
	return b64.EncodeToString(b)
}

// forge builds a token from any header and claims (maps, or raw JSON
// strings), signed with key under the HMAC of alg (HS256/384/512); alg
// "none" or an empty key leaves the signature empty.
func forge(header, claims any, alg string, key string) string {
	input := seg(header) + "." + seg(claims)
	var h func() hash.Hash
	switch alg {
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	case "HS256":
		h = sha256.New
	}
	if h == nil || key == "" {
		return input + "."
	}
	mac := hmac.New(h, []byte(key))
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

func hdr(alg string, extra ...any) map[string]any {
	m := map[string]any{"alg": alg, "typ": "JWT"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

var jtiSeq int

// claims returns valid claims for the test stack with edits applied
// (a nil value deletes the claim).
func claims(edits ...any) map[string]any {
	jtiSeq++
	now := time.Now().Unix()
	m := map[string]any{
		"iss": "mcpauth-test", "sub": "attacker", "iat": now, "nbf": now,
		"exp": now + 3600, "jti": fmt.Sprintf("forged-%d", jtiSeq), "scope": "tools:call",
	}
	for i := 0; i+1 < len(edits); i += 2 {
		if edits[i+1] == nil {
			delete(m, edits[i].(string))
		} else {
			m[edits[i].(string)] = edits[i+1]
		}
	}
	return m
}

const otherSecret = "attacker-controlled-secret-0123456789abcdef"

// attack is one row: a request and what it must get.
type attack struct {
	name   string
	req    func(t *testing.T, s *stack) *http.Request
	status int
	// want must appear in the WWW-Authenticate header or the body.
	want string
}

func bearerReq(token string) func(t *testing.T, s *stack) *http.Request {
	return func(t *testing.T, s *stack) *http.Request {
		r, _ := http.NewRequest("POST", s.URL+"/mcp", strings.NewReader(initBody))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		return r
	}
}

func headerReq(values ...string) func(t *testing.T, s *stack) *http.Request {
	return func(t *testing.T, s *stack) *http.Request {
		r, _ := http.NewRequest("POST", s.URL+"/mcp", strings.NewReader(initBody))
		for _, v := range values {
			r.Header.Add("Authorization", v)
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		return r
	}
}

// withValid builds a request around a valid token minted by the stack.
func withValid(clientID string, scopes []string, build func(t *testing.T, s *stack, tok string) *http.Request) func(t *testing.T, s *stack) *http.Request {
	return func(t *testing.T, s *stack) *http.Request {
		return build(t, s, s.mint(t, clientID, time.Hour, scopes...))
	}
}

// withValidHeader is a valid Bearer request (withValid) with one header
// set, "Host" setting the request's host.
func withValidHeader(clientID string, scopes []string, key, value string) func(t *testing.T, s *stack) *http.Request {
	return withValid(clientID, scopes, func(t *testing.T, s *stack, tok string) *http.Request {
		r := bearerReq(tok)(t, s)
		if key == "Host" {
			r.Host = value
		} else {
			r.Header.Set(key, value)
		}
		return r
	})
}

// rpcReq is an authenticated stateless (2026-07-28 style is not needed:
// mcp-go accepts a sessionless 2025-11-25 call) JSON-RPC POST.
func rpcReq(tok, body string, extra map[string]string) func(t *testing.T, s *stack) *http.Request {
	return func(t *testing.T, s *stack) *http.Request {
		r, _ := http.NewRequest("POST", s.URL+"/mcp", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range extra {
			r.Header.Set(k, v)
		}
		return r
	}
}

// toolCall posts a tools/call inside a fresh legacy session of the token.
func toolCall(clientID string, scopes []string, name, args string) func(t *testing.T, s *stack) *http.Request {
	return func(t *testing.T, s *stack) *http.Request {
		tok := s.mint(t, clientID, time.Hour, scopes...)
		init := do(t, "POST", s.URL+"/mcp", tok, initBody, nil)
		sid := init.Header.Get("Mcp-Session-Id")
		body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`
		return rpcReq(tok, body, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"})(t, s)
	}
}

func TestAdversarialTable(t *testing.T) {
	s := startStack(t, stackOpts{cors: []string{"https://app.example.com"}, knownScopes: []string{"tools:call"}})
	now := time.Now().Unix()
	admin := []string{"admin"}
	user := []string{"tools:call"}
	hugeHeader := hdr("HS256", "pad", strings.Repeat("A", 9000))

	revokedTok := s.mint(t, "revoked-client", time.Hour)
	revokedJTI := jtiOf(t, s, revokedTok)
	if _, _, err := s.Revoker.RevokeJTI(context.Background(), revokedJTI, "test", "table"); err != nil {
		t.Fatal(err)
	}

	rows := []attack{
		// Token format.
		{"empty bearer token", headerReq("Bearer "), 401, "Authentication required"},
		{"one segment", bearerReq("abcdef"), 401, "three dot-separated parts"},
		{"two segments", bearerReq("abc.def"), 401, "three dot-separated parts"},
		{"four segments", bearerReq("a.b.c.d"), 401, "three dot-separated parts"},
		{"bad base64", bearerReq("!!!.@@@.###"), 401, "Invalid token"},
		{"header is not JSON", bearerReq(b64.EncodeToString([]byte("not json")) + "." + seg(claims()) + ".sig"), 401, "Invalid token"},
		{"payload is not JSON", bearerReq(forge(hdr("HS256"), "not json", "HS256", testSecret)), 401, "Invalid token"},
		{"header is a JSON array", bearerReq(forge(`["HS256"]`, claims(), "HS256", testSecret)), 401, "Invalid token"},
		{"payload is a JSON array", bearerReq(forge(hdr("HS256"), `["attacker"]`, "HS256", testSecret)), 401, "Invalid token"},
		{"header over 8 KiB", bearerReq(forge(hugeHeader, claims(), "HS256", testSecret)), 401, "larger than 8 KiB"},
		{"alg none", bearerReq(forge(hdr("none"), claims(), "none", "")), 401, "Invalid token"},
		{"alg None", bearerReq(forge(hdr("None"), claims(), "none", "")), 401, "Invalid token"},
		{"alg NONE", bearerReq(forge(hdr("NONE"), claims(), "none", "")), 401, "Invalid token"},
		{"alg none with a real HS256 signature", bearerReq(forge(hdr("none"), claims(), "HS256", testSecret)), 401, "Invalid token"},
		{"HS384 with the server secret", bearerReq(forge(hdr("HS384"), claims(), "HS384", testSecret)), 401, "Invalid token"},
		{"HS512 with the server secret", bearerReq(forge(hdr("HS512"), claims(), "HS512", testSecret)), 401, "Invalid token"},
		{"RS256 header, HMAC with the secret", bearerReq(forge(hdr("RS256"), claims(), "HS256", testSecret)), 401, "Invalid token"},
		{"kid pointing at an attacker key", bearerReq(forge(hdr("HS256", "kid", "attacker"), claims(), "HS256", otherSecret)), 401, "unknown signing key"},
		{"kid of the server's secret, signed with another", bearerReq(forge(hdr("HS256", "kid", keys.HMACKeyID([]byte(testSecret))), claims(), "HS256", otherSecret)), 401, "signature does not match"},
		{"kid of the server's secret on an RS256 header", bearerReq(forge(hdr("RS256", "kid", keys.HMACKeyID([]byte(testSecret))), claims(), "HS256", testSecret)), 401, "Invalid token"},
		{"kid path traversal", bearerReq(forge(hdr("HS256", "kid", "../../../../etc/passwd"), claims(), "HS256", otherSecret)), 401, "unknown signing key"},
		{"kid SQL injection", bearerReq(forge(hdr("HS256", "kid", "' OR '1'='1"), claims(), "HS256", otherSecret)), 401, "unknown signing key"},
		{"jku pointing elsewhere", bearerReq(forge(hdr("HS256", "jku", "https://evil.example/jwks.json"), claims(), "HS256", otherSecret)), 401, "jku, which is never followed"},
		{"x5u pointing elsewhere", bearerReq(forge(hdr("HS256", "x5u", "https://evil.example/cert.pem"), claims(), "HS256", otherSecret)), 401, "x5u, which is never followed"},
		{"embedded jwk", bearerReq(forge(hdr("HS256", "jwk", map[string]any{"kty": "oct", "k": b64.EncodeToString([]byte(otherSecret))}), claims(), "HS256", otherSecret)), 401, "jwk, which is never followed"},
		{"embedded x5c", bearerReq(forge(hdr("HS256", "x5c", []string{"MIIBattacker"}), claims(), "HS256", otherSecret)), 401, "x5c, which is never followed"},
		{"crit header", bearerReq(forge(hdr("HS256", "crit", []string{"exp"}), claims(), "HS256", testSecret)), 401, "critical header"},
		{"duplicate sub in payload", bearerReq(forge(hdr("HS256"), fmt.Sprintf(`{"iss":"mcpauth-test","sub":"attacker","sub":"admin","iat":%d,"exp":%d,"jti":"dup-1"}`, now, now+3600), "HS256", testSecret)), 401, "duplicate JSON member"},
		{"duplicate alg in header", bearerReq(forge(`{"alg":"HS256","alg":"none","typ":"JWT"}`, claims(), "HS256", testSecret)), 401, "Invalid token"},
		{"missing sub", bearerReq(forge(hdr("HS256"), claims("sub", nil), "HS256", testSecret)), 401, "missing sub"},
		{"numeric sub", bearerReq(forge(hdr("HS256"), claims("sub", 42), "HS256", testSecret)), 401, "Invalid token"},
		{"missing jti", bearerReq(forge(hdr("HS256"), claims("jti", nil), "HS256", testSecret)), 401, "missing jti"},
		{"non-numeric exp", bearerReq(forge(hdr("HS256"), claims("exp", "tomorrow"), "HS256", testSecret)), 401, "Invalid token"},
		{"exp as a numeric string", bearerReq(forge(hdr("HS256"), claims("exp", fmt.Sprint(now+3600)), "HS256", testSecret)), 401, "Invalid token"},
		{"exp as an object", bearerReq(forge(hdr("HS256"), claims("exp", map[string]any{"t": 1}), "HS256", testSecret)), 401, "Invalid token"},
		{"missing exp (never not allowed)", bearerReq(forge(hdr("HS256"), claims("exp", nil), "HS256", testSecret)), 401, "missing required claim"},
		{"exp 0", bearerReq(forge(hdr("HS256"), claims("exp", 0), "HS256", testSecret)), 401, "Token has expired"},
		{"nbf beyond the leeway", bearerReq(forge(hdr("HS256"), claims("nbf", now+120), "HS256", testSecret)), 401, "not valid yet"},
		{"iat beyond the leeway", bearerReq(forge(hdr("HS256"), claims("iat", now+120), "HS256", testSecret)), 401, "not valid yet"},
		{"expired 40s ago (beyond the 30s leeway)", bearerReq(forge(hdr("HS256"), claims("exp", now-40, "iat", now-100, "nbf", now-100), "HS256", testSecret)), 401, "Token has expired"},
		{"expired 20s ago (within the leeway) is accepted", bearerReq(forge(hdr("HS256"), claims("exp", now-20, "iat", now-100, "nbf", now-100), "HS256", testSecret)), 200, `"protocolVersion"`},
		{"exp as a float in the future is accepted (NumericDate)", bearerReq(forge(hdr("HS256"), claims("exp", float64(now)+3600.5), "HS256", testSecret)), 200, `"protocolVersion"`},
		{"wrong issuer", bearerReq(forge(hdr("HS256"), claims("iss", "https://evil.example"), "HS256", testSecret)), 401, "wrong issuer"},
		{"missing issuer", bearerReq(forge(hdr("HS256"), claims("iss", nil), "HS256", testSecret)), 401, "Invalid token"},
		{"wrong secret", bearerReq(forge(hdr("HS256"), claims(), "HS256", otherSecret)), 401, "signature does not match"},
		{"tampered payload", bearerReq(func() string {
			tok := forge(hdr("HS256"), claims(), "HS256", testSecret)
			p := strings.Split(tok, ".")
			return p[0] + "." + seg(claims("scope", "admin")) + "." + p[2]
		}()), 401, "signature does not match"},
		{"signature with non-canonical trailing bits", withValid("canon", user, func(t *testing.T, s *stack, tok string) *http.Request {
			// A 32-byte MAC leaves the last base64 character's two low
			// bits unused: flipping one decodes to the same MAC.
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			i := strings.IndexByte(alphabet, tok[len(tok)-1])
			return bearerReq(tok[:len(tok)-1]+string(alphabet[i^1]))(t, s)
		}), 401, "Invalid token"},
		{"claim name in upper case (EXP)", bearerReq(forge(hdr("HS256"), claims("exp", nil, "EXP", now+3600), "HS256", testSecret)), 401, "lower case"},
		{"exp and EXP both present", bearerReq(forge(hdr("HS256"), claims("EXP", now+999999), "HS256", testSecret)), 401, "Invalid token"},
		{"signature stripped", bearerReq(strings.Join(strings.Split(forge(hdr("HS256"), claims(), "HS256", testSecret), ".")[:2], ".") + "."), 401, "Invalid token"},
		{"scope as a JSON array is accepted", bearerReq(forge(hdr("HS256"), claims("scope", []string{"tools:call"}), "HS256", testSecret)), 200, `"protocolVersion"`},
		{"scope as a number", bearerReq(forge(hdr("HS256"), claims("scope", 7), "HS256", testSecret)), 401, "Invalid token"},
		{"scope as an object", bearerReq(forge(hdr("HS256"), claims("scope", map[string]any{"admin": true}), "HS256", testSecret)), 401, "Invalid token"},
		{"revoked jti", bearerReq(revokedTok), 401, "Token has been revoked"},
		{"revoked jti reused with different claims", bearerReq(forge(hdr("HS256"), claims("jti", revokedJTI, "sub", "someone-else", "scope", "admin"), "HS256", testSecret)), 401, "Token has been revoked"},

		// Header handling.
		{"no Authorization header", headerReq(), 401, "Authentication required"},
		{"Basic scheme", headerReq("Basic YWRtaW46YWRtaW4="), 401, "use the Bearer scheme"},
		{"bearer in lower case is accepted", withValid("lower", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return headerReq("bearer "+tok)(t, s)
		}), 200, `"protocolVersion"`},
		{"extra spaces are accepted", withValid("spaces", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return headerReq("  Bearer    "+tok+"   ")(t, s)
		}), 200, `"protocolVersion"`},
		{"two Authorization headers", withValid("twice", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return headerReq("Bearer "+tok, "Bearer "+tok)(t, s)
		}), 401, "more than one Authorization header"},
		{"token in the query string", withValid("query", user, func(t *testing.T, s *stack, tok string) *http.Request {
			r := bearerReq(tok)(t, s)
			r.Header.Del("Authorization")
			r.URL.RawQuery = "access_token=" + tok
			return r
		}), 401, "query string"},
		{"token in the query string with a percent-encoded name", withValid("query3", user, func(t *testing.T, s *stack, tok string) *http.Request {
			r := bearerReq(tok)(t, s)
			r.URL.RawQuery = "access%5Ftoken=" + tok
			return r
		}), 401, "query string"},
		{"token in the query string beside a valid header", withValid("query2", user, func(t *testing.T, s *stack, tok string) *http.Request {
			r := bearerReq(tok)(t, s)
			r.URL.RawQuery = "access_token=" + tok
			return r
		}), 401, "query string"},
		{"Authorization header of 100 KB", headerReq("Bearer " + strings.Repeat("a", 100<<10)), 431, ""},

		// Scope escalation over HTTP.
		{"non-admin calls issue_token", toolCall("plain", user, "issue_token", `{"client_id":"escalated"}`), 403, "insufficient_scope"},
		{"non-admin calls revoke_token", toolCall("plain", user, "revoke_token", `{"client_id":"plain"}`), 403, "insufficient_scope"},
		{"non-admin calls decode_token", toolCall("plain", user, "decode_token", `{"token":"x"}`), 403, "insufficient_scope"},
		{"non-admin calls list_clients", toolCall("plain", user, "list_clients", `{}`), 403, "insufficient_scope"},
		{"non-admin calls list_tokens", toolCall("plain", user, "list_tokens", `{}`), 403, "insufficient_scope"},
		{"admin mints a scope outside the configured set", toolCall("root", admin, "issue_token", `{"client_id":"x","scopes":["billing:write"]}`), 200, "not one of the configured scopes"},
		{"admin mints beyond the maximum lifetime", toolCall("root", admin, "issue_token", `{"client_id":"x","expires_in":"400d"}`), 200, "exceeds the configured maximum"},
		{"admin mints a never-expiring token", toolCall("root", admin, "issue_token", `{"client_id":"x","expires_in":"never"}`), 200, "never expire are not allowed"},

		// JSON-RPC case tricks.
		{"Method spelled with a capital", withValid("plain", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`, nil)(t, s)
		}), 400, `member \"Method\" must be spelled`},
		{"Params spelled with a capital", withValid("root", admin, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"issue_token","arguments":{"client_id":"x"}}}`, nil)(t, s)
		}), 400, `member \"Params\" must be spelled`},
		{"arguments and ARGUMENTS", withValid("root", admin, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"ok"},"ARGUMENTS":{"client_id":"evil"}}}`, nil)(t, s)
		}), 400, "given more than once"},
		{"client_id and CLIENT_ID", toolCall("root", admin, "issue_token", `{"client_id":"ok","CLIENT_ID":"evil"}`), 400, "given more than once"},
		{"duplicate method member", withValid("root", admin, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`, nil)(t, s)
		}), 400, "given more than once"},

		// Tool arguments.
		{"unicode in client_id", toolCall("root", admin, "issue_token", `{"client_id":"clïent"}`), 200, "invalid client_id"},
		{"control character in client_id", toolCall("root", admin, "issue_token", `{"client_id":"a\u0000b"}`), 200, "invalid client_id"},
		{"10 KB client_id", toolCall("root", admin, "issue_token", `{"client_id":"`+strings.Repeat("a", 10<<10)+`"}`), 200, "at most 128 characters"},
		{"client_id of the wrong type", toolCall("root", admin, "issue_token", `{"client_id":["a"]}`), 200, "must be a string"},
		{"unknown extra argument", toolCall("root", admin, "issue_token", `{"client_id":"a","admin":true}`), 200, "unknown argument"},
		{"expires_in overflowing", toolCall("root", admin, "issue_token", `{"client_id":"a","expires_in":"999999999d"}`), 200, "too long"},
		{"expires_in negative", toolCall("root", admin, "issue_token", `{"client_id":"a","expires_in":"-1d"}`), 200, "invalid expiry"},
		{"expires_in zero", toolCall("root", admin, "issue_token", `{"client_id":"a","expires_in":"0s"}`), 200, "zero"},
		{"expires_in with whitespace", toolCall("root", admin, "issue_token", `{"client_id":"a","expires_in":" 30d "}`), 200, "invalid expiry"},

		// HTTP.
		{"Origin not allowed", withValidHeader("o1", user, "Origin", "https://evil.example"), 403, "origin_not_allowed"},
		{"Origin null", withValidHeader("o2", user, "Origin", "null"), 403, "origin_not_allowed"},
		{"look-alike Origin", withValidHeader("o3", user, "Origin", "https://app.example.com.evil.com"), 403, "origin_not_allowed"},
		{"Host rebinding on a loopback listener", withValidHeader("h1", user, "Host", "evil.example"), 403, "host_not_allowed"},
		{"text/plain body (cross-site simple request)", withValidHeader("c1", user, "Content-Type", "text/plain"), 415, "application/json"},
		{"form body", withValidHeader("c2", user, "Content-Type", "application/x-www-form-urlencoded"), 415, "application/json"},
		{"oversize body", withValid("big", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"`+strings.Repeat("a", 2<<20)+`"}}`, nil)(t, s)
		}), 413, "larger than 1 MiB"},
		{"deeply nested JSON", withValid("deep", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, strings.Repeat("[", 200000)+strings.Repeat("]", 200000), nil)(t, s)
		}), 400, "batch"},
		{"deeply nested params", withValid("deep2", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}}`, nil)(t, s)
		}), 400, "not valid JSON"},
		{"malformed JSON", withValid("bad", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":1,"method":`, nil)(t, s)
		}), 400, "not valid JSON"},
		{"JSON-RPC batch", withValid("batch", admin, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"b"}}}]`, nil)(t, s)
		}), 400, "batch requests are not supported"},
		{"Bearer followed by 1 MiB of dots", headerReq("Bearer " + strings.Repeat(".", 1<<20)), 431, ""},

		// Sessions.
		{"SSE message into an unknown session", withValid("s1", user, func(t *testing.T, s *stack, tok string) *http.Request {
			r, _ := http.NewRequest("POST", s.URL+"/message?sessionId=0123456789abcdef0123456789abcdef", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("Content-Type", "application/json")
			return r
		}), 404, "Session not found"},
		{"Streamable request with a never-issued session id", withValid("s2", user, func(t *testing.T, s *stack, tok string) *http.Request {
			return rpcReq(tok, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": "ffffffffffffffffffffffffffffffff", "Mcp-Protocol-Version": "2025-11-25"})(t, s)
		}), 404, "Session not found"},
		{"Streamable session of another subject", func(t *testing.T, s *stack) *http.Request {
			owner := s.mint(t, "owner", time.Hour)
			sid := do(t, "POST", s.URL+"/mcp", owner, initBody, nil).Header.Get("Mcp-Session-Id")
			intruder := s.mint(t, "intruder", time.Hour, "admin")
			return rpcReq(intruder, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"})(t, s)
		}, 403, "belongs to another client"},
		{"SSE session of another subject", func(t *testing.T, s *stack) *http.Request {
			owner := s.mint(t, "sse-owner", time.Hour)
			ep := openSSE(t, s.URL, owner)
			intruder := s.mint(t, "sse-intruder", time.Hour, "admin")
			r, _ := http.NewRequest("POST", s.URL+ep, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`))
			r.Header.Set("Authorization", "Bearer "+intruder)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, 403, "belongs to another client"},
		{"SSE message without a token", func(t *testing.T, s *stack) *http.Request {
			ep := openSSE(t, s.URL, s.mint(t, "sse-owner2", time.Hour))
			r, _ := http.NewRequest("POST", s.URL+ep, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, 401, "Authentication required"},
	}

	client := &http.Client{Timeout: 20 * time.Second}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			req := row.req(t, s)
			before := s.tokenCount(t)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("request failed: %v", err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode != row.status {
				t.Fatalf("status %d, want %d; body %.300s; WWW-Authenticate %q", resp.StatusCode, row.status, body, resp.Header.Get("WWW-Authenticate"))
			}
			seen := resp.Header.Get("WWW-Authenticate") + " " + string(body)
			if row.want != "" && !strings.Contains(seen, row.want) {
				t.Fatalf("response lacks %q: %.400s", row.want, seen)
			}
			if row.status != 200 && strings.Contains(string(body), `"isError":false`) {
				t.Fatal("a refusal carried a successful result")
			}
			if after := s.tokenCount(t); after != before {
				t.Fatalf("registry went from %d to %d tokens: a refused request minted", before, after)
			}
			if auth := req.Header.Get("Authorization"); len(auth) > 20 && strings.Contains(seen, strings.TrimPrefix(strings.TrimSpace(auth), "Bearer ")[:20]) {
				t.Fatal("the response echoes the token")
			}
		})
	}
	if len(rows) < 60 {
		t.Fatalf("only %d adversarial rows; the suite promises at least 60", len(rows))
	}
}

func TestAudienceIsRequiredWhenConfigured(t *testing.T) {
	s := startStack(t, stackOpts{audience: "https://mcp.example.com/mcp"})
	now := time.Now().Unix()
	rows := []struct {
		name   string
		aud    any
		status int
	}{
		{"right audience", "https://mcp.example.com/mcp", 200},
		{"right audience in an array", []string{"other", "https://mcp.example.com/mcp"}, 200},
		{"wrong audience", "https://other.example", 401},
		{"missing audience", nil, 401},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			tok := forge(hdr("HS256"), claims("aud", r.aud, "exp", now+60), "HS256", testSecret)
			resp := do(t, "POST", s.URL+"/mcp", tok, initBody, nil)
			if resp.StatusCode != r.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, r.status, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// Minted tokens carry the audience.
	c, err := s.Verifier.Verify(s.mint(t, "aud-client", time.Hour))
	if err != nil || len(c.Audience) != 1 || c.Audience[0] != "https://mcp.example.com/mcp" {
		t.Fatalf("minted token aud = %v, %v", c, err)
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	s := startStack(t, stackOpts{timeouts: transport.Timeouts{ReadHeader: 500 * time.Millisecond}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Send the request line and then one header byte at a time, slowly.
	if _, err := conn.Write([]byte("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	closed := false
	for i := 0; i < 40; i++ {
		if _, err := conn.Write([]byte("X")); err != nil {
			closed = true
			break
		}
		time.Sleep(100 * time.Millisecond)
		if time.Since(start) > 2*time.Second {
			// The server should have answered or closed by now; a read
			// tells which.
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			closed = true
			if line != "" && !strings.Contains(line, "408") && !strings.Contains(line, "400") {
				t.Fatalf("slow client got %q", line)
			}
			break
		}
	}
	if !closed {
		t.Fatal("the server kept a slowloris connection open")
	}
}

func TestStreamsPerClientAreBounded(t *testing.T) {
	s := startStack(t, stackOpts{maxStreams: 2})
	tok := s.mint(t, "greedy", time.Hour)
	openSSE(t, s.URL, tok)
	openSSE(t, s.URL, tok)
	r := do(t, "GET", s.URL+"/sse", tok, "", nil)
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third stream: %d, want 429", r.StatusCode)
	}
	if v := s.metric(t, `mcpauth_limit_refusals_total{limit="streams_per_client"}`); v != "1" {
		t.Fatalf("refusals counted: %q, want 1", v)
	}
	// Another client is unaffected.
	openSSE(t, s.URL, s.mint(t, "modest", time.Hour))
}

// A 2026-07-28 subscriptions/listen POST holds an event stream open like a
// GET: it takes one of the client's stream slots.
func TestListenStreamsCountAgainstTheStreamCap(t *testing.T) {
	s := startStack(t, stackOpts{maxStreams: 2, upstreams: relayedUpstream(t)})
	tok := s.mint(t, "listener", time.Hour)
	openListen(t, s.URL+"/mcp", tok)
	openSSE(t, s.URL, tok)
	r := do(t, "POST", s.URL+"/mcp", tok, listenBody, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"})
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third stream (a listen): %d, want 429", r.StatusCode)
	}
	if v := s.metric(t, `mcpauth_limit_refusals_total{limit="streams_per_client"}`); v != "1" {
		t.Fatalf("refusals counted: %q, want 1", v)
	}
	// Another client's listen is unaffected, and an ordinary 2026-07-28
	// request of the capped client is not a stream.
	openListen(t, s.URL+"/mcp", s.mint(t, "modest", time.Hour))
	modern := `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"m","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	if r := do(t, "POST", s.URL+"/mcp", tok, modern, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}); r.StatusCode != http.StatusOK {
		t.Fatalf("the capped client's tools/list: %d, want 200", r.StatusCode)
	}
}

func TestReverseProxyHostIsAllowedOnLoopback(t *testing.T) {
	s := startStack(t, stackOpts{allowedHosts: []string{"mcp.example.com"}})
	tok := s.mint(t, "proxied", time.Hour)
	for host, want := range map[string]int{"mcp.example.com": 200, "MCP.EXAMPLE.COM": 200, "localhost": 200, "evil.example": 403} {
		req, _ := http.NewRequest("POST", s.URL+"/mcp", strings.NewReader(initBody))
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
