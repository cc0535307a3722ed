package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"sync"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
)

// ServeStdio serves s over in/out as identity until ctx ends or in closes.
// Only protocol messages are written to out; errors go to errOut.
//
// Every line passes the same strict JSON-RPC checks as an HTTP body
// (checkJSONRPC: duplicate or case-variant member names, batches) before
// mcp-go sees it; a refused line is answered with a JSON-RPC error -32600
// and the server keeps serving. Lines that are not JSON at all are left
// to mcp-go, which answers -32700.
func ServeStdio(ctx context.Context, s *server.MCPServer, identity *auth.Claims, in io.Reader, out, errOut io.Writer) error {
	std := server.NewStdioServer(s)
	std.SetErrorLogger(log.New(errOut, "mcpauth stdio: ", log.LstdFlags))
	std.SetContextFunc(func(ctx context.Context) context.Context {
		return auth.WithClaims(ctx, identity)
	})
	// mcp-go writes each message with one Write; so do the refusals, and
	// the lock keeps them from interleaving.
	w := &lockedWriter{w: out}
	pr, pw := io.Pipe()
	go func() { _ = pw.CloseWithError(filterStdio(in, pw, w)) }()
	defer pr.Close() // unblocks the filter if mcp-go stops first
	return std.Listen(ctx, pr, w)
}

// filterStdio copies the JSON-RPC lines of in that pass checkJSONRPC to
// pass and answers the others on out.
func filterStdio(in io.Reader, pass io.Writer, out io.Writer) error {
	r := bufio.NewReader(in)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if refusal := stdioRefusal(line); refusal != nil {
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

// stdioRefusal is the JSON-RPC error line answering a message that
// checkJSONRPC refuses, or nil for one to pass on.
func stdioRefusal(line []byte) []byte {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return nil // mcp-go's parse error
	}
	_, err := checkJSONRPC(trimmed)
	if err == nil {
		return nil
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: unambiguousID(trimmed), Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{-32600, "Invalid Request: " + err.Error()}})
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
