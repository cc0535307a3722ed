package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The gateway benchmarks (issue 11, "Performance"): tools/call relayed by
// mcpauth to an upstream MCP server, against calling that upstream
// directly, side by side in one run.
//
//   - HTTP upstream: `bench upstream http` (this binary re-executed: an
//     mcp-go Streamable HTTP server with an "echo" tool) in its own
//     process; the gateway is the `mcpauth serve` binary with MCP_UPSTREAMS
//     naming it. N callers in closed loops call echo directly or up__echo
//     through mcpauth (throughput), then 1 caller each way (latency).
//   - stdio upstream: `bench upstream stdio -delay 20ms`, a child of
//     mcpauth whose "wait" tool answers after 20 ms; 1 caller, then 32
//     concurrent callers, call slow__wait through mcpauth.

const (
	targetGatewayThroughput = 0.90
	targetStdioMultiplex    = 20.0
	targetGatewayAddedP50   = 100 * time.Microsecond
	gatewayStdioCallers     = 32
	gatewayStdioDelay       = 20 * time.Millisecond
	gatewayEchoArgs         = `{"text":"hello from the gateway benchmark"}`
	// gatewayWork is the CPU the upstream's work tool spends per call.
	gatewayWork  = time.Millisecond
	gatewayScope = "tools:call"
)

type gatewayResults struct {
	clients     int
	rounds      int
	dur, warmup time.Duration
	pinned      bool
	tokenLen    int
	// direct and via: N callers; latDirect and latVia: 1 caller; each
	// the median of the rounds.
	direct, via       loadResult
	latDirect, latVia loadResult
	// directWork and viaWork: N callers of the tool that works
	// gatewayWork per call.
	directWork, viaWork loadResult
	// spread is the lowest and highest calls/s over the rounds, by
	// "server/callers".
	spread map[string][2]float64
	// relayTCP and relayHTTP: N callers of echo through the floors in
	// mcpauth's place (relay.go); latRelayTCP and latRelayHTTP: 1 caller.
	relayTCP, relayHTTP       loadResult
	latRelayTCP, latRelayHTTP loadResult
	// latOwn: 1 caller of mcpauth's own whoami on the same process (one
	// hop to mcpauth, nothing relayed), for reference.
	latOwn loadResult
	// stdio1 and stdioN: 1 and gatewayStdioCallers callers of the 20 ms
	// tool through mcpauth.
	stdio1, stdioN loadResult
	// prof is a perf profile of the mcpauth process relaying the N-caller
	// load, taken when a target is missed.
	prof *perfProfile
	// profCum is the same profile by inclusive time (Go symbols only).
	profCum string
	// shares are inclusive shares (0..1) of mcpauth's CPU by part; see
	// gatewayParts.
	shares map[string]float64
	// started, elapsed and command of the run that measured this.
	started time.Time
	elapsed time.Duration
	command string
	machine machine
}

// throughputRatio is via/direct, the median of the rounds' ratios
// (pairedRatio: the machine's speed drifts between rounds).
func (g *gatewayResults) throughputRatio() float64 {
	r, _ := pairedRatio(g.via, g.direct, rpsOf)
	return r
}

func (g *gatewayResults) workRatio() float64 {
	r, _ := pairedRatio(g.viaWork, g.directWork, rpsOf)
	return r
}

// pairedHow says how pairedRatio took a throughput ratio.
func pairedHow(a, b loadResult) string {
	_, how := pairedRatio(a, b, rpsOf)
	return how
}

func (g *gatewayResults) multiplexRatio() float64 {
	if g.stdio1.rps == 0 {
		return 0
	}
	return g.stdioN.rps / g.stdio1.rps
}

func (g *gatewayResults) addedP50() time.Duration { return g.latVia.p50 - g.latDirect.p50 }

