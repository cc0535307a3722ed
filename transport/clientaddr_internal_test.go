package transport

import (
	"net/http/httptest"
	"testing"
)

func TestResolveClient(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", " 127.0.0.1", "::1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer: header ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"untrusted peer without header", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"trusted peer without header", "10.1.2.3:443", nil, "10.1.2.3"},
		{"trusted peer names the client", "10.1.2.3:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed entries left of the real client are ignored", "10.1.2.3:443", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "127.0.0.1:9", []string{"198.51.100.1, 10.0.0.5, 10.0.0.6"}, "198.51.100.1"},
		{"several header lines read as one list", "127.0.0.1:9", []string{"6.6.6.6", "198.51.100.1, 10.0.0.5"}, "198.51.100.1"},
		{"garbage from a client beyond the real one", "10.1.2.3:443", []string{"not-an-ip, 198.51.100.1"}, "198.51.100.1"},
		{"garbage right after trusted hops stops there", "10.1.2.3:443", []string{"198.51.100.1, garbage, 10.0.0.5"}, "10.0.0.5"},
		{"all hops trusted: the left-most", "10.1.2.3:443", []string{"10.0.0.7, 10.0.0.5"}, "10.0.0.7"},
		{"entry with a port", "10.1.2.3:443", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 entry with a port", "[::1]:443", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"IPv6 client through an IPv6 proxy", "[fd00::2]:443", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer is matched as IPv4", "[::ffff:10.1.2.3]:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped trusted peer without header reads as IPv4", "[::ffff:10.1.2.3]:443", nil, "10.1.2.3"},
		{"zone in an entry is refused", "10.1.2.3:443", []string{"fe80::1%eth0"}, "10.1.2.3"},
		{"empty header value", "10.1.2.3:443", []string{""}, "10.1.2.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolveClient(trusted, tc.remote, tc.xff); got != tc.want {
				t.Fatalf("resolveClient(%q, %q) = %q, want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
	// No trusted proxies: the header never matters.
	if got := resolveClient(nil, "10.1.2.3:443", []string{"198.51.100.1"}); got != "10.1.2.3" {
		t.Fatalf("no trusted proxies: %q", got)
	}
}

func TestResolveClientReadsABoundedNumberOfHops(t *testing.T) {
	trusted, _ := ParseTrustedProxies([]string{"10.0.0.0/8"})
	xff := "198.51.100.1"
	for range maxForwardedHops {
		xff += ", 10.0.0.1"
	}
	// The client sits beyond the hops that are read: the left-most hop
	// read is what a trusted proxy vouched for.
	if got := resolveClient(trusted, "10.1.2.3:443", []string{xff}); got != "10.0.0.1" {
		t.Fatalf("got %q", got)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, bad := range []string{"proxy.internal", "10.0.0.0/33", "10.0.0.1/abc", "fe80::1%eth0", "1.2.3"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	got, err := ParseTrustedProxies([]string{"10.1.2.3/8", "", "::ffff:192.0.2.1"})
	if err != nil || len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.1/32" {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestSessionParam(t *testing.T) {
	for raw, want := range map[string]string{
		"sessionId=abc":               "abc",
		"x=1&sessionId=abc&y=2":       "abc",
		"sessionId=a%2Fb":             "a/b",
		"sessionId=abc&sessionId=def": "abc",
		"sessionid=abc":               "",
		"sessionId=%zz":               "",
		"":                            "",
		"sessionId":                   "",
	} {
		r := httptest.NewRequest("POST", "/message?"+raw, nil)
		if got := sessionParam(r); got != want {
			t.Errorf("sessionParam(%q) = %q, want %q", raw, got, want)
		}
		if raw != "sessionId=%zz" && raw != "sessionId" {
			if std := r.URL.Query().Get("sessionId"); std != want {
				t.Errorf("%q: net/url reads %q, sessionParam %q", raw, std, want)
			}
		}
	}
}
