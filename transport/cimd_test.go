package transport_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// serveMetadata publishes a client id metadata document on loopback; doc
// gets the document's own URL. It counts fetches.
func serveMetadata(t *testing.T, doc func(self string) string) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		fmt.Fprint(w, doc(self))
	}))
	t.Cleanup(srv.Close)
	self = srv.URL + "/oauth/client.json"
	return self, &hits
}

func TestClientIDMetadataDocumentSignIn(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true, loopbackMetadata: true})
	redirect := "http://127.0.0.1:9/callback"
	clientID, hits := serveMetadata(t, func(self string) string {
		return `{"client_id":"` + self + `","client_name":"Doc Client","redirect_uris":["` + redirect + `"],"token_endpoint_auth_method":"none"}`
	})
	c := &oauthClient{t: t, s: s, id: clientID, redirect: redirect, http: newOAuthClient(t, s).http}
	for i := 0; i < 2; i++ {
		resp, page := c.consent(c.authorizeURL(nil), enroll(t, s, "doc-client", "tools:call"), "approve")
		if !strings.Contains(page, "Doc Client") || resp.StatusCode != http.StatusFound {
			t.Fatalf("consent with a metadata document client: %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		status, tok := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {clientID},
			"redirect_uri": {redirect}, "code_verifier": {c.verifier}})
		if status != 200 {
			t.Fatalf("token: %d %v", status, tok)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the metadata document was fetched %d times; its max-age should have cached it", n)
	}
}

func TestClientIDMetadataDocumentRefusals(t *testing.T) {
	redirect := "http://127.0.0.1:9/callback"
	cases := []struct {
		name     string
		loopback bool
		doc      func(self string) string
		want     string
	}{
		{"client_id does not match the URL", true, func(string) string {
			return `{"client_id":"https://other.example/client.json","redirect_uris":["` + redirect + `"]}`
		}, "does not match its URL"},
		{"redirect not listed", true, func(self string) string {
			return `{"client_id":"` + self + `","redirect_uris":["https://elsewhere.example/cb"]}`
		}, ""},
		{"not JSON", true, func(string) string { return `<html>` }, "not JSON"},
		{"loopback document without the development flag", false, func(self string) string {
			return `{"client_id":"` + self + `","redirect_uris":["` + redirect + `"]}`
		}, "must be https"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startStack(t, stackOpts{oauth: true, loopbackMetadata: tc.loopback})
			clientID, _ := serveMetadata(t, tc.doc)
			c := &oauthClient{t: t, s: s, id: clientID, redirect: redirect, http: newOAuthClient(t, s).http}
			before := s.tokenCount(t)
			r := c.get(c.authorizeURL(nil))
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
				t.Fatalf("status %d, page lacks %q: %.300s", r.StatusCode, tc.want, b)
			}
			if s.tokenCount(t) != before {
				t.Fatal("minted")
			}
		})
	}
	// https to a loopback address is stopped by the address fence, after
	// DNS, even though the scheme is right.
	s := startStack(t, stackOpts{oauth: true})
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) }))
	defer tls.Close()
	c := &oauthClient{t: t, s: s, id: tls.URL + "/client.json", redirect: redirect, http: newOAuthClient(t, s).http}
	r := c.get(c.authorizeURL(nil))
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "not public") {
		t.Fatalf("https on loopback: %d %.300s", r.StatusCode, b)
	}
}
