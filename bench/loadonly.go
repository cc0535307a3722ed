package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// loadOnly runs only the load test and writes its section (2) and its rows
// of the targets table into o.out, replacing the ones there, so the rest
// of the report keeps the run that produced it.
func loadOnly(ctx context.Context, o options, rep *report, tmp string) error {
	env, tok, err := partialRunEnv(ctx, tmp)
	if err != nil {
		return err
	}
	rep.tokenLen = len(tok)
	lr, _, err := runLoad(ctx, o, env, tok, tmp)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	rep.load = lr
	rep.elapsed = time.Since(rep.started)

	var sec strings.Builder
	rep.writeLoad(&sec)
	err = rewriteReport(o.out, func(doc string) string {
		doc = spliceLoad(doc, sec.String())
		doc = spliceTargetRows(doc, rep.loadTargets(), loadTargetPrefixes)
		doc = noteRun(doc, loadRunNote)
		// The Reproduce section's flag list, as a whole run now writes it.
		if loc := oldSkipFlags.FindStringIndex(doc); loc != nil {
			doc = doc[:loc[0]] + newSkipFlags + doc[loc[1]:]
		}
		return doc
	})
	if err != nil {
		return err
	}
	log.Printf("wrote the load section of %s in %s", o.out, rep.elapsed.Round(time.Second))
	fmt.Print(summarize(rep.loadTargets(), rep.machine))
	return nil
}

// partialRunEnv prepares a run of one section (-load-only,
// -sessions-only): the mcpauth binary, its environment with the same
// registry state as a whole run (1,000 revoked jtis), and the bench
// client's token.
func partialRunEnv(ctx context.Context, tmp string) (*serverEnv, string, error) {
	log.Print("building mcpauth")
	bin := filepath.Join(tmp, "mcpauth")
	if err := buildMcpauth(ctx, bin); err != nil {
		return nil, "", err
	}
	env := newServerEnv(bin, tmp)
	if err := seedRevoked(ctx, env.dbPath, 1000); err != nil {
		return nil, "", err
	}
	tok, err := env.mintToken(ctx, "bench-client")
	if err != nil {
		return nil, "", err
	}
	return env, tok, nil
}

// rewriteReport replaces the report at path (none yet: empty) by edit
// of it: a run of one section keeps the rest.
func rewriteReport(path string, edit func(doc string) string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(edit(string(old))), 0o644)
}

// replaceMarked replaces the part of doc from begin to end (markers
// included) by section, if doc has it.
func replaceMarked(doc, section, begin, end string) (string, bool) {
	i := strings.Index(doc, begin)
	if i < 0 {
		return doc, false
	}
	j := strings.Index(doc[i:], end)
	if j < 0 {
		return doc, false
	}
	return doc[:i] + section + doc[i+j+len(end):], true
}

// spliceLoad puts section (with its markers) in doc: in place of the marked
// one, else in place of an unmarked "## 2. Load" section (up to the next
// "## " heading), else before "## 3.", "## Where the misses come from" or
// "## Reproduce", else at the end.
func spliceLoad(doc, section string) string {
	if i := strings.Index(doc, loadBegin); i >= 0 {
		if j := strings.Index(doc[i:], loadEnd); j >= 0 {
			k := i + j + len(loadEnd)
			if strings.HasPrefix(doc[k:], "\n") && strings.HasSuffix(section, loadEnd+"\n") {
				k++
			}
			return doc[:i] + section + doc[k:]
		}
	}
	if i := strings.Index(doc, "\n## 2. Load"); i >= 0 {
		i++
		if j := strings.Index(doc[i:], "\n## "); j >= 0 {
			return doc[:i] + section + doc[i+j+1:]
		}
		return doc[:i] + section
	}
	for _, h := range []string{"## 3.", "## Where the misses come from", "## Reproduce"} {
		if i := strings.Index(doc, "\n"+h); i >= 0 {
			return doc[:i+1] + section + doc[i+1:]
		}
	}
	return doc + "\n" + section
}

// spliceTargetRows replaces the rows of doc's targets table whose target
// name starts with one of prefixes by ts (at the place of the first one
// removed, else before the sessions rows, else at the end of the table).
func spliceTargetRows(doc string, ts []target, prefixes []string) string {
	h := strings.Index(doc, "## Targets\n")
	if h < 0 {
		return doc
	}
	lines := strings.SplitAfter(doc[h:], "\n")
	var out []string
	at, sess, inTable, end := -1, -1, false, -1
	for n, l := range lines {
		isRow := strings.HasPrefix(l, "|")
		if inTable && !isRow {
			end = n
			break
		}
		if !isRow {
			out = append(out, l)
			continue
		}
		inTable = true
		drop := false
		for _, p := range prefixes {
			drop = drop || strings.HasPrefix(l, "| "+p)
		}
		if drop {
			if at < 0 {
				at = len(out)
			}
			continue
		}
		if sess < 0 && strings.HasPrefix(l, "| concurrent authenticated SSE sessions") {
			sess = len(out)
		}
		out = append(out, l)
	}
	if end < 0 {
		return doc // no end of the table: leave it alone
	}
	if at < 0 {
		at = sess
	}
	if at < 0 {
		at = len(out)
	}
	var rows []string
	for _, t := range ts {
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |\n", t.name, t.want, t.got, mark(t.ok)))
	}
	out = append(out[:at], append(rows, out[at:]...)...)
	return doc[:h] + strings.Join(out, "") + strings.Join(lines[end:], "")
}

// loadRunNote, added to the report's first paragraph, says where section 2
// and its targets come from.
const loadRunNote = " Section 2 (the load) and its rows of the targets table also come from a run of their own (`-load-only`), named there."

// noteRun adds note (loadRunNote, issueRunNote) to the end of doc's first
// paragraph, once.
func noteRun(doc, note string) string {
	if strings.Contains(doc, note) {
		return doc
	}
	i := strings.Index(doc, "\nGenerated by ")
	if i < 0 {
		return doc
	}
	j := strings.Index(doc[i+1:], "\n\n")
	if j < 0 {
		return doc
	}
	k := i + 1 + j
	return doc[:k] + note + doc[k:]
}

// oldSkipFlags matches the skip flags in an older Reproduce section.
var oldSkipFlags = regexp.MustCompile("`-skip-gobench\\|[^`]*`, ")

const (
	newSkipFlags = "`-skip-gobench|-skip-load|-skip-peer|-skip-bare|-skip-gosdk|-skip-sessions|-skip-issue|-skip-gateway` " +
		"(`-skip-peer` skips the TypeScript peer, `-skip-bare` and `-skip-gosdk` the Go ones), " +
		"`-load-only` (only the load test; replaces only section 2 and its rows of the targets table; skipping everything but the load does the same), "
)