func (g *gatewayResults) targets() []target {
	if g == nil || g.direct.requests == 0 {
		return nil
	}
	ts := []target{
		{fmt.Sprintf("gateway: tools/call throughput via mcpauth vs the HTTP upstream directly, %d callers", g.clients), "≥ 90%",
			fmt.Sprintf("%.1f%% (%s; medians %.0f vs %.0f calls/s%s)", 100*g.throughputRatio(), pairedHow(g.via, g.direct), g.via.rps, g.direct.rps, g.floorsThroughput()), g.throughputRatio() >= targetGatewayThroughput, true},
	}
	if g.directWork.requests > 0 {
		ts = append(ts, target{fmt.Sprintf("gateway: the same with an upstream tool that computes %s per call, %d callers", gatewayWork, g.clients), "≥ 90%",
			fmt.Sprintf("%.1f%% (%s; medians %.0f vs %.0f calls/s)", 100*g.workRatio(), pairedHow(g.viaWork, g.directWork), g.viaWork.rps, g.directWork.rps), g.workRatio() >= targetGatewayThroughput, true})
	}
	if g.stdio1.requests > 0 {
		ts = append(ts, target{fmt.Sprintf("gateway: stdio upstream with a %s tool, %d callers vs 1 (calls/s)", gatewayStdioDelay, gatewayStdioCallers), "≥ 20×",
			fmt.Sprintf("%.1f× (%.0f vs %.1f calls/s)", g.multiplexRatio(), g.stdioN.rps, g.stdio1.rps), g.multiplexRatio() >= targetStdioMultiplex, true})
	}
	if g.latDirect.requests > 0 {
		ts = append(ts, target{"gateway: added p50 latency per call (1 caller, HTTP upstream)", "≤ 100 µs",
			fmt.Sprintf("%s (p50 %s via mcpauth vs %s direct%s)", us(g.addedP50()), us(g.latVia.p50), us(g.latDirect.p50), g.floorsLatency()), g.addedP50() <= targetGatewayAddedP50, true})
	}
	return ts
}

// relayTCPName and relayHTTPName are the floors' rows (relay.go).
const (
	relayTCPName  = "floor: TCP relay (bytes only)"
	relayHTTPName = "floor: net/http reverse proxy"
)

// startRelay starts the bench binary as the floor of the given kind
// (relay.go) in mcpauth's place: pinned to its CPUs, relaying to the
// upstream at upstreamURL.
func startRelay(ctx context.Context, env *serverEnv, exe, kind, cpus, upstreamURL string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return startProc(ctx, "relay-"+kind, []string{exe, "relay", kind, "-addr", addr, "-to", upstreamURL},
		[]string{"PATH=" + os.Getenv("PATH"), "HOME=" + env.dir}, env.dir, cpus, "http://"+addr)
}

// floorRatios is the throughput the floors in mcpauth's place reached
// against the upstream directly (TCP relay, reverse proxy), ok when both
// were measured.
func (g *gatewayResults) floorRatios() (tcp, proxy float64, ok bool) {
	if g.relayTCP.requests == 0 || g.relayHTTP.requests == 0 {
		return 0, 0, false
	}
	tcp, _ = pairedRatio(g.relayTCP, g.direct, rpsOf)
	proxy, _ = pairedRatio(g.relayHTTP, g.direct, rpsOf)
	return tcp, proxy, true
}

// floorAdded is the p50 latency the floors added to a direct call with
// one caller (TCP relay, reverse proxy), ok when both were measured.
func (g *gatewayResults) floorAdded() (tcp, proxy time.Duration, ok bool) {
	if g.latRelayTCP.requests == 0 || g.latRelayHTTP.requests == 0 {
		return 0, 0, false
	}
	return g.latRelayTCP.p50 - g.latDirect.p50, g.latRelayHTTP.p50 - g.latDirect.p50, true
}

// floorsThroughput is floorRatios for the throughput target's row ("" when
// not measured).
func (g *gatewayResults) floorsThroughput() string {
	t, h, ok := g.floorRatios()
	if !ok {
		return ""
	}
	return fmt.Sprintf("; in mcpauth's place a byte-level TCP relay reached %.1f%%, net/http's reverse proxy %.1f%%", 100*t, 100*h)
}

// floorsLatency is floorAdded for the latency target's row.
func (g *gatewayResults) floorsLatency() string {
	t, h, ok := g.floorAdded()
	if !ok {
		return ""
	}
	return fmt.Sprintf("; in its place a TCP relay added %s, net/http's reverse proxy %s", us(t), us(h))
}

func (g *gatewayResults) missed() bool {
	for _, t := range g.targets() {
		if !t.ok {
			return true
		}
	}
	return false
}

