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
		body, err := io.ReadAll(r.Body)
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
		r.Body = io.NopCloser(bytes.NewReader(body))
		if msg.method == "initialize" {
			r = r.WithContext(context.WithValue(r.Context(), initializeKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

// initializeKey marks, in a request's context, a message that is an
// initialize request (which opens a 2025-11-25 session).
type initializeKey struct{}

// rpcMessage is what strictJSONRPC learns of a message: its method and,
// for tools/call, the tool's name.
type rpcMessage struct {
	method string
	tool   string
}

func checkJSONRPC(body []byte) (rpcMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return rpcMessage{}, errors.New("JSON-RPC batch requests are not supported; send one message per request")
	}
	if !json.Valid(trimmed) {
		return rpcMessage{}, errors.New("the body is not valid JSON")
	}
	keys, err := memberNames(trimmed, "JSON-RPC message", "member") // validated above
	if err != nil {
		return rpcMessage{}, err
	}
	if err := canonical(keys, jsonrpcMembers); err != nil {
		return rpcMessage{}, err
	}
	var msg struct {
		Method json.RawMessage `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	_ = json.Unmarshal(trimmed, &msg) // valid JSON, checked above
	var out rpcMessage
	_ = json.Unmarshal(msg.Method, &out.method) // a non-string method is mcp-go's to refuse
	p := bytes.TrimSpace(msg.Params)
	if len(p) == 0 || p[0] != '{' {
		return out, nil
	}
	pkeys, err := memberNames(p, "params", "member")
	if err != nil {
		return rpcMessage{}, err
	}
	if err := canonical(pkeys, []string{"name", "arguments", "_meta", "cursor", "protocolVersion", "capabilities", "clientInfo", "task"}); err != nil {
		return rpcMessage{}, err
	}
	var params struct {
		Name      json.RawMessage `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	_ = json.Unmarshal(p, &params)
	if out.method == "tools/call" {
		_ = json.Unmarshal(params.Name, &out.tool)
	}
	if a := bytes.TrimSpace(params.Arguments); len(a) > 0 && a[0] == '{' {
		if _, err := memberNames(a, "arguments", "argument"); err != nil {
			return rpcMessage{}, err
		}
	}
	return out, nil
}

// memberNames lists the member names of obj, part of a valid JSON
// message, in the client's terms: what names the object, noun its
// members.
func memberNames(obj []byte, what, noun string) ([]string, error) {
	keys, err := strictjson.Keys(obj)
	var dup *strictjson.DuplicateError
	switch {
	case errors.As(err, &dup):
		return nil, fmt.Errorf("invalid %s: %s %q is given more than once", what, noun, untrusted.Clip(dup.Name, 40))
	case err != nil:
		return nil, fmt.Errorf("invalid %s: not a JSON object", what)
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
