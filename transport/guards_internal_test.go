package transport

import (
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// requireJSON's shortcut for the plain "application/json" decides as
// mime.ParseMediaType does for every other spelling.
func TestRequireJSONMediaTypes(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for ct, want := range map[string]int{
		"application/json":                  http.StatusNoContent,
		"Application/JSON":                  http.StatusNoContent,
		"application/json; charset=utf-8":   http.StatusNoContent,
		" application/json ":                http.StatusNoContent,
		"application/json;":                 http.StatusNoContent,
		"application/json; charset":         http.StatusUnsupportedMediaType,
		"application/jsonx":                 http.StatusUnsupportedMediaType,
		"text/plain":                        http.StatusUnsupportedMediaType,
		"application/x-www-form-urlencoded": http.StatusUnsupportedMediaType,
		"":                                  http.StatusUnsupportedMediaType,
	} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		requireJSON(ok).ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Content-Type %q: %d, want %d", ct, w.Code, want)
		}
		mt, _, err := mime.ParseMediaType(ct)
		if ref := err == nil && mt == "application/json"; ref != (want == http.StatusNoContent) {
			t.Errorf("Content-Type %q: the table disagrees with mime.ParseMediaType", ct)
		}
	}
}

// isLoopbackAddr decides as IsLoopback of the address's string form.
func TestIsLoopbackAddrIsIsLoopbackOfString(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		&net.TCPAddr{IP: net.IP{127, 1, 2, 3}, Port: 1},
		&net.TCPAddr{IP: net.IPv6loopback, Port: 443},
		&net.TCPAddr{IP: net.IPv6loopback, Port: 443, Zone: "lo"},
		&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80},
		&net.TCPAddr{IP: nil, Port: 80},
		&net.TCPAddr{IP: net.IP{1, 2, 3, 4, 5}, Port: 80},
		&net.UnixAddr{Name: "/tmp/s", Net: "unix"},
		&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
	} {
		if got, want := isLoopbackAddr(a), IsLoopback(a.String()); got != want {
			t.Errorf("isLoopbackAddr(%v) = %v, IsLoopback(%q) = %v", a, got, a.String(), want)
		}
	}
}
