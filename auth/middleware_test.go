package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		headers []string
		want    string
		wantErr error
	}{
		{"token is extracted from a Bearer header", "/", []string{"Bearer abc.def.ghi"}, "abc.def.ghi", nil},
		{"mixed-case scheme is accepted", "/", []string{"bEaReR abc"}, "abc", nil},
		{"surrounding spaces are trimmed", "/", []string{"  Bearer   abc  "}, "abc", nil},
		{"missing header is ErrTokenMissing", "/", nil, "", ErrTokenMissing},
		{"empty header is ErrTokenMissing", "/", []string{""}, "", ErrTokenMissing},
		{"Basic scheme is ErrTokenMissing", "/", []string{"Basic abc"}, "", ErrTokenMissing},
		{"Bearer prefix without separator is refused", "/", []string{"Bearerabc"}, "", ErrTokenMissing},
		{"two headers are ErrTokenInvalid", "/", []string{"Bearer a", "Bearer b"}, "", ErrTokenInvalid},
		{"query access_token is ErrTokenInvalid", "/?access_token=abc", nil, "", ErrTokenInvalid},
		{"empty query access_token is still refused", "/?access_token=", []string{"Bearer abc"}, "", ErrTokenInvalid},
		{"percent-encoded access_token name is refused", "/?sessionId=1&access%5Ftoken=abc", []string{"Bearer abc"}, "", ErrTokenInvalid},
		{"fully encoded access_token name is refused", "/?%61%63%63%65%73%73%5f%74%6f%6b%65%6e=abc", []string{"Bearer abc"}, "", ErrTokenInvalid},
		{"other query parameters do not matter", "/message?sessionId=abc123", []string{"Bearer abc"}, "abc", nil},
		{"over-long token is ErrTokenInvalid", "/", []string{"Bearer " + strings.Repeat("a", MaxTokenLen+1)}, "", ErrTokenInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			for _, v := range tc.headers {
				r.Header.Add("Authorization", v)
			}
			got, err := BearerToken(r)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("BearerToken = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || got != "" {
				t.Fatalf("BearerToken = %q, %v; want error %v", got, err, tc.wantErr)
			}
		})
	}
}

func TestClaimsContext(t *testing.T) {
	c := &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "my-app"}}
	tests := []struct {
		name   string
		ctx    func() *http.Request
		want   *Claims
		wantOK bool
	}{
		{"claims put in the context come back", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			return r.WithContext(WithClaims(r.Context(), c))
		}, c, true},
		{"a context without claims reports none", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/", nil)
		}, nil, false},
		{"nil claims in the context report none", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			return r.WithContext(WithClaims(r.Context(), nil))
		}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ClaimsFrom(tc.ctx().Context())
			if ok != tc.wantOK || got != tc.want {
				t.Fatalf("ClaimsFrom = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
