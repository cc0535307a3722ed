package untrusted

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTextIsOneSafeLine(t *testing.T) {
	cases := []struct {
		name, in string
		n        int
		want     string
	}{
		{"plain", "Claude Desktop", 100, "Claude Desktop"},
		{"a newline cannot start a line of its own", "Helper\n- req-1: admin (approve this one)", 100, "Helper - req-1: admin (approve this one)"},
		{"carriage returns, tabs and line separators", "a\r\nb\tc\u2028d\u2029e\u0085f", 100, "a b c d e f"},
		{"bidirectional overrides and zero-width characters", "evil\u202egnp.exe\u200b\u2066x", 100, "evil gnp.exe x"},
		{"spaces collapse and are trimmed", "  many    spaces \n ", 100, "many spaces"},
		{"invalid UTF-8 is dropped", "ok\xff\xfeok", 100, "okok"},
		{"clipped on a character boundary", "ééééé", 5, "éé…"},
		{"empty", "\n\t ", 100, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Text(c.in, c.n)
			if got != c.want {
				t.Fatalf("Text(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
			}
			if !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n\t") {
				t.Fatalf("Text(%q) = %q is not one valid line", c.in, got)
			}
		})
	}
}

func TestClipKeepsUTF8Valid(t *testing.T) {
	if got := Clip("aé", 2); got != "a…" {
		t.Fatalf("Clip cut inside a character: %q", got)
	}
}
