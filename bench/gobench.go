package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// goBench is one line of go test -bench output.
type goBench struct {
	pkg    string
	name   string // without the -GOMAXPROCS suffix
	procs  string
	iters  int64
	nsOp   float64
	mbS    float64
	bOp    float64
	allocs float64
}

type goBenchResults struct {
	// otherCores is what unrelated processes used while the benchmarks
	// ran (cores), so a reader can tell a disturbed run.
	otherCores float64
	list       []goBench
	raw        string
	profiles   []profile
}

type profile struct {
	title string
	cmd   string
	top   string
	// cum is the cumulative share (0..1) of selected functions.
	cum map[string]float64
}

func (g *goBenchResults) get(name string) (goBench, bool) {
	for _, b := range g.list {
		if b.name == name {
			return b, true
		}
	}
	return goBench{}, false
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

func parseBench(pkg, out string) []goBench {
	var list []goBench
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		b := goBench{pkg: pkg, name: m[1], procs: strings.TrimPrefix(m[2], "-")}
		b.iters, _ = strconv.ParseInt(m[3], 10, 64)
		f := strings.Fields(m[4])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.nsOp = v
			case "MB/s":
				b.mbS = v
			case "B/op":
				b.bOp = v
			case "allocs/op":
				b.allocs = v
			}
		}
		list = append(list, b)
	}
	return list
}

func goTest(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go test %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// runGoBenchmarks runs every benchmark of ./auth and ./transport, then
// profiles Verify (CPU, allocations) and one in-process tools/call.
func runGoBenchmarks(ctx context.Context, o options, tmp string) (*goBenchResults, error) {
	res := &goBenchResults{}
	t0, sys0, self0, kids0 := time.Now(), systemBusy(), selfCPU(), childrenCPU()
	defer func() {
		other := systemBusy() - sys0 - (selfCPU() - self0) - (childrenCPU() - kids0)
		res.otherCores = max(0, other.Seconds()/time.Since(t0).Seconds())
	}()
	for _, pkg := range []string{"./auth", "./transport"} {
		out, err := goTest(ctx, "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", o.benchtime, "-count", strconv.Itoa(o.benchCount), pkg)
		if err != nil {
			return nil, err
		}
		res.raw += out
		res.list = append(res.list, bestOf(parseBench(pkg, out))...)
	}

	type spec struct {
		title, pkg, bench, kind string
		nodes                   int
		focus                   []string
	}
	specs := []spec{
		{"Verify, CPU", "./auth", "^BenchmarkVerify$", "cpu", 22, []string{
			"encoding/json.Unmarshal", "jwt/v5.(*Parser).ParseUnverified", "jwt/v5.(*SigningMethodHMAC).Verify", "auth.checkMembers",
			"crypto/hmac.New", "encoding/base64.(*Encoding).DecodeString", "jwt/v5.(*Validator).Validate", "runtime.mallocgc",
		}},
		{"Verify, allocations (objects)", "./auth", "^BenchmarkVerify$", "alloc", 18, nil},
		{"tools/call whoami in-process (auth on), CPU", "./transport", "^BenchmarkToolsCallStreamable$", "cpu", 30, []string{
			"auth.(*Verifier).Verify", "server.(*MCPServer).HandleMessage", "server.(*StreamableHTTPServer).ServeHTTP",
			"encoding/json.Unmarshal", "encoding/json.Marshal", "runtime.mallocgc", "runtime.gcBgMarkWorker",
		}},
	}
	for i, s := range specs {
		bin := filepath.Join(tmp, fmt.Sprintf("prof%d.test", i))
		pf := filepath.Join(tmp, fmt.Sprintf("prof%d.out", i))
		args := []string{"-run", "^$", "-bench", s.bench, "-benchmem", "-benchtime", "2s", "-o", bin}
		if s.kind == "cpu" {
			args = append(args, "-cpuprofile", pf)
		} else {
			args = append(args, "-memprofile", pf, "-memprofilerate", "1")
		}
		if _, err := goTest(ctx, append(args, s.pkg)...); err != nil {
			return nil, err
		}
		top := []string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", s.nodes)}
		if s.kind == "alloc" {
			top = append(top, "-sample_index=alloc_objects")
		}
		out, err := exec.CommandContext(ctx, "go", append(top, bin, pf)...).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof: %w", err)
		}
		p := profile{
			title: s.title,
			cmd:   fmt.Sprintf("go test -run '^$' -bench '%s' -benchtime 2s %s %s && go tool pprof -top%s", s.bench, map[string]string{"cpu": "-cpuprofile cpu.out", "alloc": "-memprofile mem.out -memprofilerate 1"}[s.kind], s.pkg, map[string]string{"cpu": "", "alloc": " -sample_index=alloc_objects"}[s.kind]),
			top:   trimPprofHeader(string(out)),
			cum:   map[string]float64{},
		}
		if len(s.focus) > 0 {
			cumOut, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=400", bin, pf).Output()
			if err == nil {
				for _, f := range s.focus {
					p.cum[f] = cumShare(string(cumOut), f)
				}
			}
		}
		res.profiles = append(res.profiles, p)
	}
	return res, nil
}

// trimPprofHeader drops pprof's File/Build ID/Time lines.
func trimPprofHeader(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// cumShare finds fn's cum% in `pprof -top -cum` output (0 when absent).
func cumShare(out, fn string) float64 {
	best := 0.0
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(f[len(f)-1], fn) {
			continue
		}
		// flat flat% sum% cum cum% name
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err == nil && v/100 > best {
			best = v / 100
		}
	}
	return best
}

// flatShare finds fn's flat% in pprof -top output (0 when absent).
func flatShare(out, fn string) float64 {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(strings.Join(f[5:], " "), fn) && !strings.HasPrefix(strings.Join(f[5:], " "), fn) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		if err == nil {
			return v / 100
		}
	}
	return 0
}

// bestOf keeps, per benchmark, the fastest of its -count runs (the one
// least disturbed by anything else running on the machine).
func bestOf(list []goBench) []goBench {
	var out []goBench
	idx := map[string]int{}
	for _, b := range list {
		i, ok := idx[b.name]
		if !ok {
			idx[b.name] = len(out)
			out = append(out, b)
			continue
		}
		if b.nsOp < out[i].nsOp {
			out[i] = b
		}
	}
	return out
}
