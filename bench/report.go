package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type report struct {
	opts     options
	started  time.Time
	elapsed  time.Duration
	machine  machine
	command  string
	nofile   uint64
	tokenLen int
	gobench  *goBenchResults
	issue    []issueResult
	load     []loadResult
	sessions sessionsResult
	// streamSessions is the same measure for Streamable HTTP sessions.
	streamSessions streamSessionsResult
	perf           []*perfProfile
	gateway        *gatewayResults
	// CPU cores other processes used just before each phase.
	otherBeforeGo, otherBeforeIssue, otherBeforeSess float64
}

const (
	targetVerifyNs     = 3000.0
	targetVerifyAllocs = 10.0
	targetFloorRatio   = 8.0
	targetCeiling      = 0.95
	targetPeer         = 8.0  // × the TypeScript SDK peer's throughput (#15)
	targetBareCPU      = 1.15 // × bare mcp-go's server CPU per request, at most (#15)
	targetBareRPS      = 0.87 // of bare mcp-go's throughput, at least (#15)
	targetGoSDK        = 2.5  // × the Go SDK peer's throughput (#15)
	targetSessionKiB   = 32.0 // RSS per session, SSE and Streamable HTTP (#15)
	targetIssueP50     = 2 * time.Millisecond
)

func (r *report) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	doc := r.markdown()
	// The soak is measured only by -soak runs of its own: keep the one
	// already in the file.
	if old, err := os.ReadFile(path); err == nil {
		if sec := soakSection(string(old)); sec != "" {
			doc = noteSoakRun(spliceSoak(doc, sec))
		}
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1e3) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Nanoseconds())/1e6) }
func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

type target struct {
	name, want, got string
	ok              bool
	present         bool
}

func (r *report) loadFor(server, transport string) (loadResult, bool) {
	for _, l := range r.load {
		if strings.HasPrefix(l.server, server) && l.transport == transport {
			return l, true
		}
	}
	return loadResult{}, false
}

func (r *report) issueFor(prefix string) (issueResult, bool) {
	for _, i := range r.issue {
		if strings.HasPrefix(i.name, prefix) {
			return i, true
		}
	}
	return issueResult{}, false
}

func (r *report) targets() []target {
	var ts []target
	if r.gobench != nil {
		v, ok1 := r.gobench.get("BenchmarkVerify")
		f, ok2 := r.gobench.get("BenchmarkHMACFloor")
		if ok1 {
			ts = append(ts,
				target{"token verification time", "≤ 3 µs", fmt.Sprintf("%.2f µs", v.nsOp/1e3), v.nsOp <= targetVerifyNs, true},
				target{"token verification allocations", "≤ 10 allocs/op", fmt.Sprintf("%.0f allocs/op", v.allocs), v.allocs <= targetVerifyAllocs, true})
		}
		if ok1 && ok2 && f.nsOp > 0 {
			ts = append(ts, target{"verification vs one HMAC-SHA256 (fresh key)", "≤ 8×", fmt.Sprintf("%.1f×", v.nsOp/f.nsOp), v.nsOp/f.nsOp <= targetFloorRatio, true})
		}
	}
	ts = append(ts, r.loadTargets()...)
	ts = append(ts, r.sessionTargets()...)
	ts = append(ts, r.issueTargets()...)
	return append(ts, r.gateway.targets()...)
}

