package auth

import (
	"context"
	"testing"
)

// WithCaller answers exactly as WithRemoteAddr(WithClaims(…)) does, for
// present, nil and empty values, and passes other keys to its parent.
func TestWithCallerIsWithClaimsAndWithRemoteAddr(t *testing.T) {
	type otherKey struct{}
	parent := context.WithValue(context.Background(), otherKey{}, "kept")
	c := &Claims{Scope: Scopes{"a"}}
	for _, tc := range []struct {
		claims *Claims
		addr   string
	}{{c, "203.0.113.9"}, {nil, ""}, {c, ""}, {nil, "::1"}} {
		got := WithCaller(parent, tc.claims, tc.addr)
		want := WithRemoteAddr(WithClaims(parent, tc.claims), tc.addr)
		gc, gok := ClaimsFrom(got)
		wc, wok := ClaimsFrom(want)
		ga, gaok := RecordedAddr(got)
		wa, waok := RecordedAddr(want)
		if gc != wc || gok != wok || ga != wa || gaok != waok || RemoteAddrFrom(got) != RemoteAddrFrom(want) {
			t.Errorf("%+v: WithCaller gives %v %v %q %v, want %v %v %q %v", tc, gc, gok, ga, gaok, wc, wok, wa, waok)
		}
		if got.Value(otherKey{}) != "kept" {
			t.Errorf("%+v: the parent's values are lost", tc)
		}
	}
}
