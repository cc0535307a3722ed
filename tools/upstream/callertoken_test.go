package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// fakeDelegator "mints" readable tokens and counts the mints.
type fakeDelegator struct {
	mu    sync.Mutex
	mints int
}

func (d *fakeDelegator) Delegate(_ context.Context, subject string, scopes []string, audience string, exp time.Time) (string, error) {
	d.mu.Lock()
	d.mints++
	n := d.mints
	d.mu.Unlock()
	return fmt.Sprintf("minted/%d/sub=%s/scope=%s/aud=%s", n, subject, strings.Join(scopes, ","), audience), nil
}

// methodRecorder records each request's JSON-RPC method (GET: "GET")
// and Authorization header.
type methodRecorder struct {
	mu   sync.Mutex
	seen []string // "method auth"
}

func (r *methodRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		method := req.Method
		if req.Method == http.MethodPost {
			b, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(b))
			var m struct{ Method string }
			_ = json.Unmarshal(b, &m)
			method = m.Method
		}
		r.mu.Lock()
		r.seen = append(r.seen, method+" "+req.Header.Get("Authorization"))
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

func (r *methodRecorder) with(method string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.seen {
		if m, auth, _ := strings.Cut(s, " "); m == method {
			out = append(out, auth)
		}
	}
	return out
}

// An HTTP upstream with "callerToken" gets, for each caller's call, a
// token minted for that caller alone (sub = the caller, scopes within the
// caller's and the entry's, aud = the upstream), reused while fresh; its
// connection's own requests carry the gateway's token. No request goes
// without one.
func TestCallerTokenUpstreamGetsATokenPerCaller(t *testing.T) {
	rec := &methodRecorder{}
	up := httptest.NewServer(rec.wrap(server.NewStreamableHTTPServer(testUpstream())))
	t.Cleanup(up.Close)
	d := &fakeDelegator{}
	e := Entry{Name: "web", URL: up.URL + "/mcp", CallerToken: &CallerToken{Scopes: []string{"read", "web"}, Lifetime: Duration(time.Minute)}}
	if err := e.check(); err != nil {
		t.Fatal(err)
	}
	g := New([]Entry{e}, Options{Delegator: d, Access: prefixAccess{}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	url := serveCallers(t, gatewayServer(g))
	for _, scopes := range []string{"web read write", "web read write", "web admin"} {
		if res := testutil.CallTool(t, caller(t, url, scopes), "web__echo", map[string]any{"message": "hi"}); res.IsError {
			t.Fatalf("web__echo as %q = %+v", scopes, res)
		}
	}
	calls := rec.with("tools/call")
	want := []string{
		"Bearer minted/2/sub=caller web read write/scope=web,read/aud=" + e.URL,
		"Bearer minted/2/sub=caller web read write/scope=web,read/aud=" + e.URL, // the same token, cached
		"Bearer minted/3/sub=caller web admin/scope=web/aud=" + e.URL,
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tools/call credentials:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	inits := rec.with("initialize")
	if len(inits) == 0 {
		t.Fatal("no initialize recorded")
	}
	for _, a := range inits {
		if a != "Bearer minted/1/sub="+GatewaySubject+"/scope=read,web/aud="+e.URL {
			t.Fatalf("initialize credential %q, want the gateway's token", a)
		}
	}
	g.Close() // its session's DELETE needs a token too
	if len(rec.with(http.MethodDelete)) == 0 {
		t.Fatal("no DELETE ended the session")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, s := range rec.seen {
		if !strings.Contains(s, " Bearer minted/") {
			t.Fatalf("a request went without a minted token: %q", s)
		}
	}
}

// Without a signer the gateway refuses to start such an entry.
func TestCallerTokenNeedsADelegator(t *testing.T) {
	g := New([]Entry{{Name: "web", URL: "http://127.0.0.1:1/mcp", CallerToken: &CallerToken{}}}, Options{})
	err := g.Start(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), `upstream "web": "callerToken" needs mcpauth to sign tokens`) {
		t.Fatalf("Start = %v", err)
	}
}

func TestCallerTokenConfigErrors(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{`{"command":"x","callerToken":{}}`, `"callerToken" applies to "url" servers only`},
		{`{"url":"https://a.example/mcp","headers":{"authorization":"Bearer x"},"callerToken":{}}`, `both "callerToken" and an "Authorization" header`},
		{`{"url":"https://a.example/mcp","callerToken":{"lifetime":"2h"}}`, `"lifetime" 2h0m0s: between 1s and 1h0m0s`},
		{`{"url":"https://a.example/mcp","callerToken":{"audience":"crm"}}`, `"audience" "crm" is not an absolute URI`},
		{`{"url":"https://a.example/mcp","callerToken":{"scopes":["a b"]}}`, `"callerToken" "scopes"`},
		{`{"url":"https://a.example/mcp","callerToken":{"scope":["a"]}}`, `unknown`},
	} {
		_, err := Parse([]byte(`{"mcpServers":{"up":`+tc.entry+`}}`), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.entry, err, tc.want)
		}
	}
	f, err := Parse([]byte(`{"mcpServers":{"up":{"url":"https://a.example/mcp","callerToken":{"scopes":["crm:read","crm:read"]}}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ct := f.Servers[0].CallerToken
	if time.Duration(ct.Lifetime) != 5*time.Minute || len(ct.Scopes) != 1 || f.Servers[0].TokenAudience() != "https://a.example/mcp" {
		t.Fatalf("defaults: %+v, audience %q", ct, f.Servers[0].TokenAudience())
	}
}
