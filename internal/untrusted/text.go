package untrusted

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text makes an untrusted string (a client's self-chosen name) safe to
// show as one line of a listing an admin, or the admin's assistant, reads:
// control and format characters (newlines, tabs, bidirectional overrides,
// zero-width characters) and line separators become spaces, so the string
// cannot start a line of its own or reorder what is shown around it; runs
// of spaces collapse to one; invalid UTF-8 is dropped; the result is
// trimmed and clipped to n bytes on a character boundary.
func Text(s string, n int) string {
	var b strings.Builder
	b.Grow(min(len(s), n+len("…")))
	space := true // drops leading spaces
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) ||
			unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			if r == utf8.RuneError || space {
				continue
			}
			r, space = ' ', true
		} else {
			space = false
		}
		b.WriteRune(r)
	}
	return Clip(strings.TrimRight(b.String(), " "), n)
}
