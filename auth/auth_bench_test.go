package auth_test

// Benchmarks for the per-request auth path and for minting. Run with
//
//	go test -run '^$' -bench . -benchmem ./auth
//
// or through the whole benchmark set: go run ./bench (see
// docs/benchmarks.md). They use only the public API (the middleware is auth/bearer's).

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/keys"
)

var (
	benchSecret = []byte("bench-secret-0123456789abcdef-0123456789")
	benchNow    = time.Date(2026, time.January, 2, 3, 4, 5, 0, time.UTC)
)

const benchIssuer = "mcpauth"

// benchRevokedSet holds n random revoked jtis, none of which is the
// benchmark token's.
func benchRevokedSet(b *testing.B, n int) *auth.RevocationSet {
	b.Helper()
	set := auth.NewRevocationSet()
	m := make(map[string]time.Time, n)
	for range n {
		var r [16]byte
		_, _ = rand.Read(r[:])
		m[hex.EncodeToString(r[:])] = benchNow.Add(24 * time.Hour)
	}
	set.Add(m)
	if set.Len() != n {
		b.Fatalf("revocation set holds %d, want %d", set.Len(), n)
	}
	return set
}

type noopRecorder struct{}

func (noopRecorder) Record(context.Context, auth.IssuedToken) error { return nil }

func benchIssuerFor(b *testing.B) *auth.Issuer {
	b.Helper()
	iss, err := auth.NewIssuer(auth.IssuerConfig{
		Secret: benchSecret, Issuer: benchIssuer, MaxLifetime: 365 * 24 * time.Hour,
		Now: func() time.Time { return benchNow },
	}, noopRecorder{})
	if err != nil {
		b.Fatal(err)
	}
	return iss
}

func benchAdmin() *auth.Claims {
	c := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	c.Subject = "bench-admin"
	c.ID = "bench"
	return c
}

