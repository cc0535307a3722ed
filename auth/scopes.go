package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// ScopeAdmin is the scope that unlocks the admin tools. A holder of it may
// grant any scope.
const ScopeAdmin = "admin"

// maxScopeLen bounds a single scope name so a token cannot smuggle
// arbitrarily large strings into logs and listings.
const maxScopeLen = 128

// Scopes is a set of scope names. In a JWT it is the RFC 9068 "scope"
// claim: one space-separated string. A JSON array is accepted when
// decoding, because some issuers write it that way.
type Scopes []string

// ParseScopes splits a space-separated scope string, dropping empty parts
// and duplicates while keeping order.
func ParseScopes(s string) Scopes {
	return NormalizeScopes(strings.Fields(s))
}

// NormalizeScopes trims, de-duplicates and drops empty entries, keeping the
// first occurrence's order. Its time is linear in the input: a long list
// (an outsider's scope parameter) is de-duplicated with a set.
func NormalizeScopes(in []string) Scopes {
	out := make(Scopes, 0, len(in))
	var seen map[string]struct{}
	if len(in) > 16 {
		seen = make(map[string]struct{}, len(in))
	}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if seen != nil {
			if _, dup := seen[s]; dup {
				continue
			}
			seen[s] = struct{}{}
		} else if slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Has reports whether the set holds scope s. The admin scope holds every
// scope.
func (s Scopes) Has(scope string) bool {
	return slices.Contains(s, ScopeAdmin) || slices.Contains(s, scope)
}

// IsAdmin reports whether the set holds the admin scope.
func (s Scopes) IsAdmin() bool { return slices.Contains(s, ScopeAdmin) }

// String renders the set in the space-separated claim form.
func (s Scopes) String() string { return strings.Join(s, " ") }

// MarshalJSON writes the space-separated string form.
func (s Scopes) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON accepts either a space-separated string or an array of
// strings.
func (s *Scopes) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = ParseScopes(str)
		return nil
	}
	var arr []string
	if err := json.Unmarshal(b, &arr); err != nil {
		return errors.New("scope must be a space-separated string or an array of strings")
	}
	// An item holding spaces is several scopes, as in the string form.
	*s = ParseScopes(strings.Join(arr, " "))
	return nil
}

// ErrInvalidScope reports a scope name that is not allowed.
var ErrInvalidScope = errors.New("invalid scope")

// ValidateScopes checks that every scope is a printable ASCII word without
// spaces or quotes (RFC 6749 section 3.3 scope-token) and of sane length.
func ValidateScopes(scopes []string) error {
	for _, sc := range scopes {
		if sc == "" || len(sc) > maxScopeLen {
			return fmt.Errorf("%w: scope names must be 1-%d characters", ErrInvalidScope, maxScopeLen)
		}
		for i := 0; i < len(sc); i++ {
			c := sc[i]
			if c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
				return fmt.Errorf("%w: %q may contain only printable ASCII without spaces, quotes or backslashes", ErrInvalidScope, untrusted.Clip(sc, 40))
			}
		}
	}
	return nil
}
