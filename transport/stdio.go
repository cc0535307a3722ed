package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// StdioConfig is what ServeStdio needs besides the streams.
type StdioConfig struct {
	// Identity is who every message acts as.
	Identity *auth.Claims
	// ToolScope, when set, names the scopes (space-separated) a tool
	// requires; a tools/call without them is answered with a JSON-RPC
	// error naming them, and audited.
	ToolScope func(tool string) string
	// Logger receives the audit records of refusals.
	Logger *slog.Logger
}

// ServeStdio serves s over in/out until ctx ends or in closes. Only
// protocol messages are written to out; errors go to errOut.
//
// Every line passes the same strict JSON-RPC checks as an HTTP body
// (checkJSONRPC: duplicate or case-variant member names, batches) and the
// same scope check before mcp-go sees it; a refused line is answered with
// a JSON-RPC error (-32600, or -32003 for a missing scope) and the server
// keeps serving. Lines that are not JSON at all are left to mcp-go, which
// answers -32700.
func ServeStdio(ctx context.Context, s *server.MCPServer, cfg StdioConfig, in io.Reader, out, errOut io.Writer) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	std := server.NewStdioServer(s)
	std.SetErrorLogger(log.New(errOut, "mcpauth stdio: ", log.LstdFlags))
	std.SetContextFunc(func(ctx context.Context) context.Context {
		return auth.WithClaims(ctx, cfg.Identity)
	})
	// mcp-go writes each message with one Write; so do the refusals, and
	// the lock keeps them from interleaving.
	w := &lockedWriter{w: out}
	pr, pw := io.Pipe()
	go func() { _ = pw.CloseWithError(filterStdio(ctx, cfg, in, pw, w)) }()
	defer pr.Close() // unblocks the filter if mcp-go stops first
	return std.Listen(ctx, pr, w)
}

// filterStdio copies the JSON-RPC lines of in that pass checkJSONRPC and
// the scope check to pass, and answers the others on out.
func filterStdio(ctx context.Context, cfg StdioConfig, in io.Reader, pass io.Writer, out io.Writer) error {
	r := bufio.NewReader(in)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if refusal := stdioRefusal(ctx, cfg, line); refusal != nil {
				if _, werr := out.Write(refusal); werr != nil {
					return werr
				}
			} else if _, werr := pass.Write(line); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// codeForbidden is the JSON-RPC error code of a missing scope (an
// implementation-defined server error, as MCP names none).
const codeForbidden = -32003

// stdioRefusal is the JSON-RPC error line answering a message that
// checkJSONRPC or the scope check refuses, or nil for one to pass on.
func stdioRefusal(ctx context.Context, cfg StdioConfig, line []byte) []byte {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return nil // mcp-go's parse error
	}
	msg, err := checkJSONRPC(trimmed)
	if err != nil {
		return rpcError(unambiguousID(trimmed), -32600, "Invalid Request: "+err.Error(), nil)
	}
	if msg.method != "tools/call" || cfg.ToolScope == nil {
		return nil
	}
	need := cfg.ToolScope(msg.tool)
	if need == "" || hasAll(cfg.Identity.Scope, need) {
		return nil
	}
	auth.Audit(ctx, cfg.Logger, auth.EventForbidden, "client_id", subjectOf(cfg.Identity), "jti", jtiOf(cfg.Identity),
		"required_scope", need, "via", "stdio", "tool", untrusted.Clip(msg.tool, 64))
	return rpcError(unambiguousID(trimmed), codeForbidden,
		fmt.Sprintf("insufficient_scope: %s requires the scope %q", untrusted.Clip(msg.tool, 64), need),
		map[string]string{"error": "insufficient_scope", "scope": need})
}

// rpcError renders one JSON-RPC error response line.
func rpcError(id json.RawMessage, code int, message string, data any) []byte {
	type rpcErr struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcErr          `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: rpcErr{code, message, data}})
	return append(b, '\n')
}

// unambiguousID is a message's id when it has exactly one member whose
// name is "id" in any case, spelled "id", holding a string or number;
// otherwise null (JSON-RPC 2.0 for an id that cannot be read).
func unambiguousID(msg []byte) json.RawMessage {
	null := json.RawMessage("null")
	dec := json.NewDecoder(bytes.NewReader(msg))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return null
	}
	var id json.RawMessage
	n := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return null
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return null
		}
		if len(key) == 2 && (key[0]|0x20) == 'i' && (key[1]|0x20) == 'd' {
			n++
			if key == "id" {
				id = v
			}
		}
	}
	if n != 1 || len(id) == 0 || (id[0] != '"' && id[0] != '-' && (id[0] < '0' || id[0] > '9')) {
		return null
	}
	return id
}

// lockedWriter serializes writes from mcp-go and the stdio filter.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
