package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateClientID(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		valid bool
	}{
		{"single letter is valid", "a", true},
		{"hyphenated name is valid", "my-app", true},
		{"dots, underscores and digits are valid", "research.bot_2", true},
		{"upper-case letters are valid", "MyApp", true},
		{"128 characters is valid", strings.Repeat("a", 128), true},
		{"empty id is refused", "", false},
		{"129 characters is refused", strings.Repeat("a", 129), false},
		{"space is refused", "a b", false},
		{"non-ASCII letter is refused", "é", false},
		{"slash is refused", "a/b", false},
		{"trailing newline is refused", "a\n", false},
		{"HTML is refused", "<script>", false},
		{"NUL byte is refused", "a\x00b", false},
		{"colon is refused", "a:b", false},
		{"quote is refused", `a"b`, false},
		{"very long id is refused", strings.Repeat("a", 1<<16), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateClientID(tc.id)
			if tc.valid {
				if err != nil {
					t.Fatalf("ValidateClientID(%q) = %v, want nil", tc.id, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidClientID) {
				t.Fatalf("ValidateClientID(%q) = %v, want ErrInvalidClientID", tc.id, err)
			}
			if len(tc.id) > 8 && strings.Contains(err.Error(), tc.id) {
				t.Fatalf("error echoes the whole rejected id: %q", err)
			}
		})
	}
}
