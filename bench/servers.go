package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverEnv is what every mcpauth process of the run shares: the binary,
// the signing secret and the registry file.
type serverEnv struct {
	bin    string
	dir    string
	dbPath string
	secret string
}

func newServerEnv(bin, dir string) *serverEnv {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return &serverEnv{bin: bin, dir: dir, dbPath: filepath.Join(dir, "registry.db"), secret: hex.EncodeToString(b[:])}
}

func (e *serverEnv) environ(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.dir,
		"MCP_JWT_SECRET=" + e.secret,
		"MCP_DATABASE_URL=" + e.dbPath,
		"MCP_LOG_LEVEL=warn",
	}
	if a := os.Getenv("BENCH_SERVER_PPROF"); a != "" {
		// mcpauth serves Go's profiles there (cmd/mcpauth/debugpprof.go).
		env = append(env, "MCPAUTH_DEBUG_PPROF="+a, "MCPAUTH_DEBUG_MEMPROFILERATE="+os.Getenv("BENCH_SERVER_MEMPROFILERATE"))
	}
	return append(env, extra...)
}

// mintToken runs `mcpauth token issue <id> 1h --scope admin --json`.
func (e *serverEnv) mintToken(ctx context.Context, clientID string) (string, error) {
	return e.mintTokenScopes(ctx, clientID, "admin")
}

// mintTokenScopes runs `mcpauth token issue <id> 1h --scope <scope> --json`.
func (e *serverEnv) mintTokenScopes(ctx context.Context, clientID, scope string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "token", "issue", clientID, "1h", "--scope", scope, "--json")
	cmd.Env = e.environ()
	cmd.Dir = e.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mcpauth token issue: %v: %s", err, stderr.String())
	}
	var res struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Token == "" {
		return "", fmt.Errorf("mcpauth token issue --json: no token in %q", out)
	}
	return res.Token, nil
}

// proc is a server started by the harness.
type proc struct {
	name  string
	cmd   *exec.Cmd
	url   string
	stdin io.WriteCloser
	done  chan struct{}
	log   *bytes.Buffer
	mu    sync.Mutex
}

var (
	procsMu sync.Mutex
	procs   = map[*proc]bool{}
)

// cleanupAll stops every server the harness started and is still running.
func cleanupAll() {
	procsMu.Lock()
	list := make([]*proc, 0, len(procs))
	for p := range procs {
		list = append(list, p)
	}
	procsMu.Unlock()
	for _, p := range list {
		p.stop()
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to this process (by its pid) and SIGKILL after 10s.
func (p *proc) stop() {
	procsMu.Lock()
	running := procs[p]
	delete(procs, p)
	procsMu.Unlock()
	if !running {
		return
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpuTime is the process's user+system CPU time (from /proc/<pid>/stat).
func (p *proc) cpuTime() time.Duration { return procCPU(p.pid()) }

// rss is VmRSS from /proc/<pid>/status, in bytes.
func (p *proc) rss() (int64, error) { return procStatusKB(p.pid(), "VmRSS") }

func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// procCPU sums utime+stime of every thread of pid.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// fields after ")": state(0) ... utime(11) stime(12)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startProc starts argv (pinned to cpus when not empty), remembers it for
// cleanup and waits until healthURL answers 200.
func startProc(ctx context.Context, name string, argv []string, env []string, dir, cpus, url string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	p := &proc{name: name, cmd: cmd, url: url, done: make(chan struct{}), log: &bytes.Buffer{}}
	cmd.Stdout = lockedWriter{p}
	cmd.Stderr = lockedWriter{p}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	procsMu.Lock()
	procs[p] = true
	procsMu.Unlock()
	go func() { _ = cmd.Wait(); close(p.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited during start: %s", name, p.output())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not answer %s/health within 30s: %s", name, url, p.output())
		}
		resp, err := http.Get(url + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.log.Write(b)
	if w.p.log.Len() > 256<<10 { // keep the latest output
		tail := append([]byte{}, w.p.log.Bytes()[w.p.log.Len()-128<<10:]...)
		w.p.log.Reset()
		w.p.log.Write(tail)
	}
	return len(b), nil
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.TrimSpace(p.log.String())
}

// startMcpauth runs `mcpauth serve --addr 127.0.0.1:<port>`; authOff
// serves the same binary in dev mode with MCP_AUTH_ENABLED=false, i.e.
// bearer.MiddlewareConfig{Disabled: true, DevIdentity: dev-anonymous}.
func startMcpauth(ctx context.Context, env *serverEnv, name string, authOff bool, cpus string, moreEnv ...string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	extra := append([]string{"MCP_PUBLIC_URL=http://" + addr}, moreEnv...)
	if authOff {
		extra = append(extra, "MCP_ENV=development", "MCP_AUTH_ENABLED=false")
	}
	return startProc(ctx, name, []string{env.bin, "serve", "--addr", addr}, env.environ(extra...), env.dir, cpus, "http://"+addr)
}

// installPeer runs `npm ci` in bench/peer (the committed lockfile).
func installPeer(ctx context.Context) (string, error) {
	dir, err := filepath.Abs(filepath.Join("bench", "peer"))
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", errors.New("node not found on PATH")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return dir, nil
}

// startPeer runs the TypeScript SDK server (bench/peer/server.mjs).
func startPeer(ctx context.Context, env *serverEnv, dir, cpus string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	penv := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + env.dir, "NODE_ENV=production",
		"MCP_JWT_SECRET=" + env.secret, "MCP_ISSUER=mcpauth", "PORT=" + strconv.Itoa(port),
	}
	return startProc(ctx, "ts-peer", []string{"node", "server.mjs"}, penv, dir, cpus, url)
}

func haveTaskset() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}

// pinSelf sets the CPU affinity of every thread of this process (threads
// created later inherit it from their creator).
func pinSelf(cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s: %v: %s", cpus, err, out)
	}
	return nil
}

func unpinSelf() {
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	if err := pinSelf(all); err != nil {
		log.Print(err)
	}
}

// nodeVersion is `node --version`, or "" without node.
func nodeVersion() string {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	if sc.Scan() {
		return sc.Text()
	}
	return ""
}
