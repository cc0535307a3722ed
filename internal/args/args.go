// Package args decodes the arguments of a tool call (or the JSON body of
// a token request) strictly: one JSON object whose member names are
// matched exactly, with unknown, repeated and case-variant names refused
// rather than ignored, and typed accessors that say which argument is
// wrong and why.
package args

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/internal/strictjson"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// MaxBytes bounds the raw arguments of one call.
const MaxBytes = 64 << 10

// Args are arguments decoded strictly: keys are matched exactly
// (encoding/json into a struct would match "CLIENT_ID" to client_id), and
// unknown, duplicate or case-variant keys are refused rather than ignored.
type Args map[string]json.RawMessage

// Decode decodes a JSON object strictly (see Args). null and empty
// input are an empty object.
func Decode(raw []byte, known ...string) (Args, error) {
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("arguments are larger than %d bytes", MaxBytes)
	}
	// Only JSON's white space (RFC 8259: space, tab, CR, LF) is trimmed:
	// bytes.TrimSpace would also drop \v, \f and Unicode spaces, which make
	// the input invalid JSON ("\v{}" is not an object).
	if t := bytes.Trim(raw, jsonSpace); len(t) == 0 || bytes.Equal(t, []byte("null")) || emptyObject(t) {
		return Args{}, nil // {} is what most calls of argument-less tools send
	}
	keys, err := keys(raw)
	if err != nil {
		return nil, err
	}
	var a Args
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("arguments must be a JSON object")
	}
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		for _, kn := range known {
			if strings.EqualFold(k, kn) {
				return nil, fmt.Errorf("unknown argument %q (did you mean %q? names are case-sensitive)", k, kn)
			}
		}
		return nil, fmt.Errorf("unknown argument %q; accepted: %s", untrusted.Clip(k, 40), strings.Join(known, ", "))
	}
	return a, nil
}

// Str returns a string argument; ok is false when absent or null.
func (a Args) Str(name string) (s string, ok bool, err error) {
	v, has := a[name]
	if !has || string(v) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false, fmt.Errorf("argument %q must be a string", name)
	}
	return s, true, nil
}

// Strs returns a string-array argument; a single string is accepted and
// split on spaces, as in the scope claim.
func (a Args) Strs(name string) ([]string, error) {
	v, has := a[name]
	if !has || string(v) == "null" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal(v, &out); err == nil {
		return out, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return strings.Fields(s), nil
	}
	return nil, fmt.Errorf("argument %q must be an array of strings", name)
}

// Bool reads an optional boolean argument; absent or null is def.
func (a Args) Bool(name string, def bool) (bool, error) {
	v, has := a[name]
	if !has || string(v) == "null" {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return false, fmt.Errorf("argument %q must be true or false", name)
	}
	return b, nil
}

// Int reads an optional whole-number argument within [lo, hi]; absent or
// null is def. 50 and 50.0 are accepted; fractions and strings are refused
// rather than rounded or parsed.
func (a Args) Int(name string, def, lo, hi int) (int, error) {
	v, has := a[name]
	if !has || string(v) == "null" {
		return def, nil
	}
	bad := fmt.Errorf("argument %q must be a whole number from %d to %d", name, lo, hi)
	var f float64
	if len(v) == 0 || v[0] == '"' || json.Unmarshal(v, &f) != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, bad
	}
	return int(f), nil
}

// keys returns the argument names of raw in order, refusing invalid
// JSON, anything but an object, and a name given twice, exactly or
// differing only in case: encoding/json would silently keep the last one
// (matching case-insensitively into structs), so
// {"client_id":"ok","CLIENT_ID":"evil"} could mean different things to a
// reviewer and to the server.
func keys(raw []byte) ([]string, error) {
	if !json.Valid(raw) {
		return nil, errors.New("arguments must be a JSON object")
	}
	keys, err := strictjson.Keys(raw)
	var dup *strictjson.DuplicateError
	switch {
	case errors.As(err, &dup):
		return nil, fmt.Errorf("argument %q is given more than once", untrusted.Clip(dup.Name, 40))
	case err != nil:
		return nil, errors.New("arguments must be a JSON object")
	}
	return keys, nil
}

// jsonSpace is JSON's white space.
const jsonSpace = " \t\r\n"

// emptyObject reports whether t is {} (white space inside allowed).
func emptyObject(t []byte) bool {
	return len(t) >= 2 && t[0] == '{' && t[len(t)-1] == '}' && len(bytes.Trim(t[1:len(t)-1], jsonSpace)) == 0
}
