package idp

import (
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
)

// maxScopes bounds how many scopes one external token yields.
const maxScopes = 64

// scopes reads the provider's scope claim and maps it. Values that are
// not valid scope names are dropped; "admin" comes only from a ScopeMap
// entry, never from a value passed through as it is.
func (t *trusted) scopes(mc jwt.MapClaims) auth.Scopes {
	var out []string
	for _, v := range claimValues(mc, t.p.ScopeClaim) {
		mapped, ok := t.p.ScopeMap[v]
		switch {
		case ok:
			out = append(out, mapped...)
		case (t.p.ScopeMap == nil || t.p.KeepUnmapped) && v != auth.ScopeAdmin:
			out = append(out, v)
		}
	}
	kept := out[:0]
	for _, sc := range out {
		if auth.ValidateScopes([]string{sc}) == nil {
			kept = append(kept, sc)
		}
	}
	n := auth.NormalizeScopes(kept)
	return n[:min(len(n), maxScopes)]
}

// claimValues reads the claim at a dotted path ("scope" by default): a
// space-separated string, or an array of strings (each may itself hold
// several space-separated values).
func claimValues(mc jwt.MapClaims, path string) []string {
	if path == "" {
		path = "scope"
	}
	var v any = map[string]any(mc)
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, item := range v {
			if s, ok := item.(string); ok {
				out = append(out, strings.Fields(s)...)
			}
		}
		return out
	}
	return nil
}
