package upstream

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// dialStdio starts the entry's command as a child in its own process
// group (so stopping it stops whatever it spawned, as npx does) and
// speaks MCP over its stdin and stdout. Its stderr goes to the log, line
// by line, tagged with the upstream's name. The connection is lost when
// the child exits.
func (u *Upstream) dialStdio(life context.Context) (*conn, error) {
	var cmd *exec.Cmd
	stderr := &logWriter{u: u}
	mk := func(_ context.Context, command string, env []string, args []string) (*exec.Cmd, error) {
		cmd = exec.Command(command, args...)
		cmd.Env = env
		cmd.Stderr = stderr
		cmd.SysProcAttr = childAttr()
		return cmd, nil
	}
	tr := transport.NewStdioWithOptions(u.entry.Command, u.childEnv(), u.entry.Args, transport.WithCommandFunc(mk))
	c, err := u.start(life, tr)
	if err != nil {
		return nil, fmt.Errorf("command %q: %w", u.entry.Command, err)
	}
	proc := cmd.Process
	exited := make(chan struct{})
	go func() {
		// The transport's Close waits for the child too; whichever
		// wait comes second only learns that it has gone.
		_, _ = proc.Wait()
		close(exited)
		c.markLost()
	}()
	closeClient := c.stop
	c.stop = func() {
		done := make(chan struct{})
		go func() { closeClient(); close(done) }()
		select {
		case <-done:
		case <-time.After(u.opts.StopTimeout):
		}
		// Whatever the child left behind in its group goes too.
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
		<-exited
	}
	return c, nil
}

// childEnv is the child's environment: the operator-supplied base (which
// the binary strips of mcpauth's secrets) plus the entry's env.
func (u *Upstream) childEnv() []string {
	env := slices.Clone(u.opts.Env)
	for k, v := range u.entry.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// logWriter turns a child's stderr into log lines tagged with the
// upstream's name. Lines are bounded so a child cannot grow a log record
// without limit.
type logWriter struct {
	u       *Upstream
	partial []byte
}

const maxStderrLine = 4096

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := slices.Index(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) > maxStderrLine {
				w.flush()
			}
			break
		}
		w.partial = append(w.partial, p[:i]...)
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *logWriter) flush() {
	line := strings.TrimRight(string(w.partial), "\r")
	w.partial = w.partial[:0]
	if line == "" {
		return
	}
	if len(line) > maxStderrLine {
		line = line[:maxStderrLine] + "…"
	}
	w.u.log.Info("upstream stderr", "upstream", w.u.entry.Name, "line", line)
}

var _ io.Writer = (*logWriter)(nil)
