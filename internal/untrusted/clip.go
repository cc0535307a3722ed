// Package untrusted bounds what mcpauth echoes of untrusted input (a
// client id, a tool name, a claimed issuer) in errors and log lines.
package untrusted

import "unicode/utf8"

// Clip bounds an untrusted string to n bytes (plus an ellipsis) before
// it is echoed in an error or a log line. It cuts on a character
// boundary, so valid UTF-8 stays valid.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