// loadTargets are the targets measured by the load test (section 2), per
// transport; their names all start with loadTargetPrefixes.
func (r *report) loadTargets() []target {
	var ts []target
	for _, tr := range []string{"streamable-http", "sse"} {
		a, okA := r.loadFor("mcpauth (auth)", tr)
		if !okA || a.rps == 0 {
			continue
		}
		c, okC := r.loadFor("mcpauth (auth disabled)", tr)
		b, okB := r.loadFor(bareName, tr)
		g, okG := r.loadFor(gosdkName, tr)
		p, okP := r.loadFor("TS SDK", tr)
		if okC && c.rps > 0 {
			ratio, of := pairedRatio(a, c, rpsOf)
			ts = append(ts, target{"authenticated throughput vs auth-disabled ceiling, " + tr, "≥ 95%",
				fmt.Sprintf("%.1f%% (%s; medians %.0f vs %.0f req/s)", ratio*100, of, a.rps, c.rps), ratio >= targetCeiling, true})
		}
		if okB && b.medCPUReq > 0 && b.rps > 0 {
			cr, of := pairedRatio(a, b, cpuOf)
			ts = append(ts, target{"authenticated server CPU per request vs bare mcp-go, " + tr, "≤ 1.15×",
				fmt.Sprintf("%.2f× (%s; medians %s vs %s)", cr, of, us(a.medCPUReq), us(b.medCPUReq)), cr <= targetBareCPU, true})
			ratio, of := pairedRatio(a, b, rpsOf)
			ts = append(ts, target{"authenticated throughput vs bare mcp-go, " + tr, "≥ 87%",
				fmt.Sprintf("%.1f%% (%s; medians %.0f vs %.0f req/s)", ratio*100, of, a.rps, b.rps), ratio >= targetBareRPS, true})
		}
		// The ceiling's own ratio to a peer says whether a peer target is
		// within reach of anything built on mcp-go.
		ceiling := func(peer loadResult) string {
			if !okB || b.rps == 0 {
				return ""
			}
			r, _ := pairedRatio(b, peer, rpsOf)
			return fmt.Sprintf("; bare mcp-go itself: %.1f×", r)
		}
		if okG && g.rps > 0 {
			ratio, of := pairedRatio(a, g, rpsOf)
			ts = append(ts, target{"authenticated throughput vs Go SDK peer, " + tr, "≥ 2.5×",
				fmt.Sprintf("%.1f× (%s; medians %.0f vs %.0f req/s%s)", ratio, of, a.rps, g.rps, ceiling(g)), ratio >= targetGoSDK, true})
		}
		if okP && p.rps > 0 {
			ratio, of := pairedRatio(a, p, rpsOf)
			ts = append(ts, target{"authenticated throughput vs TypeScript SDK peer, " + tr, "≥ 8×",
				fmt.Sprintf("%.1f× (%s; medians %.0f vs %.0f req/s%s)", ratio, of, a.rps, p.rps, ceiling(p)), ratio >= targetPeer, true})
		}
	}
	return ts
}

// loadTargetPrefixes start the names of loadTargets' rows (a -load-only
// run replaces the rows of the targets table that start with them).
var loadTargetPrefixes = []string{"authenticated throughput vs ", "authenticated server CPU per request vs "}

func (r *report) summary() string { return summarize(r.targets(), r.machine) }

