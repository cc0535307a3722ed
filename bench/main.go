// Command bench runs mcpauth's whole benchmark set and writes
// docs/benchmarks.md:
//
//   - the Go micro-benchmarks (go test -bench -benchmem) of ./auth and
//     ./transport, with CPU and allocation profiles of token verification
//     and of one in-process tools/call;
//   - issue_token latency with the durable SQLite write, in-process
//     (auth.Issuer + registry.OpenSQLite) and through tools/call;
//   - a load test of tools/call (whoami) over Streamable HTTP and legacy SSE
//     with N concurrent clients against (a) mcpauth with auth, (b) the same
//     server with auth disabled (the ceiling) and (c) the official
//     TypeScript SDK server behind requireBearerAuth (bench/peer);
//   - a sessions test: 10,000 concurrent authenticated SSE streams, server
//     RSS per session and time to open them;
//   - the gateway: tools/call relayed by mcpauth to an HTTP upstream vs
//     calling it directly, and to a stdio upstream with a 20 ms tool, 32
//     callers vs 1 (gateway.go; -gateway-only runs just these);
//   - -issue-only runs just the issue_token series (issueonly.go);
//   - the soak, run only on its own (go run ./bench -soak; soak.go): 1,000
//     concurrent clients for 60 s mixing transports and valid, expired and
//     forged tokens, mints and revocations, every answer checked, and the
//     server's RSS before, at peak and after.
//
// Everything runs on loopback, is bounded in time and cleans up after
// itself. Run it from the module root:
//
//	go run ./bench            # or bench/run.sh
//	go run ./bench -help      # flags
//
// It is a package main without tests, so go test ./... never runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	out              string
	clients          int
	duration         time.Duration
	rounds           int
	warmup           time.Duration
	sessions         int
	streamsPerClient int
	mints            int
	mintConc         int
	benchtime        string
	benchCount       int
	pin              bool
	skipGo           bool
	skipLoad         bool
	skipPeer         bool
	skipBare         bool
	skipGoSDK        bool
	loadOnly         bool
	sessionsOnly     bool
	skipSess         bool
	skipIssue        bool
	issueOnly        bool
	skipGateway      bool
	gatewayOnly      bool
	gatewayRounds    int
	timeout          time.Duration
	quietWait        time.Duration
	soak             bool
	soakClients      int
	soakDuration     time.Duration
	soakThink        time.Duration
	soakSettle       time.Duration
	soakRounds       int
}

