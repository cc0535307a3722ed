package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// maxArgBytes bounds the raw arguments of one call.
const maxArgBytes = 64 << 10

// args are a call's arguments, decoded strictly: keys are matched exactly
// (encoding/json into a struct would match "CLIENT_ID" to client_id), and
// unknown or case-variant keys are refused rather than ignored.
type args map[string]json.RawMessage

func parseArgs(req mcp.CallToolRequest, known ...string) (args, error) {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		if req.Params.Arguments == nil {
			return args{}, nil
		}
		b, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return nil, fmt.Errorf("arguments are not valid JSON: %w", err)
		}
		raw = b
	}
	if len(raw) > maxArgBytes {
		return nil, fmt.Errorf("arguments are larger than %d bytes", maxArgBytes)
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return args{}, nil
	}
	var a args
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("arguments must be a JSON object")
	}
	for k := range a {
		if slices.Contains(known, k) {
			continue
		}
		for _, kn := range known {
			if strings.EqualFold(k, kn) {
				return nil, fmt.Errorf("unknown argument %q (did you mean %q? names are case-sensitive)", k, kn)
			}
		}
		return nil, fmt.Errorf("unknown argument %q; accepted: %s", truncate(k, 40), strings.Join(known, ", "))
	}
	return a, nil
}

// str returns a string argument; ok is false when absent or null.
func (a args) str(name string) (s string, ok bool, err error) {
	v, has := a[name]
	if !has || string(v) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false, fmt.Errorf("argument %q must be a string", name)
	}
	return s, true, nil
}

// strs returns a string-array argument; a single string is accepted and
// split on spaces, as in the scope claim.
func (a args) strs(name string) ([]string, error) {
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
