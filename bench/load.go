package main

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadResult is one (server, transport) run of the load test.
type loadResult struct {
	server    string
	transport string
	clients   int
	requests  int
	errors    int
	firstErr  string
	dur       time.Duration
	rps       float64
	p50, p99  time.Duration
	p90, max  time.Duration
	serverCPU time.Duration // CPU time the server used while measured
	clientCPU time.Duration // CPU time this harness used while measured
	alsoCPU   time.Duration // CPU time of the processes behind the server (drive's also)
	otherCPU  time.Duration // CPU time every other process used meanwhile
	// Over all rounds of this (server, transport), set by medianRounds:
	// the median server CPU per request and the range of throughput.
	rounds       int
	medCPUReq    time.Duration
	rpsLo, rpsHi float64
	byRound      []loadResult // every round, in order
}

func sumCPU(ps []*proc) time.Duration {
	var t time.Duration
	for _, p := range ps {
		t += p.cpuTime()
	}
	return t
}

// per divides d by the run's calls.
func (r loadResult) per(d time.Duration) time.Duration {
	if r.requests == 0 {
		return 0
	}
	return d / time.Duration(r.requests)
}

// otherUtil is what unrelated processes used while measured, in cores.
func (r loadResult) otherUtil() float64 { return r.otherCPU.Seconds() / r.dur.Seconds() }

func (r loadResult) cpuPerReq() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(r.requests)
}

// serverUtil is the server's CPU use while measured, in cores.
func (r loadResult) serverUtil() float64 { return r.serverCPU.Seconds() / r.dur.Seconds() }
func (r loadResult) clientUtil() float64 { return r.clientCPU.Seconds() / r.dur.Seconds() }

// caller is one client of a load run: callOnce makes one call and waits
// for its answer.
type caller interface {
	callOnce(ctx context.Context) error
	close()
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drive runs clients closed-loop callers (each sends its next call when the
// previous answer arrives) for warmup+dur and measures the calls that
// start and finish inside the measured window. The CPU time of srv, and
// of every process in also (an upstream behind srv), is read over that
// window.
func drive(ctx context.Context, srv *proc, clients int, warmup, dur time.Duration, open func(ctx context.Context) (caller, error), also ...*proc) (loadResult, error) {
	res := loadResult{clients: clients, dur: dur}
	cs := make([]caller, clients)
	{
		var wg sync.WaitGroup
		errs := make([]error, clients)
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cs[i], errs[i] = open(octx)
			}()
		}
		wg.Wait()
		cancel()
		for i, err := range errs {
			if err != nil {
				for j, c := range cs {
					if errs[j] == nil { // a failed open may leave a typed nil
						c.close()
					}
				}
				return res, fmt.Errorf("open client %d: %w", i, err)
			}
		}
	}
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()

	var (
		recording atomic.Bool
		stopped   atomic.Bool
		recStart  atomic.Int64
		errCount  atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
		lats      = make([][]time.Duration, clients)
	)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 1<<15)
			for !stopped.Load() && rctx.Err() == nil {
				t0 := time.Now()
				cctx, ccancel := context.WithTimeout(rctx, 10*time.Second)
				err := c.callOnce(cctx)
				ccancel()
				d := time.Since(t0)
				if stopped.Load() {
					break
				}
				if err != nil {
					if rctx.Err() != nil {
						break
					}
					if errCount.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					if errCount.Load() > 100 {
						cancel()
					}
					continue
				}
				if recording.Load() && t0.UnixNano() >= recStart.Load() {
					l = append(l, d)
				}
			}
			lats[i] = l
		}()
	}
	select {
	case <-time.After(warmup):
	case <-rctx.Done():
	}
	cpu0, self0, sys0, also0 := srv.cpuTime(), selfCPU(), systemBusy(), sumCPU(also)
	recStart.Store(time.Now().UnixNano())
	recording.Store(true)
	t0 := time.Now()
	select {
	case <-time.After(dur):
	case <-rctx.Done():
	}
	stopped.Store(true)
	res.dur = time.Since(t0)
	res.serverCPU, res.clientCPU, res.alsoCPU = srv.cpuTime()-cpu0, selfCPU()-self0, sumCPU(also)-also0
	res.otherCPU = max(0, systemBusy()-sys0-res.serverCPU-res.clientCPU-res.alsoCPU)
	wg.Wait()
	res.errors = int(errCount.Load())
	if v, ok := firstErr.Load().(string); ok {
		res.firstErr = v
	}
	if res.errors > 100 {
		return res, fmt.Errorf("%d errors, first: %s", res.errors, res.firstErr)
	}
	all := make([]time.Duration, 0, 1<<16)
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.requests = len(all)
	res.rps = float64(len(all)) / res.dur.Seconds()
	res.p50, res.p90, res.p99 = pct(all, 50), pct(all, 90), pct(all, 99)
	if len(all) > 0 {
		res.max = all[len(all)-1]
	}
	return res, nil
}