func main() {
	reexecMode("upstream", serveUpstream) // an upstream of the gateway benchmarks (upstream.go)
	reexecMode("peer", servePeer)         // a Go peer of the load test (peers.go)
	reexecMode("relay", serveRelay)       // a floor of the gateway benchmarks (relay.go)
	var o options
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "report to write (relative to the module root)")
	flag.IntVar(&o.clients, "clients", 16, "concurrent clients in the load test")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "measured time per load run")
	flag.IntVar(&o.rounds, "rounds", 5, "load rounds; servers alternate within a round and the median round is reported")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up per load run")
	flag.IntVar(&o.sessions, "sessions", 10000, "concurrent SSE sessions in the sessions test")
	flag.IntVar(&o.streamsPerClient, "streams-per-client", 32, "SSE streams per client id in the sessions test (the server's per-client cap, transport.HTTPConfig.MaxStreamsPerClient, defaults to 32)")
	flag.IntVar(&o.mints, "mints", 1000, "issue_token calls per latency series")
	flag.IntVar(&o.mintConc, "mint-concurrency", 16, "concurrent callers in the concurrent issue_token series")
	flag.StringVar(&o.benchtime, "benchtime", "500ms", "go test -benchtime for the micro-benchmarks")
	flag.IntVar(&o.benchCount, "benchcount", 3, "go test -count for the micro-benchmarks; the fastest run of each is reported")
	flag.BoolVar(&o.pin, "pin", true, "pin each server to CPU 0 and the load generator to CPU 1 (needs taskset and 2+ CPUs)")
	flag.BoolVar(&o.skipGo, "skip-gobench", false, "skip the Go micro-benchmarks")
	flag.BoolVar(&o.skipLoad, "skip-load", false, "skip the load test")
	flag.BoolVar(&o.skipPeer, "skip-peer", false, "skip the TypeScript peer (no npm ci)")
	flag.BoolVar(&o.skipBare, "skip-bare", false, "skip the bare mcp-go peer in the load test (peers.go)")
	flag.BoolVar(&o.skipGoSDK, "skip-gosdk", false, "skip the Go SDK peer in the load test (peers.go)")
	flag.BoolVar(&o.loadOnly, "load-only", false, "run only the load test and replace only its section (2) and its rows of the targets table in -out (the rest of the report is kept)")
	flag.BoolVar(&o.skipSess, "skip-sessions", false, "skip the sessions test")
	flag.BoolVar(&o.sessionsOnly, "sessions-only", false, "run only the sessions tests (SSE streams and Streamable HTTP sessions) and replace only their section (3) and rows of the targets table in -out")
	flag.BoolVar(&o.skipIssue, "skip-issue", false, "skip the issue_token latency test")
	flag.BoolVar(&o.issueOnly, "issue-only", false, "run only the issue_token latency series and replace only their section (4) and its rows of the targets table in -out")
	flag.BoolVar(&o.skipGateway, "skip-gateway", false, "skip the gateway benchmarks")
	flag.BoolVar(&o.gatewayOnly, "gateway-only", false, "run only the gateway benchmarks and replace only their section of -out (the rest of the report is kept)")
	flag.IntVar(&o.gatewayRounds, "gateway-rounds", 3, "gateway rounds (direct and via mcpauth alternate within a round; the median round is reported)")
	flag.BoolVar(&o.soak, "soak", false, "run only the soak (mixed clients with valid, expired and forged tokens, mints and revocations; soak.go) and replace only its section of -out")
	flag.IntVar(&o.soakClients, "soak-clients", 1000, "concurrent clients in the soak")
	flag.DurationVar(&o.soakDuration, "soak-duration", 60*time.Second, "how long the soak's load lasts")
	flag.DurationVar(&o.soakThink, "soak-think", 100*time.Millisecond, "mean pause between a soak client's requests (uniform in [0, 2×])")
	flag.DurationVar(&o.soakSettle, "soak-settle", 3*time.Minute, "after the soak's load, how long to wait for the server to settle (sessions closed, a GC, RSS back)")
	flag.IntVar(&o.soakRounds, "soak-rounds", 1, "soak load rounds on the same server, each followed by the settle (RSS after each round shows whether memory keeps growing)")
	flag.DurationVar(&o.quietWait, "quiet-wait", 20*time.Second, "before each measurement, wait up to this long for other processes on the machine to go idle")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "hard limit for the whole run")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")

	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.Chdir(root); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	if err := run(ctx, o); err != nil {
		cleanupAll()
		log.Fatal(err)
	}
	cleanupAll()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the mcpauth module")
	}
	return filepath.Dir(mod), nil
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	rep := &report{opts: o, started: start, machine: describeMachine(), command: commandLine()}
	if o.pin && (runtime.NumCPU() < 2 || !haveTaskset()) {
		log.Printf("pinning unavailable (CPUs=%d, taskset=%v); running unpinned", runtime.NumCPU(), haveTaskset())
		o.pin = false
		rep.opts.pin = false
	}
	raised := raiseNoFile(o.sessions*2 + 4096)
	rep.nofile = raised

	tmp, err := os.MkdirTemp("", "mcpauth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if o.gatewayOnly {
		return gatewayOnly(ctx, o, tmp, start)
	}
	if o.soak {
		return soakOnly(ctx, o, tmp, start)
	}
	if !o.loadOnly && !o.skipLoad && o.skipGo && o.skipSess && o.skipIssue && o.skipGateway {
		// Everything but the load skipped: keep the rest of the report.
		log.Print("only the load test runs: as -load-only, replacing only its section of " + o.out)
		o.loadOnly, rep.opts.loadOnly = true, true
	}
	if o.loadOnly {
		return loadOnly(ctx, o, rep, tmp)
	}
	if o.sessionsOnly {
		return sessionsOnly(ctx, o, rep, tmp)
	}
	if o.issueOnly {
		return issueOnly(ctx, o, rep, tmp)
	}

	if !o.skipGo {
		rep.otherBeforeGo = waitQuiet("go benchmarks", o.quietWait)
		log.Print("Go micro-benchmarks (./auth, ./transport)")
		gb, err := runGoBenchmarks(ctx, o, tmp)
		if err != nil {
			return fmt.Errorf("go benchmarks: %w", err)
		}
		rep.gobench = gb
	}

	log.Print("building mcpauth")
	bin := filepath.Join(tmp, "mcpauth")
	if err := buildMcpauth(ctx, bin); err != nil {
		return err
	}
	env := newServerEnv(bin, tmp)

	// The registry the servers use: the in-process issue_token series
	// write into it, and one series' 1,000 tokens are then revoked, so the
	// servers start with 1,000 revoked jtis in their revocation set (the
	// same size as in the micro-benchmarks and the peer).
	var tok string
	if !o.skipIssue {
		if tok, err = measureIssue(ctx, o, rep, env); err != nil {
			return err
		}
	} else {
		if err := seedRevoked(ctx, env.dbPath, 1000); err != nil {
			return err
		}
		if tok, err = env.mintToken(ctx, "bench-client"); err != nil {
			return err
		}
	}
	rep.tokenLen = len(tok)

	if !o.skipLoad {
		lr, profs, err := runLoad(ctx, o, env, tok, tmp)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		rep.load, rep.perf = lr, profs
	}

	if !o.skipSess {
		rep.otherBeforeSess = waitQuiet("sessions", o.quietWait)
		log.Printf("sessions: %d concurrent authenticated SSE streams", o.sessions)
		sr, err := runSessions(ctx, o, env, tok, tmp)
		if err != nil {
			return fmt.Errorf("sessions: %w", err)
		}
		rep.sessions = sr
		log.Printf("sessions: %d concurrent authenticated Streamable HTTP sessions", o.sessions)
		if rep.streamSessions, err = runStreamableSessions(ctx, o, env, tok); err != nil {
			return fmt.Errorf("streamable sessions: %w", err)
		}
	}

	if !o.skipGateway {
		log.Print("gateway: tools/call relayed to an HTTP and a stdio upstream")
		g, err := runGateway(ctx, o, env, tmp)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		rep.gateway = g
	}

	rep.elapsed = time.Since(start)
	if err := rep.write(o.out); err != nil {
		return err
	}
	log.Printf("wrote %s in %s", o.out, rep.elapsed.Round(time.Second))
	fmt.Print(rep.summary())
	return nil
}

func buildMcpauth(ctx context.Context, bin string) error {
	args := []string{"build", "-o", bin}
	if os.Getenv("BENCH_SERVER_PPROF") != "" {
		// The server serves Go's profiles (cmd/mcpauth/debugpprof.go).
		args = append(args, "-tags", "debugpprof")
	}
	if out, err := exec.CommandContext(ctx, "go", append(args, "./cmd/mcpauth")...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/mcpauth: %v\n%s", err, out)
	}
	return nil
}

func commandLine() string {
	args := os.Args[1:]
	if len(args) == 0 {
		return "go run ./bench"
	}
	return "go run ./bench " + strings.Join(args, " ")
}

// raiseNoFile raises RLIMIT_NOFILE (soft and, when permitted, hard) to at
// least want; children inherit it. It returns the soft limit in force.
func raiseNoFile(want int) uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	w := uint64(want)
	if l.Cur >= w {
		return l.Cur
	}
	if l.Max < w {
		try := syscall.Rlimit{Cur: w, Max: w}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
			return w
		}
	}
	l.Cur = min(w, l.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}
