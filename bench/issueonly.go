package main

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"strings"
	"time"
)

// The markers around section 4 (issue_token), so that an -issue-only run
// replaces it alone.
const (
	issueBegin = "<!-- issue_token: begin -->\n"
	issueEnd   = "<!-- issue_token: end -->\n"
)

// Targets of issue #15 for issue_token through tools/call.
const (
	targetIssueCPU = 150 * time.Microsecond // server CPU per mint
	targetIssueP99 = 10 * time.Millisecond  // with the concurrent callers
)

// issueOnly runs only the issue_token latency series (section 4) and
// replaces only that section and its rows of the targets table in o.out.
func issueOnly(ctx context.Context, o options, rep *report, tmp string) error {
	log.Print("building mcpauth")
	bin := filepath.Join(tmp, "mcpauth")
	if err := buildMcpauth(ctx, bin); err != nil {
		return err
	}
	env := newServerEnv(bin, tmp)
	tok, err := measureIssue(ctx, o, rep, env)
	if err != nil {
		return err
	}
	rep.tokenLen = len(tok)
	rep.elapsed = time.Since(rep.started)

	var sec strings.Builder
	rep.writeIssue(&sec)
	err = rewriteReport(o.out, func(doc string) string {
		doc = spliceIssue(doc, sec.String())
		doc = spliceTargetRows(doc, rep.issueTargets(), issueTargetPrefixes)
		doc = noteRun(doc, issueRunNote)
		if !strings.Contains(doc, issueOnlyFlag) {
			doc = strings.Replace(doc, "`-out FILE`, `-timeout`", issueOnlyFlag+"`-out FILE`, `-timeout`", 1)
		}
		return doc
	})
	if err != nil {
		return err
	}
	log.Printf("wrote the issue_token section of %s in %s", o.out, rep.elapsed.Round(time.Second))
	fmt.Print(summarize(rep.issueTargets(), rep.machine))
	return nil
}

// measureIssue runs the issue_token series of a run, in-process and then
// through tools/call on the binary, into rep, and returns the bench
// client's token. The in-process series leave the registry holding 1,000
// revoked jtis, the state the later sections start from.
func measureIssue(ctx context.Context, o options, rep *report, env *serverEnv) (string, error) {
	rep.otherBeforeIssue = waitQuiet("issue_token", o.quietWait)
	log.Printf("issue_token latency, in-process (%d sequential, %d with %d callers)", o.mints, o.mints, o.mintConc)
	ir, err := issueInProcess(ctx, env.dbPath, o.mints, o.mintConc)
	if err != nil {
		return "", fmt.Errorf("issue_token in-process: %w", err)
	}
	rep.issue = append(rep.issue, ir...)
	tok, err := env.mintToken(ctx, "bench-client")
	if err != nil {
		return "", err
	}
	log.Print("issue_token latency through tools/call")
	ir, err = issueViaTool(ctx, env, tok, o.mints, o.mintConc)
	if err != nil {
		return "", fmt.Errorf("issue_token via tools/call: %w", err)
	}
	rep.issue = append(rep.issue, ir...)
	return tok, nil
}

// issueOnlyFlag is the Reproduce section's text for -issue-only.
const issueOnlyFlag = "`-issue-only` (only the issue_token latency; replaces only section 4 and its rows of the targets table), "

// issueRunNote, added to the report's first paragraph, says where section
// 4 and its targets come from.
const issueRunNote = " Section 4 (issue_token) and its rows of the targets table also come from a run of their own (`-issue-only`), named there."

// spliceIssue puts section (with its markers) in doc: in place of the
// marked one, else of an unmarked "## 4. issue_token" section (up to the
// next "## " heading or marker comment), else before "## 5.", "## Where the misses come
// from" or "## Reproduce", else at the end. The section carries its own
// analysis, so an "### issue_token" subsection left in "Where the misses
// come from" by an older run is removed.
func spliceIssue(doc, section string) string {
	doc = dropIssueAnalysis(doc)
	if i := strings.Index(doc, issueBegin); i >= 0 {
		if j := strings.Index(doc[i:], issueEnd); j >= 0 {
			k := i + j + len(issueEnd)
			if strings.HasPrefix(doc[k:], "\n") && strings.HasSuffix(section, issueEnd+"\n") {
				k++ // the blank line after the section is the section's own
			}
			return doc[:i] + section + doc[k:]
		}
	}
	if i := strings.Index(doc, "\n## 4. issue_token"); i >= 0 {
		i++
		j := len(doc)
		for _, next := range []string{"\n## ", "\n<!-- "} {
			if k := strings.Index(doc[i:], next); k >= 0 && i+k+1 < j {
				j = i + k + 1
			}
		}
		return doc[:i] + section + doc[j:]
	}
	for _, h := range []string{"## 5.", "<!-- gateway benchmarks: begin -->", "## Where the misses come from", "## Reproduce"} {
		if i := strings.Index(doc, "\n"+h); i >= 0 {
			return doc[:i+1] + section + "\n" + doc[i+1:]
		}
	}
	return doc + "\n" + section
}

// dropIssueAnalysis removes "### issue_token …" subsections (up to the
// next "### " or "## " heading) that lie outside section 4's markers.
func dropIssueAnalysis(doc string) string {
	const h = "\n### issue_token"
	from := 0
	for {
		i := strings.Index(doc[from:], h)
		if i < 0 {
			return doc
		}
		i += from + 1
		if b, e := strings.LastIndex(doc[:i], issueBegin), strings.LastIndex(doc[:i], issueEnd); b >= 0 && b > e {
			from = i // inside the marked section: kept
			continue
		}
		j := len(doc)
		for _, next := range []string{"\n### ", "\n## "} {
			if k := strings.Index(doc[i:], next); k >= 0 && i+k+1 < j {
				j = i + k + 1
			}
		}
		doc = doc[:i] + doc[j:]
		from = i
	}
}

// issueTargets are the issue_token rows of the targets table; their names
// all start with issueTargetPrefixes.
func (r *report) issueTargets() []target {
	var ts []target
	if i, ok := r.issueFor("auth.Issuer + SQLite, sequential"); ok {
		ts = append(ts, target{"issue_token p50 with the durable write (in-process, sequential)", "≤ 2 ms", ms(i.p50), i.p50 <= targetIssueP50, true})
	}
	for _, i := range r.issue {
		if strings.Contains(i.name, "concurrent") && i.via == "in-process" {
			ts = append(ts, target{fmt.Sprintf("issue_token p50, %d concurrent callers (in-process)", i.callers), "≤ 2 ms", ms(i.p50), i.p50 <= targetIssueP50, true})
		}
		if i.via == "in-process" {
			continue
		}
		series := strings.TrimPrefix(i.name, "tools/call issue_token, ")
		ts = append(ts, target{"issue_token p50 through tools/call (" + series + ")", "≤ 2 ms", ms(i.p50), i.p50 <= targetIssueP50, true})
		if i.callers > 1 {
			ts = append(ts, target{"issue_token p99 through tools/call (" + series + ")", "≤ 10 ms", ms(i.p99), i.p99 <= targetIssueP99, true})
		}
		if i.serverCPU > 0 {
			ts = append(ts, target{"issue_token server CPU per mint through tools/call (" + series + ")", "≤ 150 µs",
				us(i.serverCPUPerMint()), i.serverCPUPerMint() <= targetIssueCPU, true})
		}
	}
	return ts
}

// issueTargetPrefixes start the names of issueTargets' rows.
var issueTargetPrefixes = []string{"issue_token "}
