package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

const (
	soakBegin = "<!-- soak: begin -->\n"
	soakEnd   = "<!-- soak: end -->\n"
)

// soakSection returns doc's marked soak section ("" when it has none).
func soakSection(doc string) string {
	i := strings.Index(doc, soakBegin)
	if i < 0 {
		return ""
	}
	j := strings.Index(doc[i:], soakEnd)
	if j < 0 {
		return ""
	}
	return doc[i : i+j+len(soakEnd)]
}

// soakRunNote, added to the report's first paragraph, says where section
// 6 comes from.
const soakRunNote = " Section 6 (the soak) also comes from a run of its own (`-soak`), named there.\n"

// noteSoakRun adds soakRunNote to doc's first paragraph, once.
func noteSoakRun(doc string) string {
	if strings.Contains(doc, soakRunNote) {
		return doc
	}
	for _, end := range []string{separateRunNote, wholeRunSentence} {
		if strings.Contains(doc, end) {
			return strings.Replace(doc, end, end[:len(end)-1]+soakRunNote, 1)
		}
	}
	return doc
}

// spliceSoak puts section (with its markers) in doc: in place of the
// marked one, else after the gateway section, else before "## Where the
// misses come from", else before "## Reproduce", else at the end.
func spliceSoak(doc, section string) string {
	if old := soakSection(doc); old != "" {
		return strings.Replace(doc, old, section, 1)
	}
	if i := strings.Index(doc, gatewayEnd); i >= 0 {
		k := i + len(gatewayEnd)
		return doc[:k] + "\n" + section + doc[k:]
	}
	for _, h := range []string{"## Where the misses come from", "## Reproduce"} {
		if i := strings.Index(doc, "\n"+h); i >= 0 {
			return doc[:i+1] + section + "\n" + doc[i+1:]
		}
	}
	return doc + "\n" + section
}

func (r *soakResult) targets() []target {
	return []target{
		{fmt.Sprintf("soak: unexpected errors, %d clients for %s", r.clients, r.forWhat()), "0",
			fmt.Sprintf("%d of %d requests", r.unexpected, r.total), r.unexpected == 0, true},
		{"soak: server RSS after the load vs before", "≤ +10%",
			fmt.Sprintf("%.1f MiB vs %.1f MiB (%+.1f%%; peak %.1f MiB)", mib(r.after.rss), mib(r.before.rss), r.rssChange(), mib(r.peak.rss)), r.rssOK(), true},
	}
}

// span is how long clients ran in all: -soak-duration per round.
func (r *soakResult) span() time.Duration { return time.Duration(max(r.rounds, 1)) * r.dur }

// forWhat names the load: "1m0s", or "2 rounds of 1m0s".
func (r *soakResult) forWhat() string {
	if r.rounds > 1 {
		return fmt.Sprintf("%d rounds of %s", r.rounds, r.dur)
	}
	return r.dur.String()
}

func (r *soakResult) rssChange() float64 {
	if r.before.rss == 0 {
		return 0
	}
	return 100 * (float64(r.after.rss)/float64(r.before.rss) - 1)
}

var soakKindDoes = [numSoakKinds]string{
	kStreamable:   "initialize (2025-11-25, `Mcp-Session-Id`), then `whoami` in the session; a new session (DELETE, initialize) every 100 calls",
	kStateless:    "`tools/call whoami` as a 2026-07-28 request (`_meta` protocol version, `Mcp-Method`, `Mcp-Name`; no session)",
	kSSE:          "`GET /sse`, initialize, then `whoami` by `POST /message`, answers read from the stream; a new stream every 100 calls",
	kExpired:      "a token minted with `\"expires_in\":\"1s\"` before the load, used only after its expiry (+ leeway); every request shape in turn",
	kForgedSecret: "an HS256 token claiming admin, signed with another random 32-byte secret; every request shape in turn",
	kForgedNone:   "`\"alg\":\"none\"` with an empty signature, claiming admin; every request shape in turn",
	kForgedTamper: "a real token of its own whose payload was edited to claim admin, signature kept; every request shape in turn",
	kHammer:       "a wrong-secret token, one request every 0–20 ms (with the default -soak-think; far past the throttle), from the address of one of the first valid clients",
	kAdminTool:    "admin: `issue_token` in a 2025-11-25 session, then one 2026-07-28 `whoami` with the new token",
	kAdminAPI:     "admin: `POST /api/v1/mcp/auth/token` with the API key and with its admin Bearer token in turn, then one `whoami` with the new token",
	kRevoker:      "admin: about once a second, `revoke_token` by jti of a random valid client's current token (not the 10 that share an address with a hammer)",
}

