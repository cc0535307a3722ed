package auth

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Scopes
	}{
		{"space-separated scopes are split", "read write", Scopes{"read", "write"}},
		{"duplicates are dropped keeping first order", "write read write", Scopes{"write", "read"}},
		{"extra whitespace is ignored", "  read \t write\n", Scopes{"read", "write"}},
		{"empty string is an empty set", "", Scopes{}},
		// More than 16 scopes are de-duplicated with a set: the same
		// result, in linear time.
		{"a long list keeps first order without duplicates", strings.Repeat("a b c d e f g h i j k l m n o p q r ", 3) + "s a",
			Scopes{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseScopes(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("ParseScopes(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestScopesMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   Scopes
		want string
	}{
		{"scopes marshal as one space-separated string", Scopes{"read", "write"}, `"read write"`},
		{"single scope marshals as a plain string", Scopes{"admin"}, `"admin"`},
		{"empty set marshals as empty string", Scopes{}, `""`},
		{"nil set marshals as empty string", nil, `""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(b) != tc.want {
				t.Fatalf("Marshal(%q) = %s, want %s", tc.in, b, tc.want)
			}
		})
	}
}

func TestClaimsScopeClaimIsOmittedWhenEmpty(t *testing.T) {
	b, err := json.Marshal(Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "scope") {
		t.Fatalf("empty claims marshal a scope claim: %s", b)
	}
}

func TestScopesUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Scopes
		wantErr bool
	}{
		{"space-separated string is split", `"read write"`, Scopes{"read", "write"}, false},
		{"string duplicates are dropped", `"read write read"`, Scopes{"read", "write"}, false},
		{"array of strings is accepted", `["read","write"]`, Scopes{"read", "write"}, false},
		{"array duplicates and blanks are dropped", `["read"," read ","","write","read"]`, Scopes{"read", "write"}, false},
		{"empty string is an empty set", `""`, Scopes{}, false},
		{"empty array is an empty set", `[]`, Scopes{}, false},
		{"number is refused", `42`, nil, true},
		{"object is refused", `{"read":true}`, nil, true},
		{"boolean is refused", `true`, nil, true},
		{"array of numbers is refused", `[1,2]`, nil, true},
		{"mixed array is refused", `["read",2]`, nil, true},
		{"nested array is refused", `[["read"]]`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Scopes
			err := json.Unmarshal([]byte(tc.in), &got)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal(%s) = %q, want error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tc.in, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Unmarshal(%s) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestClaimsDecodeScopeAsStringOrArray(t *testing.T) {
	for _, payload := range []string{
		`{"sub":"a","scope":"read write"}`,
		`{"sub":"a","scope":["read","write"]}`,
	} {
		t.Run("scope claim "+payload+" decodes to read,write", func(t *testing.T) {
			var c Claims
			if err := json.Unmarshal([]byte(payload), &c); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Scope, Scopes{"read", "write"}) {
				t.Fatalf("Scope = %q", c.Scope)
			}
			if c.ClientID() != "a" {
				t.Fatalf("ClientID() = %q, want a", c.ClientID())
			}
		})
	}
}

func TestScopesHasAndIsAdmin(t *testing.T) {
	tests := []struct {
		name    string
		set     Scopes
		scope   string
		has     bool
		isAdmin bool
	}{
		{"held scope is held", Scopes{"read", "write"}, "write", true, false},
		{"missing scope is not held", Scopes{"read"}, "write", false, false},
		{"scope match is exact, not prefix", Scopes{"read"}, "rea", false, false},
		{"scope match is case-sensitive", Scopes{"read"}, "READ", false, false},
		{"admin holds every scope", Scopes{"admin"}, "billing:export", true, true},
		{"admin holds admin", Scopes{"read", "admin"}, "admin", true, true},
		{"non-admin does not hold admin", Scopes{"read"}, "admin", false, false},
		{"Admin with capital A is not admin", Scopes{"Admin"}, "read", false, false},
		{"nil set holds nothing", nil, "read", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.set.Has(tc.scope); got != tc.has {
				t.Errorf("%q.Has(%q) = %v, want %v", tc.set, tc.scope, got, tc.has)
			}
			if got := tc.set.IsAdmin(); got != tc.isAdmin {
				t.Errorf("%q.IsAdmin() = %v, want %v", tc.set, got, tc.isAdmin)
			}
		})
	}
}

func TestValidateScopes(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		valid  bool
	}{
		{"no scopes is valid", nil, true},
		{"plain words are valid", []string{"read", "write"}, true},
		{"URI-like and punctuated scopes are valid", []string{"tools:call", "a.b-c_d/e", "https://x.test/s"}, true},
		{"128-character scope is valid", []string{strings.Repeat("s", 128)}, true},
		{"empty scope is refused", []string{"read", ""}, false},
		{"129-character scope is refused", []string{strings.Repeat("s", 129)}, false},
		{"space inside a scope is refused", []string{"read write"}, false},
		{"tab inside a scope is refused", []string{"read\twrite"}, false},
		{"double quote is refused", []string{`a"b`}, false},
		{"backslash is refused", []string{`a\b`}, false},
		{"non-ASCII is refused", []string{"lecture-é"}, false},
		{"DEL is refused", []string{"a\x7f"}, false},
		{"newline is refused", []string{"read\n"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateScopes(tc.scopes)
			if tc.valid {
				if err != nil {
					t.Fatalf("ValidateScopes(%q) = %v, want nil", tc.scopes, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidScope) {
				t.Fatalf("ValidateScopes(%q) = %v, want ErrInvalidScope", tc.scopes, err)
			}
		})
	}
}

// BenchmarkParseScopesLong parses a scope list as long as a request
// header allows (64 KiB): an outsider's /authorize scope parameter.
func BenchmarkParseScopesLong(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 63<<10; i++ {
		sb.WriteString("s")
		sb.WriteString(strings.Repeat("x", i%3))
		sb.WriteString(string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26)) + " ")
	}
	in := sb.String()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		ParseScopes(in)
	}
}
