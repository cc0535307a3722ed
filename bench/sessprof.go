package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/transport"
)

// sessionProfile attributes the memory of an open SSE session: the same
// server built in this process by mcpauth.New (as cmd/mcpauth builds it),
// n streams opened by the raw client (which starts no goroutines of its
// own), and the difference in goroutines, stack and live heap per
// session, plus the live-heap profile by allocation site.
type sessionProfile struct {
	n                   int
	goroutinesPer       float64
	stackPer, heapPer   float64
	top                 string
	heapAfter, heapBase uint64
	// cum is the inuse-space share of selected functions (0..1).
	cum map[string]float64
}

// clientShare is the part of the live heap that is the raw client's own
// (its connections and buffers), which the per-session figures exclude.
func (p sessionProfile) clientShare() float64 { return p.cum["main.openRawSSE"] }

// serverHeapPer is the live heap per session without the client's part.
func (p sessionProfile) serverHeapPer() float64 { return p.heapPer * (1 - p.clientShare()) }

func profileSessions(ctx context.Context, tmp string, n int) (sessionProfile, error) {
	res := sessionProfile{n: n}
	secret := []byte("bench-secret-0123456789abcdef-0123456789")
	reg, err := registry.OpenSQLite(ctx, filepath.Join(tmp, "sessprof.db"))
	if err != nil {
		return res, err
	}
	defer reg.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	addr := ln.Addr().String()
	logger := slog.New(slog.DiscardHandler)
	srv, err := mcpauth.New(ctx, mcpauth.Config{
		Secret: secret, PublicURL: "http://" + addr, Registry: reg, Version: "bench", Logger: logger,
		MaxStreamsPerClient: n + 8, // one client opens them all here
	})
	if err != nil {
		ln.Close()
		return res, err
	}
	defer srv.Close()
	tok, err := srv.Issuer.Issue(ctx, auth.IssueRequest{ClientID: "bench-client", Expiry: auth.Expiry{Duration: time.Hour}, Scopes: []string{"admin"}, Caller: benchAdmin()})
	if err != nil {
		ln.Close()
		return res, err
	}
	h := srv.HTTP
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- transport.Serve(sctx, ln, h, logger) }()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
	}()

	// One warm-up stream, then the baseline.
	if s, err := openRawSSE(ctx, addr, tok.Token); err == nil {
		s.conn.Close()
	} else {
		return res, err
	}
	time.Sleep(200 * time.Millisecond)
	g0, st0, hp0 := memNow()
	streams := make([]*rawStream, 0, n)
	defer func() {
		for _, s := range streams {
			s.conn.Close()
		}
	}()
	for range n {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := openRawSSE(octx, addr, tok.Token)
		cancel()
		if err != nil {
			return res, err
		}
		streams = append(streams, s)
	}
	time.Sleep(200 * time.Millisecond)
	g1, st1, hp1 := memNow()
	res.goroutinesPer = float64(g1-g0) / float64(n)
	res.stackPer = float64(st1-st0) / float64(n)
	res.heapPer = float64(hp1-hp0) / float64(n)
	res.heapBase, res.heapAfter = hp0, hp1

	pf := filepath.Join(tmp, "sessions.heap")
	f, err := os.Create(pf)
	if err != nil {
		return res, err
	}
	runtime.GC()
	err = pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	if err != nil {
		return res, err
	}
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=25", exe, pf).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return res, fmt.Errorf("go tool pprof: %v: %s", err, ee.Stderr)
		}
		return res, err
	}
	res.top = trimPprofHeader(string(out))
	res.cum = map[string]float64{}
	if cumOut, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-sample_index=inuse_space", "-nodecount=400", exe, pf).Output(); err == nil {
		for _, fn := range []string{"main.openRawSSE", "transport.(*sseServer).serveStream", "net/http.(*conn).readRequest", "net/http.(*conn).serve",
			"transport.(*HTTP).openSSE.func1", "transport.(*sessionTable).sseSessionID", "transport.(*sseServer).streamConn", "net/http.(*Server).Serve"} {
			res.cum[fn] = cumShare(string(cumOut), fn)
		}
		res.cum["bufio"] = flatShare(string(cumOut), "bufio.NewReaderSize") + flatShare(string(cumOut), "bufio.NewWriterSize")
	}
	return res, nil
}

// memNow returns the goroutine count, stack in use and live heap after a
// full collection.
func memNow() (int, uint64, uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.StackInuse, m.HeapAlloc
}