// benchToken is a typical token: a client id, two scopes, 30 days.
func benchToken(b *testing.B) string {
	b.Helper()
	tok, err := benchIssuerFor(b).Issue(context.Background(), auth.IssueRequest{
		ClientID: "research-bot", Expiry: auth.Expiry{Duration: 30 * 24 * time.Hour},
		Scopes: []string{"tools:call", "tools:list"}, Caller: benchAdmin(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return tok.Token
}

func benchVerifier(b *testing.B, revoked int) *auth.Verifier {
	return benchVerifierCache(b, revoked, 0)
}

// benchVerifierCache is benchVerifier with a verified-token cache size
// (negative: no cache, every call verifies from scratch).
func benchVerifierCache(b *testing.B, revoked, cacheSize int) *auth.Verifier {
	b.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Secret: benchSecret, Issuer: benchIssuer,
		Now:       func() time.Time { return benchNow.Add(time.Hour) },
		Revoked:   benchRevokedSet(b, revoked),
		CacheSize: cacheSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkVerify verifies a typical token from scratch (no cache: HMAC,
// claim parsing and checks) with 1,000 jtis in the revocation set (the
// lookup included).
func BenchmarkVerify(b *testing.B) {
	v := benchVerifierCache(b, 1000, -1)
	tok := benchToken(b)
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is BenchmarkVerify on every P.
func BenchmarkVerifyParallel(b *testing.B) {
	v := benchVerifierCache(b, 1000, -1)
	tok := benchToken(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHMACFloor is the floor under Verify: one HMAC-SHA256 over the
// same signing input (header.payload) with the same key, as a fresh
// hmac.New per token (what any verifier must do at least) and compared in
// constant time.
func BenchmarkHMACFloor(b *testing.B) {
	tok := benchToken(b)
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 32)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, benchSecret)
		m.Write(input)
		if !hmac.Equal(m.Sum(buf[:0]), sig) {
			b.Fatal("signature mismatch")
		}
	}
}

// BenchmarkHMACFloorReused is the absolute floor: the HMAC state is
// reused (Reset) instead of keyed anew for each token.
func BenchmarkHMACFloorReused(b *testing.B) {
	tok := benchToken(b)
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	m := hmac.New(sha256.New, benchSecret)
	out := make([]byte, 0, 32)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		m.Write(input)
		out = m.Sum(out[:0])
	}
}

// BenchmarkRevocationLookup is the revocation check alone (1,000 held).
func BenchmarkRevocationLookup(b *testing.B) {
	set := benchRevokedSet(b, 1000)
	jti := "0123456789abcdef0123456789abcdef"
	b.ReportAllocs()
	for b.Loop() {
		if set.IsRevoked(jti) {
			b.Fatal("revoked")
		}
	}
}

// BenchmarkIssue mints a typical token with a no-op recorder: policy
// checks, jti from crypto/rand, claims, JSON, HMAC.
func BenchmarkIssue(b *testing.B) {
	iss := benchIssuerFor(b)
	req := auth.IssueRequest{
		ClientID: "research-bot", Expiry: auth.Expiry{Duration: 30 * 24 * time.Hour},
		Scopes: []string{"tools:call", "tools:list"}, Caller: benchAdmin(),
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Issue(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditIssued writes the audit record of one mint (the fields
// Issuer.audit passes, the remote address in the context) through a JSON
// handler to io.Discard: the redaction scan and slog.
func BenchmarkAuditIssued(b *testing.B) {
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := auth.WithRemoteAddr(context.Background(), "127.0.0.1:52814")
	b.ReportAllocs()
	for b.Loop() {
		auth.Audit(ctx, logger, auth.EventTokenIssued, "client_id", "bench-tool-mint", "jti", "147a82efb97c3c113b5e56d401af9fc5",
			"issued_by", "bench-client", "scopes", "tools:call", "expires_in", "1h", "via", "issue_token")
	}
}

// BenchmarkParseExpiry parses the lifetimes operators write.
func BenchmarkParseExpiry(b *testing.B) {
	in := []string{"90d", "24h", "15m", "30s", "never", "365d"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := auth.ParseExpiry(in[n%len(in)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkParseExpiryInvalid is the refusal path (error formatting).
func BenchmarkParseExpiryInvalid(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auth.ParseExpiry("12x"); err == nil {
			b.Fatal("accepted")
		}
	}
}

// discardWriter is a minimal ResponseWriter so the benchmark measures the
// middleware, not httptest.ResponseRecorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchMiddleware(b *testing.B, cfg bearer.MiddlewareConfig, token string) {
	b.Helper()
	var seen int
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth.ClaimsFrom(r.Context()); ok {
			seen++
		}
	})
	h := bearer.Middleware(cfg)(next)
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/mcp", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	if seen == 0 {
		b.Fatal("request never reached the handler")
	}
}

// BenchmarkMiddleware is bearer.Middleware on an in-memory request with a
// valid token (Bearer parsing, Verify with 1,000 revoked jtis, context).
func BenchmarkMiddleware(b *testing.B) {
	tok := benchToken(b)
	benchMiddleware(b, bearer.MiddlewareConfig{
		Verifier:  benchVerifier(b, 1000),
		OnSuccess: func(*http.Request, *auth.Claims) {},
	}, tok)
}

// BenchmarkMiddlewareDisabled is the ceiling: auth disabled, a fixed dev
// identity put in the context.
func BenchmarkMiddlewareDisabled(b *testing.B) {
	benchMiddleware(b, bearer.MiddlewareConfig{Disabled: true, DevIdentity: benchAdmin()}, "")
}

// BenchmarkMiddlewareRejected is the 401 path (a tampered signature).
func BenchmarkMiddlewareRejected(b *testing.B) {
	tok := benchToken(b)
	bad := tok[:len(tok)-2] + "AA"
	if bad == tok {
		bad = tok[:len(tok)-2] + "BB"
	}
	h := bearer.Middleware(bearer.MiddlewareConfig{Verifier: benchVerifier(b, 1000)})(http.NotFoundHandler())
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+bad)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkVerifyCached is a client's repeated request with the same
// token: the verified-token cache answers, and expiry, the allowed
// clients and the revocation set (1,000 jtis) are still checked.
func BenchmarkVerifyCached(b *testing.B) {
	v := benchVerifier(b, 1000)
	tok := benchToken(b)
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// benchKeyed is a token signed with a new key of alg, the Verifier that
// accepts it (cache size cacheSize; negative: none) and the key.
func benchKeyed(b *testing.B, alg string, cacheSize int) (string, *auth.Verifier, *keys.Key) {
	b.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		b.Fatal(err)
	}
	set, err := keys.NewSet(k)
	if err != nil {
		b.Fatal(err)
	}
	iss, err := auth.NewIssuer(auth.IssuerConfig{Key: k, Issuer: benchIssuer, MaxLifetime: 365 * 24 * time.Hour,
		Now: func() time.Time { return benchNow }}, noopRecorder{})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := iss.Issue(context.Background(), auth.IssueRequest{
		ClientID: "research-bot", Expiry: auth.Expiry{Duration: 30 * 24 * time.Hour},
		Scopes: []string{"tools:call", "tools:list"}, Caller: benchAdmin(),
	})
	if err != nil {
		b.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: set, Issuer: benchIssuer,
		Now: func() time.Time { return benchNow.Add(time.Hour) }, Revoked: benchRevokedSet(b, 1000), CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	return tok.Token, v, k
}

// BenchmarkVerifyAlg verifies a token of each asymmetric algorithm from
// scratch (cold: no cache), beside its floor, one signature verification
// of the same signing input with the same public key (golang-jwt's
// SigningMethod.Verify: hashing and the curve or RSA operation), and
// through the verified-token cache (a client's repeated token).
func BenchmarkVerifyAlg(b *testing.B) {
	for _, alg := range []string{keys.ES256, keys.EdDSA, keys.RS256} {
		b.Run(alg+"/cold", func(b *testing.B) {
			tok, v, _ := benchKeyed(b, alg, -1)
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/floor", func(b *testing.B) {
			tok, _, k := benchKeyed(b, alg, -1)
			i := strings.LastIndexByte(tok, '.')
			input := tok[:i]
			sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
			if err != nil {
				b.Fatal(err)
			}
			m := k.Method()
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Verify(input, sig, k.VerifyingKey()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/cached", func(b *testing.B) {
			tok, v, _ := benchKeyed(b, alg, 0)
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
