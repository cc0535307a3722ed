//go:build !debugpprof

package main

import "log/slog"

// serveDebugPprof serves nothing: only a binary built with -tags
// debugpprof serves Go's profiles (debugpprof.go).
func serveDebugPprof(*slog.Logger) {}
