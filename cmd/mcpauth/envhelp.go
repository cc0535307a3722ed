package main

import (
	"reflect"
	"strings"
)

// envHelp renders the environment variables Config reads, in its field
// order, from each field's env, envDefault and help tags: the one source
// of serve --help's "Environment:" list, so the list cannot drift from
// what is read. A help of "-" keeps a variable out of the list (one
// another entry names, such as JWT_SECRET). A default is added unless the
// help already says what it is.
func envHelp() string {
	const nameWidth, lineWidth = 29, 88
	var b strings.Builder
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, help := f.Tag.Get("env"), f.Tag.Get("help")
		if name == "" || help == "-" {
			continue
		}
		if d, ok := f.Tag.Lookup("envDefault"); ok && d != "" && !strings.Contains(help, "default") {
			help += " (default " + d + ")"
		}
		b.WriteString("  " + name)
		col := 2 + len(name)
		if col >= nameWidth+2 {
			b.WriteString("\n")
			col = 0
		}
		b.WriteString(strings.Repeat(" ", nameWidth+2-col))
		col = nameWidth + 2
		for j, word := range strings.Fields(help) {
			if j > 0 && col+1+len(word) > lineWidth {
				b.WriteString("\n" + strings.Repeat(" ", nameWidth+2))
				col = nameWidth + 2
			} else if j > 0 {
				b.WriteString(" ")
				col++
			}
			b.WriteString(word)
			col += len(word)
		}
		b.WriteString("\n")
	}
	return b.String()
}