// pct is the p-th percentile of sorted (nearest rank).
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// runLoad measures tools/call whoami over both transports against
// mcpauth with and without auth, the bare mcp-go and Go SDK peers
// (peers.go) and the TypeScript SDK peer, one server process at a time.
func runLoad(ctx context.Context, o options, env *serverEnv, token, tmp string) ([]loadResult, []*perfProfile, error) {
	var peerDir string
	if !o.skipPeer {
		log.Print("npm ci (bench/peer)")
		d, err := installPeer(ctx)
		if err != nil {
			return nil, nil, err
		}
		peerDir = d
	}
	serverCPUs := ""
	if o.pin {
		if err := pinSelf("1"); err != nil {
			return nil, nil, err
		}
		prev := runtime.GOMAXPROCS(1)
		defer func() { runtime.GOMAXPROCS(prev); unpinSelf() }()
		serverCPUs = "0"
	}
	hc := newHTTPClient(o.clients*2 + 16)
	defer hc.CloseIdleConnections()

	type srvSpec struct {
		name  string
		start func() (*proc, error)
	}
	specs := []srvSpec{
		{"mcpauth (auth)", func() (*proc, error) { return startMcpauth(ctx, env, "mcpauth-auth", false, serverCPUs) }},
		{"mcpauth (auth disabled)", func() (*proc, error) { return startMcpauth(ctx, env, "mcpauth-noauth", true, serverCPUs) }},
	}
	if !o.skipBare || !o.skipGoSDK {
		// The Go peers answer whoami with what mcpauth answers for this
		// token: fetch it once, and check each peer's answer on start.
		resultFile := filepath.Join(tmp, "whoami-result.json")
		srv, err := startMcpauth(ctx, env, "mcpauth-whoami", false, serverCPUs)
		if err != nil {
			return nil, nil, err
		}
		want, err := fetchWhoami(ctx, hc, srv.url, token, resultFile)
		srv.stop()
		hc.CloseIdleConnections()
		if err != nil {
			return nil, nil, fmt.Errorf("whoami from mcpauth for the Go peers: %w", err)
		}
		goPeer := func(kind string) func() (*proc, error) {
			return func() (*proc, error) {
				p, err := startGoPeer(ctx, env, kind, resultFile, serverCPUs)
				if err != nil {
					return nil, err
				}
				if err := sameResult(ctx, hc, p.url, token, want); err != nil {
					p.stop()
					return nil, fmt.Errorf("peer %s: %w", kind, err)
				}
				hc.CloseIdleConnections()
				return p, nil
			}
		}
		if !o.skipBare {
			specs = append(specs, srvSpec{bareName, goPeer("mcpgo")})
		}
		if !o.skipGoSDK {
			specs = append(specs, srvSpec{gosdkName, goPeer("gosdk")})
		}
	}
	if peerDir != "" {
		specs = append(specs, srvSpec{"TS SDK 1.32.2 (requireBearerAuth)", func() (*proc, error) { return startPeer(ctx, env, peerDir, serverCPUs) }})
	}
	var (
		out   []loadResult
		profs []*perfProfile
	)
	// Rounds alternate the servers, so drift on a shared machine hits
	// them alike; each (server, transport) reports its median round.
	for round := 0; round < max(o.rounds, 1); round++ {
		for _, s := range specs {
			srv, err := s.start()
			if err != nil {
				return nil, nil, err
			}
			for _, tr := range []string{"streamable-http", "sse"} {
				waitQuiet("load", o.quietWait)
				log.Printf("load: round %d: %s over %s, %d clients, %s (+%s warm-up)", round+1, s.name, tr, o.clients, o.duration, o.warmup)
				open := func(ctx context.Context) (caller, error) {
					if tr == "sse" {
						return openSSE(ctx, hc, srv.url, token)
					}
					return openStreamable(ctx, hc, srv.url, token)
				}
				r, err := drive(ctx, srv, o.clients, o.warmup, o.duration, open)
				if err != nil {
					srv.stop()
					return nil, nil, fmt.Errorf("%s over %s: %w (server output: %s)", s.name, tr, err, srv.output())
				}
				r.server, r.transport = s.name, tr
				log.Printf("  %.0f req/s  p50 %s  p99 %s  server CPU %.0f µs/req (%.2f cores), client %.2f cores, other processes %.2f cores, errors %d",
					r.rps, r.p50, r.p99, float64(r.cpuPerReq().Nanoseconds())/1e3, r.serverUtil(), r.clientUtil(), r.otherUtil(), r.errors)
				out = append(out, r)
				hc.CloseIdleConnections()
			}
			if round == 0 && strings.HasPrefix(s.name, "mcpauth") && havePerf() && !o.loadOnly {
				log.Printf("load: perf profile of %s over streamable-http (separate 4s run)", s.name)
				p, err := perfRun(ctx, srv, o, tmp, strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(s.name), func(ctx context.Context) (caller, error) {
					return openStreamable(ctx, hc, srv.url, token)
				})
				if err != nil {
					log.Printf("perf profile skipped: %v", err)
				} else {
					p.server = s.name
					profs = append(profs, p)
				}
				hc.CloseIdleConnections()
			}
			srv.stop()
		}
	}
	return medianRounds(out), profs, nil
}

// medianRounds keeps, for each (server, transport), the round with the
// median throughput, in first-seen order, noting the median CPU per
// request over the rounds and their throughput range.
func medianRounds(all []loadResult) []loadResult {
	type key struct{ server, transport string }
	groups := map[key][]loadResult{}
	var order []key
	for _, r := range all {
		k := key{r.server, r.transport}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]loadResult, 0, len(order))
	for _, k := range order {
		g := groups[k]
		byRound := slices.Clone(g)
		cpus := make([]time.Duration, len(g))
		for i, r := range g {
			cpus[i] = r.cpuPerReq()
		}
		slices.Sort(cpus)
		sort.Slice(g, func(i, j int) bool { return g[i].rps < g[j].rps })
		m := g[len(g)/2]
		m.rounds, m.medCPUReq, m.rpsLo, m.rpsHi, m.byRound = len(g), cpus[len(cpus)/2], g[0].rps, g[len(g)-1].rps, byRound
		out = append(out, m)
	}
	return out
}
