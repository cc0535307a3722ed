package main

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dockerInstruction is one Dockerfile instruction with its continuation
// lines joined.
type dockerInstruction struct {
	op, args string
}

func readDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDockerfileContract checks what can be checked of the image without a
// Docker engine: the build stage's go build command, run exactly as
// written, makes a static binary carrying the version; the runtime stage
// is non-root and its address, EXPOSE and HEALTHCHECK agree; and the
// HEALTHCHECK command, run against that binary serving with the image's
// settings (on loopback here), passes while it serves and fails once it
// stops.
func TestDockerfileContract(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary the Dockerfile way (about a minute on a cold cache)")
	}
	ins := readDockerfile(t)
	get := func(op string) []string {
		var out []string
		for _, in := range ins {
			if in.op == op {
				out = append(out, in.args)
			}
		}
		return out
	}

	// Runtime stage settings.
	env := map[string]string{}
	for _, e := range get("ENV") {
		for _, kv := range regexp.MustCompile(`(\w+)=(\S+)`).FindAllStringSubmatch(e, -1) {
			env[kv[1]] = kv[2]
		}
	}
	users := get("USER")
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("the image must run as a non-root user, USER = %v", users)
	}
	_, port, ok := strings.Cut(env["MCP_ADDR"], ":")
	if !ok || port == "" {
		t.Fatalf("ENV MCP_ADDR = %q", env["MCP_ADDR"])
	}
	if exp := get("EXPOSE"); len(exp) != 1 || exp[0] != port {
		t.Errorf("EXPOSE %v does not match MCP_ADDR port %s", exp, port)
	}
	if !strings.HasPrefix(env["MCP_DATABASE_URL"], "/data/") {
		t.Errorf("MCP_DATABASE_URL %q is not on the /data volume", env["MCP_DATABASE_URL"])
	}
	var entrypoint, cmd, health []string
	for _, in := range ins {
		switch in.op {
		case "ENTRYPOINT":
			entrypoint = execForm(t, in.args)
		case "CMD":
			cmd = execForm(t, in.args)
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(in.args, "CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK without CMD: %s", in.args)
			}
			health = execForm(t, c) // exec form: distroless has no shell
		}
	}
	if len(entrypoint) != 1 || len(cmd) != 1 || cmd[0] != "serve" {
		t.Fatalf("ENTRYPOINT %v CMD %v, want the binary and [serve]", entrypoint, cmd)
	}
	if len(health) != 4 || health[0] != entrypoint[0] || health[1] != "health" || health[2] != "--url" {
		t.Fatalf("HEALTHCHECK CMD %v, want [%s health --url URL]", health, entrypoint[0])
	}
	hu, err := url.Parse(health[3])
	if err != nil || hu.Port() != port || hu.Path != "/health" {
		t.Fatalf("HEALTHCHECK URL %q does not reach MCP_ADDR port %s at /health", health[3], port)
	}

	// The build stage's go build, exactly as written.
	var build string
	for _, r := range get("RUN") {
		if strings.Contains(r, "go build") {
			build, _, _ = strings.Cut(r, "&&")
		}
	}
	if build == "" {
		t.Fatal("no go build in the Dockerfile")
	}
	out := filepath.Join(t.TempDir(), "mcpauth")
	m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build)
	if m == nil || m[1] != entrypointSource(t, ins, entrypoint[0]) {
		t.Fatalf("go build output %v is not what the runtime stage copies to %s", m, entrypoint[0])
	}
	build = strings.Replace(build, m[0], "-o "+out, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "sh", "-c", build)
	sh.Dir = filepath.Join("..", "..")
	sh.Env = append(os.Environ(), "VERSION=v9.8.7-docker-test")
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	bin, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a dynamic loader (PT_INTERP): not static, will not run on distroless/static")
		}
	}
	if libs, _ := bin.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary links %v: not static", libs)
	}
	bin.Close()
	if v, err := exec.Command(out, "--version").Output(); err != nil || !strings.Contains(string(v), "v9.8.7-docker-test") {
		t.Errorf("--version = %q, %v; want the VERSION build arg", v, err)
	}

	// Serve with the image's settings (the database under a /data-like
	// working directory), on loopback, and run the HEALTHCHECK command.
	data := t.TempDir()
	srvEnv := testEnv(t, "MCP_DATABASE_URL="+filepath.Join(data, filepath.Base(env["MCP_DATABASE_URL"])))
	srv := exec.Command(out, "--env-file=", "serve", "--addr", "127.0.0.1:0")
	srv.Env, srv.Dir = srvEnv, data
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Addr != "" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("server did not report its address")
	}
	hu.Host = a
	check := func() error {
		c := exec.Command(out, health[1:3]...)
		c.Args = append(c.Args, hu.String())
		c.Env = srvEnv
		return c.Run()
	}
	if err := check(); err != nil {
		t.Fatalf("HEALTHCHECK against the running server: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, filepath.Base(env["MCP_DATABASE_URL"]))); err != nil {
		t.Errorf("the registry was not created where MCP_DATABASE_URL points: %v", err)
	}
	_ = srv.Process.Signal(os.Interrupt)
	_ = srv.Wait()
	if err := check(); err == nil {
		t.Fatal("HEALTHCHECK passed with the server stopped")
	}
}

// execForm parses a Dockerfile exec-form array (["a", "b"]).
func execForm(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("%q is not exec form (a JSON array): %v", s, err)
	}
	return out
}

// entrypointSource is the build-stage path the runtime stage copies to
// dest (COPY --from=build SRC DEST).
func entrypointSource(t *testing.T, ins []dockerInstruction, dest string) string {
	t.Helper()
	for _, in := range ins {
		f := strings.Fields(in.args)
		if in.op == "COPY" && len(f) >= 3 && strings.HasPrefix(f[0], "--from=") && f[len(f)-1] == dest {
			return f[len(f)-2]
		}
	}
	t.Fatalf("no COPY --from=… to %s", dest)
	return ""
}
