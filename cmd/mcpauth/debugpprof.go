//go:build debugpprof

package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/mcpauth/mcpauth/transport"
)

// Only in a binary built with -tags debugpprof (the benchmark harness
// builds one when BENCH_SERVER_PPROF is set; release builds have none of
// this): debugPprofEnv names a loopback address on which `mcpauth serve`
// serves Go's profiles (/debug/pprof/) and POST /debug/freeosmemory, for
// memory investigations (bench -soak). Unauthenticated, so refused unless
// the address is loopback.
const debugPprofEnv = "MCPAUTH_DEBUG_PPROF"

func init() {
	// MCPAUTH_DEBUG_MEMPROFILERATE sets runtime.MemProfileRate from the
	// start (e.g. 4096 to account for a few MiB; the profile's buckets
	// then take memory of their own, never freed).
	if r, err := strconv.Atoi(os.Getenv("MCPAUTH_DEBUG_MEMPROFILERATE")); err == nil && r > 0 {
		runtime.MemProfileRate = r
	}
}

func serveDebugPprof(logger *slog.Logger) {
	addr := os.Getenv(debugPprofEnv)
	if addr == "" {
		return
	}
	if !transport.IsLoopback(addr) {
		logger.Warn(debugPprofEnv+" ignored: not a loopback address", "addr", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A GC and every free page back to the OS: what RSS would be if the
	// runtime returned all it holds (separates retained state from
	// runtime retention).
	mux.HandleFunc("POST /debug/freeosmemory", func(w http.ResponseWriter, _ *http.Request) {
		debug.FreeOSMemory()
		w.WriteHeader(http.StatusNoContent)
	})
	go func() {
		logger.Warn("serving Go profiles (debug only)", "addr", addr)
		if err := http.ListenAndServe(addr, mux); err != nil {
			logger.Warn("debug pprof server stopped", "err", err)
		}
	}()
}
