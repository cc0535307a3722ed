package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"
)

// The markers around section 3 (sessions), so that a -sessions-only run
// replaces it alone.
const (
	sessionsBegin = "<!-- sessions: begin -->\n"
	sessionsEnd   = "<!-- sessions: end -->\n"
)

// sessionsOnly runs the sessions tests (SSE streams and Streamable HTTP
// sessions) and replaces only section 3 and its rows of the targets table
// in o.out.
func sessionsOnly(ctx context.Context, o options, rep *report, tmp string) error {
	env, tok, err := partialRunEnv(ctx, tmp)
	if err != nil {
		return err
	}
	rep.otherBeforeSess = waitQuiet("sessions", o.quietWait)
	log.Printf("sessions: %d concurrent authenticated SSE streams", o.sessions)
	if rep.sessions, err = runSessions(ctx, o, env, tok, tmp); err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	log.Printf("sessions: %d concurrent authenticated Streamable HTTP sessions", o.sessions)
	if rep.streamSessions, err = runStreamableSessions(ctx, o, env, tok); err != nil {
		return fmt.Errorf("streamable sessions: %w", err)
	}
	rep.elapsed = time.Since(rep.started)

	var body strings.Builder
	rep.writeSessions(&body)
	rep.analyzeSessions(func(format string, a ...any) { fmt.Fprintf(&body, format, a...) })
	heading, rest, _ := strings.Cut(body.String(), "\n\n")
	m := rep.machine
	var sec strings.Builder
	sec.WriteString(sessionsBegin)
	fmt.Fprintf(&sec, "%s\n\nMeasured by `%s` on %s (%d CPUs, %s, %s), in a run of its own that took %s; re-running that command "+
		"replaces this section and its rows of the targets table only.\n\n%s", heading, rep.command, rep.started.UTC().Format("2006-01-02 15:04 UTC"),
		m.nproc, m.cpu, m.goVer, rep.elapsed.Round(time.Second), rest)
	sec.WriteString(sessionsEnd)
	err = rewriteReport(o.out, func(doc string) string {
		return spliceTargetRows(spliceSessions(doc, sec.String()), rep.sessionTargets(), sessionTargetPrefixes)
	})
	if err != nil {
		return err
	}
	log.Printf("wrote the sessions section of %s in %s", o.out, rep.elapsed.Round(time.Second))
	fmt.Print(summarize(rep.sessionTargets(), rep.machine))
	return nil
}

// spliceSessions puts section in doc: in place of the marked one, else of
// an unmarked "## 3. Sessions" section (up to the next "## " heading),
// else before "## 4.", else at the end.
func spliceSessions(doc, section string) string {
	if out, ok := replaceMarked(doc, section, sessionsBegin, sessionsEnd); ok {
		return out
	}
	if i := strings.Index(doc, "\n## 3. Sessions"); i >= 0 {
		i++
		if j := strings.Index(doc[i:], "\n## "); j >= 0 {
			return doc[:i] + section + "\n" + doc[i+j+1:]
		}
		return doc[:i] + section
	}
	if i := strings.Index(doc, "\n## 4."); i >= 0 {
		return doc[:i+1] + section + "\n" + doc[i+1:]
	}
	return doc + "\n" + section
}
