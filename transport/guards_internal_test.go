package transport

import (
	"mime"
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