var soakKindWants = [numSoakKinds]string{
	kStreamable:   "200 with its own `client_id`; once revoked, 401 `Token has been revoked`",
	kStateless:    "200 with its own `client_id`; once revoked, 401 `Token has been revoked`",
	kSSE:          "202 then the answer on the stream; once revoked, the stream ends within 2 s and 401 `Token has been revoked`",
	kExpired:      "401 `Token has expired`; 429 only after 20 failures from its address",
	kForgedSecret: "401 `" + descBadSig + "`; 429 only after 20 failures from its address",
	kForgedNone:   "the same",
	kForgedTamper: "the same",
	kHammer:       "401 as above for the first 20 failures, then 429 `too_many_requests` with Retry-After (and a 401 whenever the budget refills); the valid client at the same address is served every time",
	kAdminTool:    "200 with a token for the client id asked; the new token works",
	kAdminAPI:     "200 `success` with a token for the client id asked; the new token works",
	kRevoker:      "200 naming the jti",
}

func (r *soakResult) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.machine
	w("%s## 6. Soak: %d concurrent clients for %s\n\n", soakBegin, r.clients, r.forWhat())
	w("Measured by `%s` on %s (%d CPUs, %s, %s, %s of memory), in a run of its own that took %s; re-running that command "+
		"replaces this section only. The soak is issue 12's \"Faults survived\" target: mixed transports, valid, expired and forged "+
		"tokens, mints and revocations at once, every answer checked, and the server's memory back where it started afterwards.\n\n",
		r.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), m.nproc, m.cpu, m.goVer, m.memory, r.elapsed.Round(time.Second))
	w("| target | wanted | measured | |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		w("| %s | %s | %s | %s |\n", t.name, t.want, t.got, mark(t.ok))
	}
	w("\n**Setup.** One `mcpauth serve` process (the real binary, built by the harness) with a SQLite registry in a temp dir, "+
		"`API_KEY` set (the token API on) and %s; everything else at its default. The failure throttle keeps its defaults "+
		"(named explicitly above: 20 failures, then one more attempt every 3 s). With `MCP_TRUSTED_PROXIES=127.0.0.1` each simulated client "+
		"sends an address of its own in `X-Forwarded-For` (10.x.y.z), as clients behind a reverse proxy do, so the throttle keys "+
		"on clients and can be predicted: a client may get 429 only once its own address has 20 failures. `MCP_LEEWAY=1s` lets "+
		"tokens minted with a 1 s lifetime be expired 2 s later (the default 30 s leeway would accept them for half the run). "+
		"The harness's admin token comes from `mcpauth token issue`; every client's token is minted before the load through the "+
		"token API (API key), one client id per client so per-client caps (64 sessions, 32 streams) are not in play. "+
		"Server and clients share both CPUs (no pinning). The clients share one `http.Client` (keep-alive, %d idle connections per "+
		"host), run one goroutine each (plus one reader per open SSE stream) and pause a random 0–%s between requests "+
		"(admins 0–%s, revokers 0–2 s, clients with bad tokens 0–4 s so their address mostly stays under the throttle, hammers 0–%s). "+
		"A request that gets no answer within %s counts as unexpected.\n\n",
		"`"+strings.Join(r.env, "`, `")+"`", 2*r.clients+64, 2*r.think, 20*r.think, r.think/5, soakReqTimeout)
	w("| clients | kind | does | expects |\n|---:|---|---|---|\n")
	for k := range numSoakKinds {
		w("| %d | %s | %s | %s |\n", r.kinds[k], soakKindNames[k], soakKindDoes[k], soakKindWants[k])
	}
	w("\n**Requests.** %d in %s (%.0f/s), %d revocations; %d unexpected", r.total, r.forWhat(), float64(r.total)/r.span().Seconds(), r.revoked, r.unexpected)
	if r.timeouts > 0 {
		w(" (%d of them timeouts)", r.timeouts)
	}
	w(". Valid `whoami` calls (every transport, including session or stream setup when a call needed one): p50 %s, p90 %s, p99 %s, max %s. "+
		"CPU over the load: server %.2f cores, the harness %.2f cores, other processes on the machine %.2f cores.\n\n",
		ms(pct(r.lats, 50)), ms(pct(r.lats, 90)), ms(pct(r.lats, 99)), ms(pctMax(r.lats)),
		r.serverCPU.Seconds()/r.span().Seconds(), r.clientCPU.Seconds()/r.span().Seconds(), r.otherCPU.Seconds()/r.span().Seconds())
	w("| kind | request → outcome | count |\n|---|---|---:|\n")
	keys := make([]string, 0, len(r.counts))
	for k := range r.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	order := map[string]int{}
	for i, n := range soakKindNames {
		order[n] = i
	}
	sort.SliceStable(keys, func(i, j int) bool {
		ki, _, _ := strings.Cut(keys[i], " | ")
		kj, _, _ := strings.Cut(keys[j], " | ")
		return order[ki] < order[kj]
	})
	for _, k := range keys {
		kind, what, _ := strings.Cut(k, " | ")
		w("| %s | %s | %d |\n", kind, what, r.counts[k])
	}
	if r.unexpected > 0 {
		w("\n**Unexpected errors** (%d), by kind and request:\n\n", r.unexpected)
		ks := make([]string, 0, len(r.unexpBy))
		for k := range r.unexpBy {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			w("- %s: %d\n", k, r.unexpBy[k])
		}
		w("\nFirst samples:\n\n```\n%s\n```\n", strings.Join(r.samples, "\n"))
	} else {
		w("\nNo unexpected errors.\n")
	}
	if r.serverLog != "" {
		w("\nServer log lines at level ERROR or naming a panic:\n\n```\n%s```\n", r.serverLog)
	}
	settled := fmt.Sprintf("%s after the load ended", r.settle.Round(time.Second))
	if !r.settled {
		gc := "no GC had run since the load ended"
		if r.lastGCAfter > 0 {
			gc = fmt.Sprintf("the last GC ran %s after the load ended", r.lastGCAfter.Round(time.Second))
		}
		settled += fmt.Sprintf(" (the settle limit: %d sessions open, %s, RSS %+.1f%% from before)", r.after.sessions, gc, r.rssChange())
	}
	w("\n**Server resources.** *Before*: after the setup mints, 2 s idle. *Peak*: the largest of one-second samples during the load "+
		"(VmHWM for the high-water mark). *After*: once every client had closed its sessions and streams, `mcpauth_open_sessions` was 0, "+
		"a GC had run since the load ended and RSS was within 10%% of *before*, checked every second: %s. RSS and VmHWM from "+
		"/proc/<pid>/status, descriptors from /proc/<pid>/fd, the rest from `GET /metrics` (admin).\n\n", settled)
	w("| | before | peak | after |\n|---|---:|---:|---:|\n")
	w("| RSS | %.1f MiB | %.1f MiB (VmHWM %.1f MiB) | %.1f MiB |\n", mib(r.before.rss), mib(r.peak.rss), mib(r.peak.hwm), mib(r.after.rss))
	row := func(name string, f func(soakSample) int64) {
		w("| %s | %.1f MiB | %.1f MiB | %.1f MiB |\n", name, mib(f(r.before)), mib(f(r.peak)), mib(f(r.after)))
	}
	row("of which anonymous (RssAnon)", func(s soakSample) int64 { return s.anon })
	row("of which file-backed (RssFile: the binary's pages)", func(s soakSample) int64 { return s.file })
	row("Go heap allocated (live objects and uncollected garbage)", func(s soakSample) int64 { return s.heapAlloc })
	row("Go heap in use (spans holding objects)", func(s soakSample) int64 { return s.heapInuse })
	row("Go heap idle, not yet returned to the OS", func(s soakSample) int64 { return s.retained })
	row("goroutine stacks", func(s soakSample) int64 { return s.stacks })
	row("runtime metadata (mspan, GC, other)", func(s soakSample) int64 { return s.meta })
	w("| goroutines | %d | %d | %d |\n", r.before.goroutines, r.peak.goroutines, r.after.goroutines)
	w("| open file descriptors | %d | %d | %d |\n", r.before.fds, r.peak.fds, r.after.fds)
	w("| open sessions (SSE + Streamable HTTP) | %d | %d | %d |\n", r.before.sessions, r.peak.sessions, r.after.sessions)
	if !r.rssOK() && r.after.rss > 0 {
		d := func(f func(soakSample) int64) float64 { return mib(f(r.after)) - mib(f(r.before)) }
		rest := mib(r.after.rss) - mib(r.before.rss) - d(func(s soakSample) int64 { return s.heapInuse }) -
			d(func(s soakSample) int64 { return s.retained }) - d(func(s soakSample) int64 { return s.stacks })
		rest -= d(func(s soakSample) int64 { return s.file })
		w("\n**Where the RSS went.** After the load RSS is %+.1f MiB from before: pages of the binary itself (RssFile, code the load ran for "+
			"the first time; file-backed, so the kernel can drop them) %+.1f MiB, Go heap in use %+.1f MiB (of which allocated %+.1f MiB), "+
			"idle heap not yet returned %+.1f MiB, goroutine stacks %+.1f MiB, and %+.1f MiB of other anonymous memory (runtime metadata "+
			"alone %+.1f MiB: span and GC structures sized at the peak).\n",
			mib(r.after.rss)-mib(r.before.rss), d(func(s soakSample) int64 { return s.file }), d(func(s soakSample) int64 { return s.heapInuse }),
			d(func(s soakSample) int64 { return s.heapAlloc }), d(func(s soakSample) int64 { return s.retained }), d(func(s soakSample) int64 { return s.stacks }),
			rest, d(func(s soakSample) int64 { return s.meta }))
		if r.after.goroutines <= r.before.goroutines && r.after.fds <= r.before.fds {
			w("Goroutines (%d before, %d after) and open descriptors (%d, %d) are back at or below their start: nothing the load opened was left open.\n",
				r.before.goroutines, r.after.goroutines, r.before.fds, r.after.fds)
		}
	}
	if len(r.afterRounds) > 1 {
		w("\n**After each round** (same server, same clients; each round followed by the same settle):\n\n" +
			"| after round | RSS | RssAnon | Go heap allocated | Go heap in use | goroutines | descriptors | sessions |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for i, a := range r.afterRounds {
			w("| %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %d | %d | %d |\n", i+1, mib(a.rss), mib(a.anon), mib(a.heapAlloc), mib(a.heapInuse), a.goroutines, a.fds, a.sessions)
		}
	}
	w("\nFlags: `-soak` (run only the soak; replaces only this section of `-out`), `-soak-clients N` (default 1000), "+
		"`-soak-duration` (default 60s), `-soak-think` (mean pause between a client's requests, default 100ms), "+
		"`-soak-settle` (how long to wait for the server to settle after the load, default 3m), `-soak-rounds N` (rounds of load on the same server, each followed by the settle, default 1).\n\n%s", soakEnd)
	return b.String()
}

func pctMax(sorted []time.Duration) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[len(sorted)-1]
}