func summarize(ts []target, m machine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nTargets (%s, %d CPUs):\n", m.cpu, m.nproc)
	for _, t := range ts {
		fmt.Fprintf(&b, "  %-72s %-22s %s  [%s]\n", t.name, t.want, t.got, strings.Trim(mark(t.ok), "*"))
	}
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.machine
	w("# mcpauth benchmarks\n\n")
	w("Generated by `bench/` (`%s`) on %s; the whole set took %s. Every number below comes from that one run; "+
		"re-run the command to refresh this file (it is overwritten).\n\n", r.command, m.date, r.elapsed.Round(time.Second))
	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPUs (nproc) | %d |\n| CPU model | %s |\n| memory | %s |\n| kernel | %s |\n| Go | %s |\n| Node | %s |\n| RLIMIT_NOFILE (raised by the harness) | %d |\n",
		m.nproc, m.cpu, m.memory, m.kernel, m.goVer, orDash(m.nodeVer), r.nofile)
	pin := "unpinned (server and load generator share all CPUs)"
	if r.opts.pin {
		pin = "each server process pinned to CPU 0 (`taskset -c 0`; Go then runs with GOMAXPROCS=1), the load generator to CPU 1 (GOMAXPROCS=1)"
	}
	w("| load-test CPU placement | %s |\n", pin)
	w("| other processes before each phase (cores; the harness waits up to %s for < 0.15) | go benchmarks %.2f, issue_token %.2f, sessions %.2f; per load run in the load table |\n\n",
		r.opts.quietWait, r.otherBeforeGo, r.otherBeforeIssue, r.otherBeforeSess)

	w("## Targets\n\n| target | wanted | measured | |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		w("| %s | %s | %s | %s |\n", t.name, t.want, t.got, mark(t.ok))
	}
	w("\nMisses are analysed with profiles in [Where the misses come from](#where-the-misses-come-from).\n\n")

	r.writeGoBench(&b)
	r.writeLoad(&b)
	r.writeSessions(&b)
	r.writeIssue(&b)
	if r.gateway != nil {
		b.WriteString(r.gateway.markdown(false))
		b.WriteString("\n")
	}
	r.writeAnalysis(&b)

	w("## Reproduce\n\n```sh\n%s\n```\n\n", r.command)
	w("Flags: `-clients N` (load concurrency), `-duration`/`-warmup` (per load run), `-rounds N` (alternating load rounds; the median is reported), `-sessions N`, `-mints N`, " +
		"`-mint-concurrency N`, `-benchtime`, `-benchcount`, `-quiet-wait`, `-pin=false`, " + newSkipFlags +
		issueOnlyFlag + "`-gateway-only` (only the gateway benchmarks; replaces only their section of the report), `-gateway-rounds N`, " +
		"`-out FILE`, `-timeout` (hard limit, default 10m). `bench/run.sh [flags]` is the same command. " +
		"The harness listens and connects on 127.0.0.1 only, stops every process it started, and needs Go and, for the peer, Node + npm " +
		"(it runs `npm ci` in `bench/peer`, from the committed lockfile).\n\n")
	if r.gobench != nil {
		w("<details><summary>Raw <code>go test -bench</code> output</summary>\n\n```\n%s\n```\n</details>\n", strings.TrimSpace(r.gobench.raw))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (r *report) writeGoBench(b *strings.Builder) {
	g := r.gobench
	if g == nil {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("## 1. Go micro-benchmarks\n\n")
	w("`go test -run '^$' -bench . -benchmem -benchtime %s -count %d ./auth ./transport` (GOMAXPROCS=%s); for each benchmark the "+
		"fastest of the %d runs is shown (all runs are in the raw output at the end). "+
		"The token is a typical one (client id, two scopes, 30 days, %d bytes); the verifier's revocation set "+
		"(`auth.NewRevocationSet`, passed as `VerifierConfig.Revoked`) holds 1,000 revoked jtis. "+
		"`Issue` mints with an in-memory no-op `Recorder`. `Middleware` runs `bearer.Middleware` on an in-memory request "+
		"(`httptest.NewRequest`) with a valid Bearer token. The HMAC floor is one HMAC-SHA256 over the same signing input "+
		"(header.payload) with the same key: `HMACFloor` keys a fresh `hmac.New` per token (what a verifier does per request), "+
		"`HMACFloorReused` resets one keyed state (the absolute floor). The `ToolsCall*` benchmarks are one "+
		"whoami tools/call through the whole HTTP handler in-process (no network, no client).\n\n",
		r.opts.benchtime, r.opts.benchCount, firstProcs(g), r.opts.benchCount, r.benchTokenLen())
	if g.otherCores > 0.25 {
		w("**Caution:** other processes on this machine used %.2f cores on average while these benchmarks ran, so they shared the CPUs; "+
			"the figures below are slower and noisier than on an idle machine.\n\n", g.otherCores)
	} else {
		w("Other processes used %.2f cores on average meanwhile (idle machine).\n\n", g.otherCores)
	}
	w("| package | benchmark | ns/op | B/op | allocs/op | MB/s |\n|---|---|---:|---:|---:|---:|\n")
	for _, x := range g.list {
		mb := ""
		if x.mbS > 0 {
			mb = fmt.Sprintf("%.1f", x.mbS)
		}
		w("| %s | %s | %s | %.0f | %.0f | %s |\n", strings.TrimPrefix(x.pkg, "./"), strings.TrimPrefix(x.name, "Benchmark"), fmtNs(x.nsOp), x.bOp, x.allocs, mb)
	}
	v, _ := g.get("BenchmarkVerify")
	f, _ := g.get("BenchmarkHMACFloor")
	fr, _ := g.get("BenchmarkHMACFloorReused")
	mw, _ := g.get("BenchmarkMiddleware")
	md, _ := g.get("BenchmarkMiddlewareDisabled")
	w("\nRatios (same run):\n\n")
	if f.nsOp > 0 && fr.nsOp > 0 {
		w("- Verify / HMAC floor (fresh key): **%.1f×**; Verify / HMAC floor (reused state): %.1f×.\n", v.nsOp/f.nsOp, v.nsOp/fr.nsOp)
	}
	if mw.nsOp > v.nsOp {
		w("- Middleware − Verify = %s per request for Bearer parsing, the context and the request copy; auth disabled costs %s.\n", fmtNs(mw.nsOp-v.nsOp), fmtNs(md.nsOp))
	}
	for _, tr := range []struct{ name, bench string }{{"Streamable HTTP", "BenchmarkToolsCallStreamable"}, {"legacy SSE", "BenchmarkToolsCallSSE"}} {
		tc, _ := g.get(tr.bench)
		tn, _ := g.get(tr.bench + "NoAuth")
		if tc.nsOp > 0 && tn.nsOp > 0 {
			w("- One tools/call in-process over %s: %s with auth, %s without: auth is %s (%.0f%%) of the request; in-process ratio %.1f%% of the ceiling.\n",
				tr.name, fmtNs(tc.nsOp), fmtNs(tn.nsOp), fmtNs(tc.nsOp-tn.nsOp), 100*(tc.nsOp-tn.nsOp)/tc.nsOp, 100*tn.nsOp/tc.nsOp)
		}
	}
	w("\n")
}

func (r *report) benchTokenLen() int {
	if v, ok := r.gobench.get("BenchmarkVerify"); ok && v.mbS > 0 && v.nsOp > 0 {
		return int(v.mbS*v.nsOp/1e3 + 0.5)
	}
	return 0
}

func firstProcs(g *goBenchResults) string {
	for _, x := range g.list {
		if x.procs != "" {
			return x.procs
		}
	}
	return "1"
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.1f ns", ns)
	}
}

const (
	loadBegin = "<!-- load: begin -->\n"
	loadEnd   = "<!-- load: end -->\n"
)

func (r *report) writeLoad(b *strings.Builder) {
	if len(r.load) == 0 {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("%s## 2. Load: tools/call whoami over Streamable HTTP and legacy SSE\n\n", loadBegin)
	if r.opts.loadOnly {
		w("*Measured by a load-only run of its own: `%s` on %s (%s), not by the run the rest of this report comes from.*\n\n",
			r.command, r.machine.date, r.elapsed.Round(time.Second))
	}
	w("%d concurrent clients, each in a closed loop (next call when the previous answer arrives), %s measured after %s of warm-up, "+
		"per server and transport. Servers, one process at a time on 127.0.0.1, each started afresh for every round:\n\n"+
		"- **mcpauth (auth)**: the `mcpauth serve` binary (`go build ./cmd/mcpauth`), SQLite registry holding 1,000 revoked tokens "+
		"(so its revocation set has 1,000 jtis), every request verified;\n"+
		"- **mcpauth (auth disabled)**: the same binary with `MCP_ENV=development MCP_AUTH_ENABLED=false`, i.e. "+
		"`bearer.MiddlewareConfig{Disabled: true, DevIdentity: dev-anonymous}`: the ceiling of mcpauth's own request path;\n"+
		"- **%s**: the true ceiling, no mcpauth code and no authentication: the bench binary re-executed as `bench peer mcpgo` "+
		"(`bench/peers.go`), an mcp-go v1.2.1 `MCPServer` (the version mcpauth builds on) with `NewStreamableHTTPServer` at /mcp "+
		"(mcp-go's defaults: sessions, JSON responses) and mcp-go's legacy `SSEServer` at /sse + /message, and a `whoami` tool whose "+
		"result has exactly the text and structured content mcpauth's whoami returns for the bench token (fetched from mcpauth once "+
		"per run, decoded once by the peer, a fresh result built and encoded with `mcp.NewToolResultStructured` for every call, as "+
		"mcpauth does; the harness checks the peer's answer equals mcpauth's before measuring). mcpauth's SSE transport is its own, "+
		"so over SSE this compares it with mcp-go's `SSEServer`;\n"+
		"- **%s**: what a Go user would otherwise pick: the bench binary re-executed as `bench peer gosdk`, the official Go SDK "+
		"(`github.com/modelcontextprotocol/go-sdk` v1.8.0) with `NewStreamableHTTPHandler` at /mcp (stateful sessions, "+
		"`JSONResponse: true`, as mcp-go answers) and `NewSSEHandler` at /sse (GET /sse, POST /sse?sessionid=…), both wrapped in "+
		"`auth.RequireBearerToken` with a `TokenVerifier` that checks the same HS256 token with golang-jwt v5 (HS256 only, the secret, "+
		"iss, exp required, iat/nbf, 30 s leeway, sub and jti present, a 1,000-jti revocation set; the subject as `TokenInfo.UserID`, "+
		"so the SDK binds sessions to it), and the same whoami result (a low-level `Server.AddTool` handler, checked against mcpauth's "+
		"answer like the bare peer's);\n"+
		"- **TS SDK 1.32.2 (requireBearerAuth)**: `bench/peer/server.mjs`, the official TypeScript SDK (`@modelcontextprotocol/sdk` 1.32.2, "+
		"express 5.3.0) with `requireBearerAuth` and a `verifyAccessToken` that checks the same HS256 token with node's "+
		"`createHmac` + `timingSafeEqual` (alg, iss, exp/nbf/iat with leeway, sub, jti, a 1,000-jti revocation set); "+
		"Streamable HTTP with one transport per session and JSON responses (as mcp-go answers), SSE with `SSEServerTransport`; a fresh "+
		"node process per round.\n\n", r.opts.clients, r.opts.duration, r.opts.warmup, bareName, gosdkName)
	w("Every server process is placed the same way (see *load-test CPU placement* above). "+
		"The client (Go, in the harness) speaks protocol 2025-11-25: Streamable HTTP with `Mcp-Session-Id` "+
		"(initialize, notifications/initialized, then tools/call), SSE with GET /sse and POST to the endpoint the `endpoint` event names, "+
		"the answer read from the stream. "+
		"Latency is from sending the call to having its answer. Server CPU is read from /proc/<pid>/stat over the measured window: "+
		"*CPU/req* is server CPU time per call, independent of who saturates first. Every run sends the same Bearer token (%d bytes, minted with "+
		"`mcpauth token issue bench-client 1h --scope admin --json`; the bare peer ignores it).\n\n", r.tokenLen)
	w("Each (server, transport) ran %d rounds, the servers alternating within each round so that drift on this shared machine "+
		"hits them alike; the table shows each one's median round by throughput, the range of throughput over the rounds, and the median "+
		"of server CPU/req over the rounds (the CPU targets use that median). *Other processes* is what the rest of the machine used meanwhile: "+
		"above about 0.1 cores the run shared its CPUs with other work and its numbers are noisier.\n\n", max(r.opts.rounds, 1))
	w("| server | transport | req/s (median round) | req/s range | p50 | p90 | p99 | max | server CPU/req | CPU/req, median of rounds | server cores | load-gen cores | other processes, cores | errors |\n" +
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	maxOther := 0.0
	for _, l := range r.load {
		maxOther = max(maxOther, l.otherUtil())
		w("| %s | %s | %.0f | %.0f–%.0f | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %d |\n", l.server, l.transport, l.rps, l.rpsLo, l.rpsHi,
			ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max), us(l.cpuPerReq()), us(l.medCPUReq), l.serverUtil(), l.clientUtil(), l.otherUtil(), l.errors)
	}
	if maxOther > 0.25 {
		w("\n**Caution:** other processes on this machine used up to %.2f cores during these median rounds (the machine is shared; "+
			"the harness waits up to %s for it to go quiet, then measures anyway), so throughput and CPU per request are noisier and "+
			"slower than on an idle machine; ratios measured in the same rounds are the robust figures.\n", maxOther, r.opts.quietWait)
	}
	w("\nRatios (same run, same concurrency; CPU/req from the medians of rounds):\n\n" +
		"| transport | auth / ceiling (req/s) | auth / bare mcp-go (req/s) | auth ÷ bare mcp-go (CPU/req) | auth / Go SDK (req/s) | Go SDK ÷ auth (CPU/req) | auth / TS peer (req/s) | TS peer ÷ auth (CPU/req) |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, tr := range []string{"streamable-http", "sse"} {
		a, okA := r.loadFor("mcpauth (auth)", tr)
		if !okA {
			continue
		}
		c, okC := r.loadFor("mcpauth (auth disabled)", tr)
		bb, okB := r.loadFor(bareName, tr)
		g, okG := r.loadFor(gosdkName, tr)
		p, okP := r.loadFor("TS SDK", tr)
		cell := func(ok bool, f func() string) string {
			if !ok {
				return "—"
			}
			return f()
		}
		cpu := func(x, y loadResult) string { return fmt.Sprintf("%.2f×", float64(x.medCPUReq)/float64(y.medCPUReq)) }
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", tr,
			cell(okC, func() string { return fmt.Sprintf("%.1f%%", 100*a.rps/c.rps) }),
			cell(okB, func() string { return fmt.Sprintf("%.1f%%", 100*a.rps/bb.rps) }),
			cell(okB, func() string { return cpu(a, bb) }),
			cell(okG, func() string { return fmt.Sprintf("%.1f×", a.rps/g.rps) }),
			cell(okG, func() string { return cpu(g, a) }),
			cell(okP, func() string { return fmt.Sprintf("%.1f×", a.rps/p.rps) }),
			cell(okP, func() string { return cpu(p, a) }))
	}
	var gaps []string
	for _, tr := range []string{"streamable-http", "sse"} {
		a, okA := r.loadFor("mcpauth (auth)", tr)
		c, okC := r.loadFor("mcpauth (auth disabled)", tr)
		bb, okB := r.loadFor(bareName, tr)
		if okA && okC && okB && bb.medCPUReq > 0 {
			gaps = append(gaps, fmt.Sprintf("- %s: mcpauth with auth %s, without auth %s, bare mcp-go %s per request: of the %+.0f µs to bare mcp-go, "+
				"authentication accounts for %+.0f µs and the rest of mcpauth's request path (its transport layer, session binding, tools) for %+.0f µs.\n",
				tr, us(a.medCPUReq), us(c.medCPUReq), us(bb.medCPUReq), usf(a.medCPUReq-bb.medCPUReq), usf(a.medCPUReq-c.medCPUReq), usf(c.medCPUReq-bb.medCPUReq)))
		}
	}
	if len(gaps) > 0 {
		w("\nServer CPU per request against bare mcp-go, split with the auth-disabled run (medians of rounds; differences of a few µs are "+
			"within this machine's noise, and a negative share for authentication means the auth-disabled run was the noisier one):\n\n%s", strings.Join(gaps, ""))
	}
	w("\n")
	r.analyzePeer(w)
	if n := len(r.load[0].byRound); n > 1 {
		w("\n<details><summary>Every round: req/s, server CPU/req and the cores other processes used meanwhile</summary>\n\n| server | transport |")
		for i := range n {
			w(" round %d |", i+1)
		}
		w("\n|---|---|")
		for range n {
			w("---:|")
		}
		w("\n")
		for _, l := range r.load {
			w("| %s | %s |", l.server, l.transport)
			for _, x := range l.byRound {
				w(" %.0f req/s, %s, other %.2f |", x.rps, us(x.cpuPerReq()), x.otherUtil())
			}
			w("\n")
		}
		w("\n</details>\n")
	}
	w("\n%s", loadEnd)
	w("\n")
}

// usf is d in µs.
func usf(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// sessionTargets are the session rows of the targets table.
func (r *report) sessionTargets() []target {
	var ts []target
	want := fmt.Sprintf("10,000 at ≤ %.0f KiB", targetSessionKiB)
	if s := r.sessions; s.opened > 0 {
		kib := s.perSession() / 1024
		ok := kib <= targetSessionKiB && s.opened >= 10000 && s.okays == s.sampled && s.alive == s.opened
		ts = append(ts, target{"concurrent authenticated SSE sessions, RSS each", want,
			fmt.Sprintf("%d open, %.1f KiB each; %d/%d sampled served; %d alive", s.opened, kib, s.okays, s.sampled, s.alive), ok, true})
	}
	if s := r.streamSessions; s.opened > 0 {
		kib := s.perSession() / 1024
		ok := kib <= targetSessionKiB && s.opened >= 10000 && s.okays == s.sampled
		ts = append(ts, target{"concurrent authenticated Streamable HTTP sessions (2025-11-25), RSS each", want,
			fmt.Sprintf("%d open, %.1f KiB each; %d/%d sampled served", s.opened, kib, s.okays, s.sampled), ok, true})
	}
	return ts
}

// sessionTargetPrefixes name the rows sessionTargets writes.
var sessionTargetPrefixes = []string{"concurrent authenticated SSE sessions", "concurrent authenticated Streamable HTTP sessions"}

func (r *report) writeSessions(b *strings.Builder) {
	s := r.sessions
	if s.want == 0 {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("## 3. Sessions: %d concurrent authenticated SSE streams\n\n", s.want)
	w("A fresh `mcpauth serve` process (unpinned, `GODEBUG=gctrace=1`) is warmed up with 20 streams that initialize and call whoami, "+
		"then VmRSS is read from /proc/<pid>/status; %d GET /sse streams are opened by 128 concurrent openers, each on its own loopback "+
		"TCP connection with its Bearer token, each counted open when its `endpoint` event arrives; VmRSS is read again 2 s later. "+
		"The server caps open streams per client id (`transport.HTTPConfig.MaxStreamsPerClient`, 32 by default), so the streams use "+
		"%d client ids, %d streams each, their tokens minted with `auth.Issuer` on the server's registry and secret. Then ~50 sessions spread "+
		"over the set are served: POST /message?sessionId=… initialize, notifications/initialized and tools/call whoami, each answer read "+
		"from that session's own stream and checked to name that session's client. Finally every stream is checked to be still open.\n\n",
		s.want, s.clientIDs, s.perClient)
	w("| | |\n|---|---|\n")
	w("| streams opened | %d / %d |\n", s.opened, s.want)
	w("| time to open all | %s (%.0f streams/s; per stream p50 %s, p99 %s) |\n", s.openWall.Round(time.Millisecond), float64(s.opened)/s.openWall.Seconds(), ms(s.openP50), ms(s.openP99))
	w("| server CPU while opening | %s (%s per stream) |\n", s.serverCPUOpen.Round(time.Millisecond), us(s.serverCPUOpen/time.Duration(max(1, s.opened))))
	w("| server VmRSS before / with all open | %.1f MiB / %.1f MiB (VmHWM %.1f MiB) |\n", mib(s.rssBefore), mib(s.rssAfter), mib(s.hwm))
	w("| **RSS per session** | **%.1f KiB** |\n", s.perSession()/1024)
	w("| sampled sessions served (answer on their own stream) | %d / %d |\n", s.okays, s.sampled)
	w("| streams still open at the end | %d / %d |\n", s.alive, s.opened)
	w("| VmRSS 2 s after closing all | %.1f MiB |\n", mib(s.rssClosed))
	if s.gc.line != "" {
		w("| last GC of the server (gctrace) | live heap %.0f MB, heap goal %.0f MB, goroutine stacks %.0f MB |\n", s.gc.liveMB, s.gc.goalMB, s.gc.stMB)
	}
	if s.sampleErr != "" {
		w("| first sample error | %s |\n", s.sampleErr)
	}
	if p := s.prof; p.n > 0 {
		w("\nIn-process attribution (same server assembled in the harness, %d streams from the raw client, which starts no goroutines): "+
			"per session **%.2f goroutines**, **%.1f KiB goroutine stack**, **%.1f KiB live heap** (after GC).\n", p.n, p.goroutinesPer, p.stackPer/1024, p.heapPer/1024)
	}
	w("\n")
	r.writeStreamSessions(b)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r *report) writeIssue(b *strings.Builder) {
	if len(r.issue) == 0 {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("%s## 4. issue_token latency with the durable write\n\n", issueBegin)
	if r.opts.issueOnly {
		m := r.machine
		w("Measured by `%s` on %s (%d CPUs, %s, %s), in a run of its own that took %s (other processes used %.2f cores just before); "+
			"re-running that command replaces this section and its rows of the targets table only.\n\n",
			r.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), m.nproc, m.cpu, m.goVer, r.elapsed.Round(time.Second), r.otherBeforeIssue)
	}
	w("In-process: `auth.Issuer` as `mcpauth.New` builds it, recording in `registry.OpenSQLite` (WAL, `synchronous=FULL`, so each mint is a durable commit "+
		"before the token is returned) on the machine's temp directory, after 20 unmeasured mints. Through tools/call: `issue_token` on the "+
		"`mcpauth serve` binary over Streamable HTTP sessions with the admin token (argument validation, policy, mint, durable write, "+
		"result with client config, transport). %d mints per series; concurrent series split them over %d callers (one session each).\n\n",
		r.opts.mints, r.opts.mintConc)
	w("The server runs unpinned here: it and the load generator share the machine's cores. *Server CPU/mint* is the `mcpauth serve` " +
		"process's CPU time (from /proc) over the series divided by its mints.\n\n")
	w("| series | via | callers | mints | p50 | p90 | p99 | max | mints/s | server CPU/mint |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, i := range r.issue {
		cpu := "—"
		if i.serverCPU > 0 {
			cpu = us(i.serverCPUPerMint())
		}
		w("| %s | %s | %d | %d | %s | %s | %s | %s | %.0f | %s |\n", i.name, i.via, i.callers, i.n, ms(i.p50), ms(i.p90), ms(i.p99), ms(i.max), i.throughput(), cpu)
	}
	w("\n")
	r.analyzeIssue(w)
	w("%s\n", issueEnd)
}

// writeStreamSessions is section 3's Streamable HTTP part.
func (r *report) writeStreamSessions(b *strings.Builder) {
	s := r.streamSessions
	if s.want == 0 {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### %d concurrent authenticated Streamable HTTP sessions (2025-11-25)\n\n", s.want)
	w("Another fresh `mcpauth serve` process, warmed up with 20 sessions that initialize, call whoami and end (DELETE); then %d sessions "+
		"are opened by 64 concurrent openers over a pool of keep-alive connections: POST /mcp initialize (protocol 2025-11-25, the answer "+
		"names the session in `Mcp-Session-Id`) and notifications/initialized, each with its Bearer token. No stream stays open: this is "+
		"what a client between calls leaves on the server (its session, bound to its token and client). The server caps sessions per client id "+
		"(`MCP_MAX_SESSIONS_PER_CLIENT`, 64 by default), so they use %d client ids, %d sessions each. Idle connections are closed, and VmRSS "+
		"is read 2 s later; then ~50 sessions spread over the set call whoami, each checked to answer for its own client.\n\n",
		s.want, s.clientIDs, s.perClient)
	w("| | |\n|---|---|\n")
	w("| sessions opened | %d / %d |\n", s.opened, s.want)
	w("| time to open all | %s (%.0f sessions/s; per session p50 %s, p99 %s) |\n", s.openWall.Round(time.Millisecond), float64(s.opened)/s.openWall.Seconds(), ms(s.openP50), ms(s.openP99))
	w("| server CPU while opening | %s (%s per session) |\n", s.serverCPUOpen.Round(time.Millisecond), us(s.serverCPUOpen/time.Duration(max(1, s.opened))))
	w("| server VmRSS before / with all open | %.1f MiB / %.1f MiB |\n", mib(s.rssBefore), mib(s.rssAfter))
	w("| **RSS per session** | **%.1f KiB** |\n", s.perSession()/1024)
	w("| sampled sessions served | %d / %d |\n", s.okays, s.sampled)
	if s.gc.line != "" {
		w("| last GC of the server (gctrace) | live heap %.0f MB, heap goal %.0f MB, goroutine stacks %.0f MB |\n", s.gc.liveMB, s.gc.goalMB, s.gc.stMB)
	}
	if s.sampleErr != "" {
		w("| first sample error | %s |\n", s.sampleErr)
	}
	w("\n")
}

func rpsOf(r loadResult) float64 { return r.rps }
func cpuOf(r loadResult) float64 { return float64(r.cpuPerReq()) }

// pairedRatio is the median over the rounds of f(a)/f(b) within each
// round, and how it was taken. The machine's speed drifts between rounds
// (a virtual machine's CPU time is not constant), so a ratio of two
// medians taken from different rounds can compare a fast round with a
// slow one; servers of the same round ran within a minute of each other.
// Without rounds on both sides it is the ratio of the values.
func pairedRatio(a, b loadResult, f func(loadResult) float64) (float64, string) {
	if len(a.byRound) == 0 || len(a.byRound) != len(b.byRound) {
		if fb := f(b); fb > 0 {
			return f(a) / fb, "one round"
		}
		return 0, "no rounds"
	}
	var rs []float64
	for i := range a.byRound {
		if fb := f(b.byRound[i]); fb > 0 {
			rs = append(rs, f(a.byRound[i])/fb)
		}
	}
	if len(rs) == 0 {
		return 0, "no rounds"
	}
	slices.Sort(rs)
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return rs[len(rs)/2], fmt.Sprintf("median of the %d rounds' ratios %s", len(rs), strings.Join(parts, ", "))
}