// writeUpstreams writes the upstreams file mcpauth serves: the HTTP
// upstream as "up", the stdio one as "slow", and a deny-by-default policy
// under which both need the tools:call scope.
func writeUpstreams(path, upstreamURL, exe string) error {
	doc := map[string]any{
		"mcpServers": map[string]any{
			"up":   map[string]any{"url": upstreamURL, "type": "http"},
			"slow": map[string]any{"command": exe, "args": []string{"upstream", "stdio", "-delay", gatewayStdioDelay.String()}},
		},
		"policy": map[string]any{
			"default": "deny",
			"tools":   map[string]any{"up__*": []string{gatewayScope}, "slow__*": []string{gatewayScope}},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// runGateway measures the three gateway targets.
func runGateway(ctx context.Context, o options, env *serverEnv, tmp string) (*gatewayResults, error) {
	g := &gatewayResults{clients: o.clients, rounds: max(o.gatewayRounds, 1), dur: o.duration, warmup: o.warmup, pinned: o.pin}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// Placement: the upstream has CPU 0 to itself; mcpauth and the load
	// generator share CPU 1. Calling the upstream directly, the load
	// generator has CPU 1 alone.
	upCPUs, gwCPUs := "", ""
	if o.pin {
		if err := pinSelf("1"); err != nil {
			return nil, err
		}
		prev := runtime.GOMAXPROCS(1)
		defer func() { runtime.GOMAXPROCS(prev); unpinSelf() }()
		upCPUs, gwCPUs = "0", "1"
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	upAddr := "127.0.0.1:" + strconv.Itoa(port)
	up, err := startProc(ctx, "upstream-http", []string{exe, "upstream", "http", "-addr", upAddr},
		[]string{"PATH=" + os.Getenv("PATH"), "HOME=" + env.dir}, env.dir, upCPUs, "http://"+upAddr)
	if err != nil {
		return nil, err
	}
	defer up.stop()
	file := filepath.Join(tmp, "upstreams.json")
	if err := writeUpstreams(file, "http://"+upAddr+"/mcp", exe); err != nil {
		return nil, err
	}
	tok, err := env.mintTokenScopes(ctx, "gateway-bench", gatewayScope)
	if err != nil {
		return nil, err
	}
	g.tokenLen = len(tok)
	gw, err := startMcpauth(ctx, env, "mcpauth-gateway", false, gwCPUs, "MCP_UPSTREAMS="+file)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	tcpRelay, err := startRelay(ctx, env, exe, "tcp", gwCPUs, up.url)
	if err != nil {
		return nil, err
	}
	defer tcpRelay.stop()
	httpRelay, err := startRelay(ctx, env, exe, "http", gwCPUs, up.url)
	if err != nil {
		return nil, err
	}
	defer httpRelay.stop()

	hc := newHTTPClient(max(o.clients, gatewayStdioCallers)*2 + 16)
	defer hc.CloseIdleConnections()
	// opener opens a caller's session on url (with the Bearer token tok,
	// if any) that calls tool with args.
	opener := func(url, tok, tool, args string) func(context.Context) (caller, error) {
		return func(ctx context.Context) (caller, error) {
			c, err := openStreamable(ctx, hc, url, tok)
			if err != nil {
				return nil, err
			}
			return toolCaller{c, tool, args}, nil
		}
	}
	openDirect := opener(up.url, "", "echo", gatewayEchoArgs)
	openVia := opener(gw.url, tok, "up__echo", gatewayEchoArgs)
	openDirectWork := opener(up.url, "", "work", "{}")
	openViaWork := opener(gw.url, tok, "up__work", "{}")
	openOwn := opener(gw.url, tok, "whoami", "{}")
	openSlow := opener(gw.url, tok, "slow__wait", "{}")
	if err := gatewaySanity(ctx, openDirect, openVia); err != nil {
		return nil, fmt.Errorf("%w (mcpauth output: %s)", err, gw.output())
	}

	type run struct {
		name    string
		clients int
		srv     *proc
		open    func(context.Context) (caller, error)
		also    []*proc
	}
	var all []loadResult
	for round := range g.rounds {
		waitQuiet("gateway", o.quietWait)
		runs := []run{
			{"direct", o.clients, up, openDirect, nil},
			{"via mcpauth", o.clients, gw, openVia, []*proc{up}},
			{"direct", 1, up, openDirect, nil},
			{"via mcpauth", 1, gw, openVia, []*proc{up}},
			{"mcpauth's own whoami", 1, gw, openOwn, nil},
			{"direct, work tool", o.clients, up, openDirectWork, nil},
			{"via mcpauth, work tool", o.clients, gw, openViaWork, []*proc{up}},
			{relayTCPName, o.clients, tcpRelay, opener(tcpRelay.url, "", "echo", gatewayEchoArgs), []*proc{up}},
			{relayHTTPName, o.clients, httpRelay, opener(httpRelay.url, "", "echo", gatewayEchoArgs), []*proc{up}},
			{relayTCPName, 1, tcpRelay, opener(tcpRelay.url, "", "echo", gatewayEchoArgs), []*proc{up}},
			{relayHTTPName, 1, httpRelay, opener(httpRelay.url, "", "echo", gatewayEchoArgs), []*proc{up}},
		}
		if round%2 == 1 { // alternate which goes first
			runs[0], runs[1], runs[2], runs[3] = runs[1], runs[0], runs[3], runs[2]
			runs[5], runs[6] = runs[6], runs[5]
			runs[7], runs[8], runs[9], runs[10] = runs[8], runs[7], runs[10], runs[9]
		}
		for _, r := range runs {
			log.Printf("gateway: round %d: %s, %d caller(s), %s (+%s warm-up)", round+1, r.name, r.clients, o.duration, o.warmup)
			res, err := drive(ctx, r.srv, r.clients, o.warmup, o.duration, r.open, r.also...)
			if err != nil {
				return nil, fmt.Errorf("gateway %s, %d callers: %w (mcpauth output: %s)", r.name, r.clients, err, gw.output())
			}
			res.server, res.transport = r.name, strconv.Itoa(r.clients)
			logGatewayRun(res)
			all = append(all, res)
			hc.CloseIdleConnections()
		}
	}
	g.spread = map[string][2]float64{}
	for _, r := range all {
		k := r.server + "/" + r.transport
		sp, ok := g.spread[k]
		if !ok {
			sp = [2]float64{r.rps, r.rps}
		}
		g.spread[k] = [2]float64{min(sp[0], r.rps), max(sp[1], r.rps)}
	}
	med := medianRounds(all)
	for _, r := range med {
		switch {
		case r.server == "mcpauth's own whoami":
			g.latOwn = r
		case r.server == relayTCPName && r.clients == 1:
			g.latRelayTCP = r
		case r.server == relayTCPName:
			g.relayTCP = r
		case r.server == relayHTTPName && r.clients == 1:
			g.latRelayHTTP = r
		case r.server == relayHTTPName:
			g.relayHTTP = r
		case r.server == "direct, work tool":
			g.directWork = r
		case r.server == "via mcpauth, work tool":
			g.viaWork = r
		case r.server == "direct" && r.clients == 1:
			g.latDirect = r
		case r.server == "direct":
			g.direct = r
		case r.clients == 1:
			g.latVia = r
		default:
			g.via = r
		}
	}

	waitQuiet("gateway stdio", o.quietWait)
	for _, n := range []int{1, gatewayStdioCallers} {
		log.Printf("gateway: stdio upstream (%s tool), %d caller(s), %s (+%s warm-up)", gatewayStdioDelay, n, o.duration, o.warmup)
		res, err := drive(ctx, gw, n, o.warmup, o.duration, openSlow)
		if err != nil {
			return nil, fmt.Errorf("gateway stdio, %d callers: %w (mcpauth output: %s)", n, err, gw.output())
		}
		res.server, res.transport = "stdio via mcpauth", strconv.Itoa(n)
		logGatewayRun(res)
		if n == 1 {
			g.stdio1 = res
		} else {
			g.stdioN = res
		}
		hc.CloseIdleConnections()
	}

	if g.missed() && havePerf() {
		log.Printf("gateway: a target is missed; perf profile of mcpauth relaying %d callers (separate run)", o.clients)
		p, err := perfRun(ctx, gw, o, tmp, "gateway", openVia)
		if err != nil {
			log.Printf("perf profile skipped: %v", err)
		} else {
			p.server = "mcpauth (gateway)"
			g.prof = p
			g.profCum, g.shares = perfChildren(ctx, filepath.Join(tmp, "perf-gateway.data"), 40)
		}
	}
	return g, nil
}

func logGatewayRun(r loadResult) {
	log.Printf("  %.0f calls/s  p50 %s  p99 %s  CPU/call: first hop %s, upstream behind it %s, load generator %s; other processes %.2f cores, errors %d",
		r.rps, us(r.p50), us(r.p99), us(r.cpuPerReq()), us(r.per(r.alsoCPU)), us(r.per(r.clientCPU)), r.otherUtil(), r.errors)
}

// gatewaySanity checks, before anything is measured, that both paths
// answer.
func gatewaySanity(ctx context.Context, openDirect, openVia func(context.Context) (caller, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for name, open := range map[string]func(context.Context) (caller, error){"direct": openDirect, "via mcpauth": openVia} {
		c, err := open(ctx)
		if err != nil {
			return fmt.Errorf("gateway %s: open: %w", name, err)
		}
		err = c.callOnce(ctx)
		c.close()
		if err != nil {
			return fmt.Errorf("gateway %s: echo: %w", name, err)
		}
	}
	return nil
}

// gatewayOnly runs only the gateway benchmarks and writes their section
// into out, replacing the one there (or adding it), so the rest of the
// report keeps the run that produced it.
func gatewayOnly(ctx context.Context, o options, tmp string, started time.Time) error {
	log.Print("building mcpauth")
	bin := filepath.Join(tmp, "mcpauth")
	if err := buildMcpauth(ctx, bin); err != nil {
		return err
	}
	env := newServerEnv(bin, tmp)
	g, err := runGateway(ctx, o, env, tmp)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.started, g.elapsed, g.command, g.machine = started, time.Since(started), commandLine(), describeMachine()
	err = rewriteReport(o.out, func(doc string) string {
		doc = spliceGateway(doc, g.markdown(true))
		if !strings.Contains(doc, separateRunNote) {
			doc = strings.Replace(doc, wholeRunSentence, wholeRunSentence[:len(wholeRunSentence)-1]+separateRunNote, 1)
		}
		return doc
	})
	if err != nil {
		return err
	}
	log.Printf("wrote the gateway section of %s in %s", o.out, g.elapsed.Round(time.Second))
	fmt.Print(summarize(g.targets(), g.machine))
	return nil
}

// wholeRunSentence ends the report's first paragraph; a -gateway-only run
// adds separateRunNote to it.
const (
	wholeRunSentence = "re-run the command to refresh this file (it is overwritten).\n"
	separateRunNote  = " Section 5 (the gateway) is the exception: it comes from a `-gateway-only` run of its own, named there.\n"
)

const (
	gatewayBegin = "<!-- gateway benchmarks: begin -->\n"
	gatewayEnd   = "<!-- gateway benchmarks: end -->\n"
)

// spliceGateway puts section (with its markers) in doc: in place of the
// marked one, else before "## Where the misses come from", else before
// "## Reproduce", else at the end.
func spliceGateway(doc, section string) string {
	if out, ok := replaceMarked(doc, section, gatewayBegin, gatewayEnd); ok {
		return out
	}
	for _, h := range []string{"## Where the misses come from", "## Reproduce"} {
		if i := strings.Index(doc, "\n"+h); i >= 0 {
			return doc[:i+1] + section + "\n" + doc[i+1:]
		}
	}
	return doc + "\n" + section
}

// markdown is the report's gateway section, between its markers;
// standalone says it was measured by a -gateway-only run of its own.
func (g *gatewayResults) markdown(standalone bool) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("%s## 5. Gateway: tools/call relayed to upstream MCP servers\n\n", gatewayBegin)
	if standalone {
		m := g.machine
		w("Measured by `%s` on %s (%d CPUs, %s, %s), in a run of its own that took %s; re-running that command "+
			"replaces this section only (the sections above keep the run named at the top).\n\n",
			g.command, g.started.UTC().Format("2006-01-02 15:04 UTC"), m.nproc, m.cpu, m.goVer, g.elapsed.Round(time.Second))
	}
	placement := "unpinned: the upstream, mcpauth and the load generator share all CPUs"
	if g.pinned {
		placement = "the upstream pinned to CPU 0 (`taskset -c 0`), mcpauth to CPU 1, the load generator to CPU 1 (GOMAXPROCS=1): " +
			"the upstream has a CPU to itself in both paths, and through the gateway mcpauth shares the other CPU with the load generator"
	}
	w("The upstream is an mcp-go v1.2.1 Streamable HTTP server with one `echo` tool (`bench upstream http`: this benchmark "+
		"binary re-executed, in a process of its own). The gateway is the `mcpauth serve` binary with `MCP_UPSTREAMS` naming it "+
		"(`\"up\": {\"url\": …, \"type\": \"http\"}`) and a policy `{\"default\": \"deny\", \"tools\": {\"up__*\": [\"%s\"], …}}`; "+
		"callers send a Bearer token minted with `--scope %s` (%d bytes), so every relayed call is verified and passes the policy check. "+
		"*Direct* calls `echo` on the upstream; *via mcpauth* calls `up__echo` on mcpauth, which forwards it over its one "+
		"Streamable HTTP session to the upstream (mcp-go's client). Both use the same client as section 2 (protocol 2025-11-25, "+
		"Streamable HTTP with `Mcp-Session-Id`, one session per caller, closed loops), with the same arguments `%s`. "+
		"Placement: %s. Each path ran %d rounds of %s after %s of warm-up, direct and via mcpauth alternating; the median round "+
		"is shown. CPU per call is each process's CPU time (/proc/<pid>/stat) over the measured window divided by the calls. "+
		"The *work tool* rows call the upstream's `work` tool instead (`up__work` via mcpauth), which computes SHA-256 for %s before "+
		"answering: an upstream whose tools do work, where echo does none. The *floor* rows put, in mcpauth's place (its CPU, the same "+
		"upstream, the same callers, no token), the least any gateway in a process of its own does: a TCP relay that copies each "+
		"connection's bytes both ways and parses nothing (`bench relay tcp`, io.Copy, which splices on Linux), and net/http's "+
		"`httputil.ReverseProxy`, which parses and forwards HTTP and checks nothing (`bench relay http`); an auth gateway has to be at "+
		"least the second, to read the Authorization header.\n\n",
		gatewayScope, gatewayScope, g.tokenLen, gatewayEchoArgs, placement, g.rounds, g.dur, g.warmup, gatewayWork)
	w("| target | wanted | measured | |\n|---|---|---|---|\n")
	for _, t := range g.targets() {
		w("| %s | %s | %s | %s |\n", t.name, t.want, t.got, mark(t.ok))
	}
	w("\n| path | callers | calls/s | p50 | p90 | p99 | gateway (mcpauth or floor) CPU/call | upstream CPU/call | load-generator CPU/call | other processes, cores | errors |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(r loadResult, viaGW bool) {
		gwCPU, upCPU := "—", us(r.cpuPerReq())
		if viaGW {
			gwCPU, upCPU = us(r.cpuPerReq()), us(r.per(r.alsoCPU))
		}
		w("| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %.2f | %d |\n", r.server, r.clients, r.rps, us(r.p50), us(r.p90), us(r.p99),
			gwCPU, upCPU, us(r.per(r.clientCPU)), r.otherUtil(), r.errors)
	}
	row(g.direct, false)
	row(g.via, true)
	if g.directWork.requests > 0 {
		row(g.directWork, false)
		row(g.viaWork, true)
	}
	row(g.latDirect, false)
	row(g.latVia, true)
	for _, r := range []loadResult{g.relayTCP, g.relayHTTP, g.latRelayTCP, g.latRelayHTTP} {
		if r.requests > 0 {
			row(r, true)
		}
	}
	if g.latOwn.requests > 0 {
		w("| %s (reference: one hop to mcpauth, nothing relayed) | 1 | %.0f | %s | %s | %s | %s | — | %s | %.2f | %d |\n", g.latOwn.server, g.latOwn.rps,
			us(g.latOwn.p50), us(g.latOwn.p90), us(g.latOwn.p99), us(g.latOwn.cpuPerReq()), us(g.latOwn.per(g.latOwn.clientCPU)), g.latOwn.otherUtil(), g.latOwn.errors)
	}
	busiest := 0.0
	for _, r := range []loadResult{g.direct, g.via, g.latDirect, g.latVia, g.latOwn} {
		busiest = max(busiest, r.otherUtil())
	}
	if busiest > 0.25 && g.rounds > 1 {
		d, v := g.spread["direct/"+strconv.Itoa(g.clients)], g.spread["via mcpauth/"+strconv.Itoa(g.clients)]
		w("\n**Caution:** other processes on this shared machine used up to %.2f cores during the runs shown, competing with the "+
			"pinned processes for both CPUs, so single rounds varied: with %d callers, direct ran at %.0f–%.0f calls/s and via mcpauth "+
			"at %.0f–%.0f over the %d rounds.\n", busiest, g.clients, d[0], d[1], v[0], v[1], g.rounds)
	}
	if g.stdio1.requests > 0 {
		w("\n**stdio upstream.** `bench upstream stdio -delay %s`: an mcp-go stdio server (worker pool of 100, so the upstream itself "+
			"can answer many calls at once) whose `wait` tool answers after %s; mcpauth starts it as a child (`\"slow\": {\"command\": …}`) "+
			"and multiplexes every caller's calls over its one stdin/stdout. Callers call `slow__wait` through mcpauth; a single caller "+
			"can make at most 1 / %s = %.0f calls/s.\n\n", gatewayStdioDelay, gatewayStdioDelay, gatewayStdioDelay, float64(time.Second)/float64(gatewayStdioDelay))
		w("| callers | calls/s | p50 | p90 | p99 | mcpauth CPU/call (the child's not included) | errors |\n|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range []loadResult{g.stdio1, g.stdioN} {
			w("| %d | %.1f | %s | %s | %s | %s | %d |\n", r.clients, r.rps, ms(r.p50), ms(r.p90), ms(r.p99), us(r.cpuPerReq()), r.errors)
		}
	}
	g.writeAnalysis(w)
	if p := g.prof; p != nil {
		w("\n<details><summary>perf profile of the mcpauth process relaying %d callers (flat, top symbols; %s of mcpauth CPU per call in that run)</summary>\n\n```\n%s\n```\n</details>\n",
			g.clients, us(p.cpuReq), p.top)
	}
	if g.profCum != "" {
		w("\n<details><summary>the same profile by inclusive time (children), Go symbols</summary>\n\n```\n%s\n```\n</details>\n", g.profCum)
	}
	w("\n%s", gatewayEnd)
	return b.String()
}

// gatewayParts are the symbols whose inclusive share of mcpauth's CPU
// the analysis names (matched as substrings of perf's symbol names).
var gatewayParts = []string{
	"net/http.(*conn).serve",                  // the caller's connection: its requests, start to end
	"(*Gateway).callTool",                     // the relay: mcp-go's client call to the upstream, as the tool handler
	"client.(*Client).CallTool",               // mcp-go's client call inside it (stdio and legacy SSE upstreams)
	"upstream.cancellingHTTP.SendRequest",     // the Streamable HTTP transport's round trip inside it (tools/upstream/calltool.go)
	"net/http.(*persistConn).writeLoop",       // the relay: writing requests to the upstream
	"net/http.(*persistConn).readLoop",        // the relay: reading the upstream's answers
	"server.(*MCPServer).HandleMessage",       // mcp-go's server: the caller's JSON-RPC message
	"auth.(*Verifier).Verify",                 // token verification
	"runtime.gcBgMarkWorker",                  // garbage collection (background)
	"encoding/json.Unmarshal",                 // JSON decoding, anywhere
	"encoding/json.Marshal",                   // JSON encoding, anywhere
	"internal/runtime/syscall/linux.Syscall6", // system calls (reads, writes, epoll)
}

// perfChildren lists the user-space symbols of a perf profile by
// inclusive share (perf report --children), at most n, and the shares of
// gatewayParts.
func perfChildren(ctx context.Context, data string, n int) (string, map[string]float64) {
	out, err := exec.CommandContext(ctx, "perf", "report", "-i", data, "--stdio", "--children", "--sort", "symbol",
		"-g", "none", "--percent-limit", "0.2").Output()
	if err != nil {
		return "", nil
	}
	var keep []string
	shares := map[string]float64{}
	for _, l := range strings.Split(string(out), "\n") {
		f := trimDashes(strings.Fields(l))
		// Children Self [.] symbol
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") || f[2] != "[.]" {
			continue
		}
		sym := strings.Join(f[3:], " ")
		v, _ := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		for _, part := range gatewayParts {
			if strings.Contains(sym, part) {
				shares[part] = max(shares[part], v/100)
			}
		}
		if len(keep) < n && v >= 1 {
			keep = append(keep, fmt.Sprintf("%7s %7s  %s", f[0], f[1], sym))
		}
	}
	return strings.Join(keep, "\n"), shares
}

// writeAnalysis explains the misses from the run's own numbers and, when
// taken, the profile.
func (g *gatewayResults) writeAnalysis(w func(string, ...any)) {
	if !g.missed() {
		return
	}
	w("\n### Where the gateway's time goes\n\n")
	if g.throughputRatio() < targetGatewayThroughput {
		gw, lg, up := g.via.cpuPerReq(), g.via.per(g.via.clientCPU), g.direct.cpuPerReq()
		need := time.Duration(float64(time.Second) / (targetGatewayThroughput * g.direct.rps))
		w("**Throughput (%.1f%% of direct).** The echo tool does next to nothing, so a relayed call is mostly the work of "+
			"serving one MCP request and making another. Directly, the upstream spends %s of CPU per call. Through the gateway, mcpauth "+
			"spends %s per call (the caller's request: HTTP, token check, policy, mcp-go's server; then the relayed request: mcp-go's "+
			"client, HTTP to the upstream), %.1f× what the upstream spends answering it",
			100*g.throughputRatio(), us(up), us(gw), float64(gw)/float64(max(up, 1)))
		if g.pinned {
			w(", on the CPU it shares with the load generator (%s per call): that CPU alone caps the gateway at about %.0f calls/s. "+
				"For 90%% of the direct rate (%.0f calls/s) the two would together have to fit in %s per call, i.e. mcpauth in about %s",
				us(lg), float64(time.Second)/float64(gw+lg), 0.9*g.direct.rps, us(need), us(max(need-lg, 0)))
		}
		w(". The target can hold where the upstream's own work per call is large against mcpauth's %s, or where mcpauth has CPU "+
			"of its own; against a trivial upstream on one shared machine it measures mcpauth's CPU per relayed call.\n\n", us(gw))
		if sh := g.shares; len(sh) > 0 {
			relay := sh["(*Gateway).callTool"] + sh["net/http.(*persistConn).writeLoop"] + sh["net/http.(*persistConn).readLoop"]
			w("The perf profile of mcpauth under this load (inclusive shares of its CPU, below): the relay, i.e. the tool handler "+
				"`upstream.(*Gateway).callTool` (the Streamable HTTP transport's `SendRequest` %.0f%%: encoding the request with the "+
				"caller's arguments as it sent them, the round trip; then `tools/upstream` decoding the result once, `calltool.go`) "+
				"plus net/http's client read and write loops, is **%.0f%%**; serving the caller's connection apart from the relay "+
				"(`net/http.(*conn).serve` minus the handler: HTTP, `auth.(*Verifier).Verify` %.1f%%, policy, mcp-go's server "+
				"`HandleMessage` %.0f%% including the handler) is %.0f%%; background garbage collection %.0f%%; system calls %.0f%%; "+
				"`encoding/json` decoding %.0f%% and encoding %.0f%% across both sides. `tools/upstream`'s own code (the handler minus "+
				"the transport's round trip) is %.1f%%: the cost is in the two JSON-RPC-over-HTTP hops (mcp-go's server for the caller, "+
				"mcp-go's client transport and net/http towards the upstream), not in the gateway's logic.\n\n",
				100*sh["upstream.cancellingHTTP.SendRequest"], 100*relay, 100*sh["auth.(*Verifier).Verify"], 100*sh["server.(*MCPServer).HandleMessage"],
				100*(sh["net/http.(*conn).serve"]-sh["(*Gateway).callTool"]), 100*sh["runtime.gcBgMarkWorker"],
				100*sh["internal/runtime/syscall/linux.Syscall6"], 100*sh["encoding/json.Unmarshal"], 100*sh["encoding/json.Marshal"],
				100*max(0, sh["(*Gateway).callTool"]-sh["client.(*Client).CallTool"]-sh["upstream.cancellingHTTP.SendRequest"]))
		}
	}
	if t, h, ok := g.floorRatios(); ok && g.throughputRatio() < targetGatewayThroughput {
		w("**The floor.** In mcpauth's place, on its CPU, the TCP relay reached %.1f%% of the direct rate with %s of CPU per call, "+
			"and net/http's reverse proxy %.1f%% with %s; mcpauth, %.1f%% with %s. ",
			100*t, us(g.relayTCP.cpuPerReq()), 100*h, us(g.relayHTTP.cpuPerReq()), 100*g.throughputRatio(), us(g.via.cpuPerReq()))
		switch {
		case t < targetGatewayThroughput:
			w("Even a relay that parses nothing misses 90%% here, so the target is beyond any gateway in a process of its own on this " +
				"placement; ")
		case h < targetGatewayThroughput:
			w("A relay that parses nothing meets 90%% but one that parses HTTP does not, so the target is beyond any HTTP-aware " +
				"gateway (any that can read a token) on this placement; ")
		default:
			w("The floors meet 90%%, so the gap is mcpauth's own work; ")
		}
		w("what mcpauth adds over the reverse proxy, %s per call (%.1f× its CPU), is the token check, the policy and an MCP session "+
			"on each side (mcp-go's server for the caller, its client towards the upstream).\n\n",
			us(g.via.cpuPerReq()-g.relayHTTP.cpuPerReq()), float64(g.via.cpuPerReq())/float64(max(g.relayHTTP.cpuPerReq(), 1)))
	}
	if t, h, ok := g.floorAdded(); ok && g.addedP50() > targetGatewayAddedP50 {
		w("**The latency floor.** With one caller, the TCP relay in mcpauth's place added %s at p50 and net/http's reverse proxy %s "+
			"(mcpauth: %s). ", us(t), us(h), us(g.addedP50()))
		switch {
		case t > targetGatewayAddedP50:
			w("Even the relay that parses nothing adds more than 100 µs on this machine: the target is below the cost of one more " +
				"process on the path (a loopback hop and a wake-up each way).\n\n")
		case h > targetGatewayAddedP50:
			w("A relay that parses HTTP already adds more than 100 µs on this machine, so the target is out of reach for any " +
				"HTTP-aware gateway here.\n\n")
		default:
			w("The floors stay within 100 µs, so the gap is mcpauth's own work per call.\n\n")
		}
	}
	if g.addedP50() > targetGatewayAddedP50 && g.latOwn.requests > 0 {
		w("**Added latency (%s at p50).** One caller: a direct call takes %s at p50, one request/response over loopback to an "+
			"mcp-go server, and the gateway puts a second one in front of it. mcpauth's own whoami, the same first hop with nothing "+
			"behind it, takes %s; the relayed call takes %s, so beyond that first hop the relay costs %s over the upstream's own "+
			"answer (the client transport encoding the request, `tools/upstream` decoding the result once, mcp-go's server encoding "+
			"it again, and net/http's client goroutines handing the request and the answer on).",
			us(g.addedP50()), us(g.latDirect.p50), us(g.latOwn.p50), us(g.latVia.p50), us(g.latVia.p50-g.latDirect.p50-g.latOwn.p50))
		if _, h, ok := g.floorAdded(); ok {
			w(" In mcpauth's place net/http's reverse proxy adds %s: that much is the extra hop any HTTP-aware gateway pays here, "+
				"and the other %s is mcpauth's own work per relayed call, serving it through mcp-go's server and making it again "+
				"through mcp-go's client.", us(h), us(max(g.addedP50()-h, 0)))
		} else if hop := min(g.latOwn.p50, g.latDirect.p50); hop > targetGatewayAddedP50 {
			w(" On this machine one request/response over loopback to an mcp-go server already takes more than 100 µs at p50 "+
				"(%s direct, %s to mcpauth's whoami) and relaying adds one: the target is out of reach here for a gateway built, "+
				"like this one, on mcp-go's HTTP server and client.", us(g.latDirect.p50), us(g.latOwn.p50))
		}
		w("\n\n")
	}
}
