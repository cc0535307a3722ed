package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// perfProfile is a `perf record -g` profile of a server process under the
// load of one run (the mcpauth binary serves no pprof endpoint).
type perfProfile struct {
	server string
	top    string             // flat (self) top symbols
	cum    map[string]float64 // children share (0..1) of selected symbols
	cpuReq time.Duration      // server CPU per request in that run
}

var perfSymbols = []string{
	"auth.(*Verifier).Verify", "auth.checkMembers", "golang-jwt/jwt/v5.(*Parser).ParseWithClaims",
	"server.(*MCPServer).HandleMessage", "server.(*StreamableHTTPServer).ServeHTTP", "net/http.(*conn).serve",
	"encoding/json.Unmarshal", "encoding/json.Marshal", "runtime.mallocgc", "runtime.gcBgMarkWorker", "runtime.gcAssistAlloc",
	"auth.BearerToken", "bearer.ClientAddress", "activity.(*Tracker).Seen", "throttle.(*Limiter).Blocked", "internal/runtime/syscall.Syscall6", "runtime.netpoll",
}

var debugPerf = false

func havePerf() bool {
	_, err := exec.LookPath("perf")
	return err == nil
}

// perfRun drives a short load run while `perf record` samples the server.
func perfRun(ctx context.Context, srv *proc, o options, tmp, name string, open func(ctx context.Context) (caller, error)) (*perfProfile, error) {
	data := filepath.Join(tmp, "perf-"+name+".data")
	warm, dur := time.Second, 3*time.Second
	rec := exec.CommandContext(ctx, "perf", "record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(srv.pid()), "-o", data,
		"--", "sleep", strconv.Itoa(int((warm + dur + time.Second).Seconds())))
	if err := rec.Start(); err != nil {
		return nil, err
	}
	r, err := drive(ctx, srv, o.clients, warm, dur, open)
	werr := rec.Wait()
	if err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, fmt.Errorf("perf record: %w", werr)
	}
	p := &perfProfile{server: name, cum: map[string]float64{}, cpuReq: r.cpuPerReq()}
	flat, err := exec.CommandContext(ctx, "perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "symbol",
		"-g", "none", "--percent-limit", "1").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	p.top = cleanPerf(string(flat), 28)
	if debugPerf {
		out, _ := exec.CommandContext(ctx, "perf", "report", "-i", data, "--stdio", "--children", "--sort", "symbol", "-g", "none", "--percent-limit", "0.3").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "mcpauth/auth") || strings.Contains(l, "HandleMessage") || strings.Contains(l, "gcBgMark") || strings.Contains(l, "throttle") || strings.Contains(l, "activity") {
				fmt.Println(strings.Join(trimDashes(strings.Fields(l)), " "))
			}
		}
	}
	children, err := exec.CommandContext(ctx, "perf", "report", "-i", data, "--stdio", "--children", "--sort", "symbol",
		"-g", "none", "--percent-limit", "0.3").Output()
	if err == nil {
		for _, l := range strings.Split(string(children), "\n") {
			f := strings.Fields(l)
			// Children Self [.] symbol
			if len(f) < 4 || !strings.HasSuffix(f[0], "%") {
				continue
			}
			f = trimDashes(f)
			sym := strings.Join(f[3:], " ")
			for _, want := range perfSymbols {
				if strings.HasSuffix(sym, want) {
					v, _ := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
					p.cum[want] = max(p.cum[want], v/100)
				}
			}
		}
	}
	return p, nil
}

// cleanPerf keeps the sample lines of perf report output, at most n.
func cleanPerf(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		keep = append(keep, strings.Join(trimDashes(strings.Fields(l)), "  "))
		if len(keep) == n {
			break
		}
	}
	return strings.Join(keep, "\n")
}

// trimDashes drops perf's empty trailing columns ("-").
func trimDashes(f []string) []string {
	for len(f) > 0 && f[len(f)-1] == "-" {
		f = f[:len(f)-1]
	}
	return f
}
