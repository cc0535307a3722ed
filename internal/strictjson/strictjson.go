// Package strictjson reads JSON the strict way mcpauth's tokens,
// configuration and protocol checks need: one value, no unknown members,
// nothing after it, and no member name given twice.
//
// encoding/json matches member names to struct fields case-insensitively
// and keeps the last of a repeated member, so {"sub":"a","SUB":"b"} can
// mean one thing to a reviewer and another to the server. Walk and Keys
// refuse such objects.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

var (
	// ErrNotObject: the input is not a JSON object.
	ErrNotObject = errors.New("not a JSON object")
	// ErrMalformed: the object is cut short or out of shape.
	ErrMalformed = errors.New("malformed JSON object")
)

// DuplicateError is a member name that repeats an earlier one, exactly or
// differing only in case. Name is the later one, decoded.
type DuplicateError struct{ Name string }

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("member %q is given more than once", e.Name)
}

// Walk calls fn with each top-level member of the JSON object at the start
// of b (after white space), in order, and returns the index just past the
// object's closing brace; what follows is the caller's to judge. name is
// the member name as written between its quotes (escapes not decoded),
// value the raw bytes of its value. A name that repeats an earlier one,
// compared decoded and ignoring case, is a *DuplicateError; fn's error is
// returned as it is.
//
// Walk checks the object's shape (quotes, colons, commas, brackets), not
// the grammar of the values: where that matters, check json.Valid first,
// once for the whole document. It does not allocate for objects of up to
// 16 members whose names have no escapes.
func Walk(b []byte, fn func(name, value []byte) error) (end int, err error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, ErrNotObject
	}
	var seen Names
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, ErrMalformed
		}
		e, escaped := nameEnd(b, i)
		if e < 0 {
			return 0, ErrMalformed
		}
		name := b[i+1 : e-1]
		if _, err = seen.Add(name, escaped); err != nil {
			return 0, err
		}
		if i = skipSpace(b, e); i >= len(b) || b[i] != ':' {
			return 0, ErrMalformed
		}
		v := skipSpace(b, i+1)
		e = valueEnd(b, v)
		if e < 0 {
			return 0, ErrMalformed
		}
		if err := fn(name, b[v:e]); err != nil {
			return 0, err
		}
		if i = skipSpace(b, e); i >= len(b) {
			return 0, ErrMalformed
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1) // a '"' must follow: no trailing comma
		case '}':
			return i + 1, nil
		default:
			return 0, ErrMalformed
		}
	}
}

// Keys returns the decoded top-level member names of the JSON object b in
// order, refusing repeats as Walk does; only white space may follow the
// object. Like Walk it does not check the values' grammar.
func Keys(b []byte) ([]string, error) {
	var keys []string
	end, err := Walk(b, func(name, _ []byte) error {
		k, err := decodeName(name)
		keys = append(keys, string(k))
		return err
	})
	if err != nil {
		return nil, err
	}
	if skipSpace(b, end) != len(b) {
		return nil, ErrMalformed
	}
	return keys, nil
}

// Names is the member names of one object read so far, refusing a name
// that repeats an earlier one as Walk does, for readers that walk an
// object themselves. The zero value is empty; it does not allocate for
// up to 16 names without escapes.
type Names struct {
	buf  [16][]byte
	n    int
	more [][]byte
}

// Add records a member name as written between its quotes (escaped: it
// holds a backslash) and returns it decoded, or a *DuplicateError when
// it repeats an earlier one. Names are compared as encoding/json decodes
// them: escapes decoded, and invalid UTF-8 read as U+FFFD, which
// bytes.EqualFold does without decoding.
func (s *Names) Add(name []byte, escaped bool) ([]byte, error) {
	k := name
	if escaped {
		var err error
		if k, err = decodeName(name); err != nil {
			return nil, ErrMalformed
		}
	}
	for i := range s.Len() {
		seen := s.At(i)
		if differFirst(seen, k) {
			continue
		}
		if bytes.EqualFold(seen, k) {
			d, _ := decodeName(name)
			return nil, &DuplicateError{Name: string(d)}
		}
	}
	if s.n < len(s.buf) {
		s.buf[s.n] = k
	} else {
		s.more = append(s.more, k)
	}
	s.n++
	return k, nil
}

// Len is the number of names added.
func (s *Names) Len() int { return s.n }

// At is the i'th name added, decoded as Add returned it (when it held no
// escape, the bytes as written, invalid UTF-8 included).
func (s *Names) At(i int) []byte {
	if i < len(s.buf) {
		return s.buf[i]
	}
	return s.more[i-len(s.buf)]
}

// differFirst reports, cheaply, names whose first bytes are ASCII and
// differ ignoring case (most pairs). Non-ASCII first bytes may fold to
// ASCII ("ſ" to "s"), so they are left to bytes.EqualFold.
func differFirst(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 || a[0] >= 0x80 || b[0] >= 0x80 {
		return false
	}
	x, y := a[0], b[0]
	if 'A' <= x && x <= 'Z' {
		x += 'a' - 'A'
	}
	if 'A' <= y && y <= 'Z' {
		y += 'a' - 'A'
	}
	return x != y
}

// decodeName decodes a member name as written between its quotes: itself
// when it is plain ASCII without escapes, else through encoding/json.
func decodeName(name []byte) ([]byte, error) {
	plain := true
	for _, c := range name {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return name, nil
	}
	q := make([]byte, 0, len(name)+2)
	q = append(append(append(q, '"'), name...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// nameEnd is stringEnd for a member name, reporting whether it holds an
// escape.
func nameEnd(b []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// stringEnd returns the index just past the string starting at b[i] ('"'),
// or -1 when it is not closed.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the value starting at b[i], or -1
// when it is cut short. Brackets are counted, not matched by kind.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
				i-- // the loop steps past the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	}
	start := i
	for i < len(b) && !isDelim(b[i]) {
		i++
	}
	if i == start || i == len(b) {
		return -1
	}
	return i
}

// isDelim reports whether c ends a number or literal.
func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}
