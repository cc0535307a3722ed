// Package untrusted bounds what mcpauth echoes of untrusted input (a
// client id, a tool name, a claimed issuer) in errors and log lines.
package untrusted

// Clip bounds an untrusted string to n bytes (plus an ellipsis) before
// it is echoed in an error or a log line.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
