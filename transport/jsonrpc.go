package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/strictjson"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// jsonrpcMembers are the member names a JSON-RPC 2.0 message may have.
var jsonrpcMembers = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// strictJSONRPC refuses message bodies that parsers could read two ways
// before mcp-go sees them. mcp-go (encoding/json) matches member names
// case-insensitively and keeps the last duplicate, so "Method"/"Params"
// spellings or {"arguments":{…},"ARGUMENTS":{…}} would otherwise reach a
// tool in a shape no reviewer expects. Batches (removed from MCP) and
// bodies that are not a single JSON object are refused too.
//
// A tools/call naming a tool whose required scope (toolScope) the caller's
// token lacks is answered 403 insufficient_scope with the scope to ask for
// (the MCP authorization spec's scope challenge), so a client can step up
// instead of meeting a bare "tool not found".
func strictJSONRPC(toolScope func(tool string) string, resourceMetadata string, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := readBody(r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request body is larger than 1 MiB")
				return
			}
			writeError(w, http.StatusBadRequest, "invalid_request", "Cannot read the request body")
			return
		}
		msg, err := checkJSONRPC(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		if msg.method == "tools/call" && toolScope != nil {
			if need := toolScope(msg.tool); need != "" {
				if c, ok := auth.ClaimsFrom(r.Context()); !ok || !hasAll(c.Scope, need) {
					forbid(w, r, logger, c, need, resourceMetadata, "tools/call", "tool", untrusted.Clip(msg.tool, 64))
					return
				}
			}
		}
		cb := &checkedBody{b: body}
		cb.Reset(body)
		r.Body = cb
		switch msg.method {
		case "initialize":
			r = r.WithContext(context.WithValue(r.Context(), initializeKey{}, true))
		case listenMethod:
			r = r.WithContext(context.WithValue(r.Context(), listenKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads r's body whole, as io.ReadAll does, into a buffer of the
// size the request announced (io.ReadAll starts at 512 bytes, more than
// most messages need); a body longer than announced still reads whole.
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n < 0 || n > maxBodyBytes {
		return io.ReadAll(r.Body)
	}
	b := make([]byte, 0, n+1) // +1: room to meet EOF without growing
	for {
		m, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// checkedBody is a request body strictJSONRPC has read and checked.
// Handlers of ours behind it take the bytes (checkedBytes) instead of
// reading and validating them again; others read it as any body.
type checkedBody struct {
	bytes.Reader
	b []byte
}

func (*checkedBody) Close() error { return nil }

// checkedBytes returns the body strictJSONRPC checked, if r's body is one.
func checkedBytes(r *http.Request) ([]byte, bool) {
	if cb, ok := r.Body.(*checkedBody); ok {
		return cb.b, true
	}
	return nil, false
}

// initializeKey marks, in a request's context, a message that is an
// initialize request (which opens a 2025-11-25 session).
type initializeKey struct{}

// listenMethod is protocol 2026-07-28's subscriptions/listen, whose POST
// is answered with an event stream that stays open (like a GET stream);
// listenKey marks such a request for bindStreamable.
const listenMethod = "subscriptions/listen"

type listenKey struct{}

// rpcMessage is what strictJSONRPC learns of a message: its method and,
// for tools/call, the tool's name.
type rpcMessage struct {
	method string
	tool   string
}

// checkJSONRPC checks a message body in one pass (rpcScan): that it is
// valid JSON (exactly what json.Valid accepts) and a single object, that
// no member of the message, of its params or of params.arguments repeats
// another (exactly, or ignoring case), and that the message's and
// params' members are spelled as the protocol does; and it reads the
// method and, for tools/call, the tool's name. Errors come in this order
// whatever their place in the body: a batch, invalid JSON, not an
// object, then the message's, params' and arguments' members.
func checkJSONRPC(body []byte) (rpcMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return rpcMessage{}, errors.New("JSON-RPC batch requests are not supported; send one message per request")
	}
	var sc rpcScan
	if !sc.valid(trimmed) {
		return rpcMessage{}, errors.New("the body is not valid JSON")
	}
	if !sc.object {
		return rpcMessage{}, errors.New("invalid JSON-RPC message: not a JSON object")
	}
	if err := sc.errs[levelMessage]; err != nil {
		return rpcMessage{}, memberError(err, "JSON-RPC message", "member")
	}
	if err := canonicalNames(&sc.names[levelMessage], jsonrpcMembers); err != nil {
		return rpcMessage{}, err
	}
	var out rpcMessage
	out.method, _ = jsonString(sc.method)
	if sc.params == nil {
		return out, nil
	}
	if err := sc.errs[levelParams]; err != nil {
		return rpcMessage{}, memberError(err, "params", "member")
	}
	if err := canonicalNames(&sc.names[levelParams], paramsMembers); err != nil {
		return rpcMessage{}, err
	}
	if out.method == "tools/call" {
		out.tool, _ = jsonString(sc.tool)
	}
	if sc.arguments != nil {
		if err := sc.errs[levelArguments]; err != nil {
			return rpcMessage{}, memberError(err, "arguments", "argument")
		}
	}
	return out, nil
}

// paramsMembers are the member names params may have in the requests
// mcpauth serves.
var paramsMembers = []string{"name", "arguments", "_meta", "cursor", "protocolVersion", "capabilities", "clientInfo", "task"}

// memberError describes, in the client's terms, a refused member list
// (what names the object, noun its members).
func memberError(err error, what, noun string) error {
	var dup *strictjson.DuplicateError
	if errors.As(err, &dup) {
		return fmt.Errorf("invalid %s: %s %q is given more than once", what, noun, untrusted.Clip(dup.Name, 40))
	}
	return fmt.Errorf("invalid %s: not a JSON object", what)
}

// memberNames lists the member names of obj, part of a valid JSON
// message, in the client's terms: what names the object, noun its
// members.
func memberNames(obj []byte, what, noun string) ([]string, error) {
	keys, err := strictjson.Keys(obj)
	if err != nil {
		return nil, memberError(err, what, noun)
	}
	return keys, nil
}

// canonical refuses member names that match a known one only when case is
// ignored ("Method" for "method").
func canonical(keys, known []string) error {
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		for _, kn := range known {
			if strings.EqualFold(k, kn) {
				return fmt.Errorf("member %q must be spelled %q (names are case-sensitive)", k, kn)
			}
		}
	}
	return nil
}

// canonicalNames is canonical for the names rpcScan recorded.
func canonicalNames(names *strictjson.Names, known []string) error {
next:
	for i := range names.Len() {
		k := names.At(i)
		for _, kn := range known {
			if string(k) == kn {
				continue next
			}
		}
		for _, kn := range known {
			if bytes.EqualFold(k, []byte(kn)) {
				// k folds to an ASCII name, so it is valid UTF-8:
				// as decoded.
				return fmt.Errorf("member %q must be spelled %q (names are case-sensitive)", k, kn)
			}
		}
	}
	return nil
}

// jsonString decodes v when it is a JSON string, as json.Unmarshal into a
// string does.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	for _, c := range in {
		if c == '\\' || c >= utf8.RuneSelf {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	switch string(in) { // the methods every session sends, without a copy
	case "tools/call":
		return "tools/call", true
	case "initialize":
		return "initialize", true
	case "tools/list":
		return "tools/list", true
	}
	return string(in), true
}

// The objects whose members rpcScan checks.
const (
	levelMessage = iota
	levelParams
	levelArguments
	levelNone
)

// maxNestingDepth is encoding/json's bound on nested arrays and objects:
// json.Valid refuses deeper documents.
const maxNestingDepth = 10000

// rpcScan reads a JSON-RPC message in one pass: it validates the whole
// document with encoding/json's grammar and, on the way, records the
// member names of the message, of its params and of params.arguments
// (refusing repeats as strictjson.Walk does, the first one of each
// object kept for the caller to report), and where the method and
// params.name values are.
type rpcScan struct {
	b     []byte
	depth int
	// object: the document is an object.
	object bool
	names  [3]strictjson.Names
	errs   [3]error
	// The raw values of the message's method, params (when an object),
	// params.name and params.arguments (when an object).
	method, params, tool, arguments []byte
}

// valid reports whether b is exactly one JSON value, as json.Valid does.
func (s *rpcScan) valid(b []byte) bool {
	s.b = b
	i := skipWS(b, 0)
	s.object = i < len(b) && b[i] == '{'
	end, ok := s.value(i, levelMessage)
	return ok && skipWS(b, end) == len(b)
}

// value reads the value at b[i]; an object is read as level (levelNone
// for one whose members are not checked). It returns the index past it.
func (s *rpcScan) value(i, level int) (int, bool) {
	b := s.b
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{':
		return s.objectAt(i, level)
	case c == '[':
		if s.depth++; s.depth > maxNestingDepth {
			return i, false
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			s.depth--
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = s.value(i, levelNone); !ok {
				return i, false
			}
			if i = skipWS(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
			case ']':
				s.depth--
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return i, false
}

// objectAt reads the object at b[i] ('{').
func (s *rpcScan) objectAt(i, level int) (int, bool) {
	b := s.b
	if s.depth++; s.depth > maxNestingDepth {
		return i, false
	}
	if i = skipWS(b, i+1); i < len(b) && b[i] == '}' {
		s.depth--
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		end, escaped, ok := scanString(b, i)
		if !ok {
			return end, false
		}
		child := levelNone
		var slot *[]byte
		if level != levelNone && s.errs[level] == nil {
			name, err := s.names[level].Add(b[i+1:end-1], escaped)
			switch {
			case err != nil:
				s.errs[level] = err
			case level == levelMessage && string(name) == "method":
				slot = &s.method
			case level == levelMessage && string(name) == "params":
				child, slot = levelParams, &s.params
			case level == levelParams && string(name) == "name":
				slot = &s.tool
			case level == levelParams && string(name) == "arguments":
				child, slot = levelArguments, &s.arguments
			}
		}
		if i = skipWS(b, end); i >= len(b) || b[i] != ':' {
			return i, false
		}
		v := skipWS(b, i+1)
		if child != levelNone && (v >= len(b) || b[v] != '{') {
			child = levelNone // params or arguments that are no object are not checked
			if slot == &s.params || slot == &s.arguments {
				slot = nil
			}
		}
		if i, ok = s.value(v, child); !ok {
			return i, false
		}
		if slot != nil {
			*slot = b[v:i]
		}
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1) // a '"' must follow: no trailing comma
		case '}':
			s.depth--
			return i + 1, true
		default:
			return i, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the string at b[i] ('"') as encoding/json's scanner
// does: no control characters, only JSON's escapes; other bytes (invalid
// UTF-8 too) pass. escaped reports a backslash.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, escaped, true
		case c == '\\':
			escaped = true
			if j++; j >= len(b) {
				return j, true, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return j, true, false
				}
				for _, h := range b[j+1 : j+5] {
					if !isHex(h) {
						return j, true, false
					}
				}
				j += 4
			default:
				return j, true, false
			}
		case c < 0x20:
			return j, escaped, false
		}
	}
	return len(b), escaped, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber reads the number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		d := digits(b, i+1)
		if d == i+1 {
			return d, false
		}
		i = d
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := digits(b, i)
		if d == i {
			return d, false
		}
		i = d
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return i, false
}

// hasAll reports whether granted holds every scope of need (space-
// separated).
func hasAll(granted auth.Scopes, need string) bool {
	for _, sc := range strings.Fields(need) {
		if !granted.Has(sc) {
			return false
		}
	}
	return true
}
