package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Requests the server sends to a client over a legacy SSE stream or a
// WebSocket connection: sampling/createMessage, elicitation/create and
// roots/list, which the gateway relays from an upstream to the caller
// whose call caused them (mcp-go's own transports carry them on stdio and
// Streamable HTTP). The request goes out on the session's stream or
// connection; the client's answer comes back as a JSON-RPC response, POSTed
// to the message endpoint (SSE) or sent on the connection (WebSocket), and
// is matched by id to the session that asked.

// maxClientRequests bounds the requests a session may have waiting for
// its client's answer; more are refused at once, so a client that never
// answers holds a bounded amount of state.
const maxClientRequests = 32

var (
	errNoRequestChannel = errors.New("this session cannot send requests to its client")
	errTooManyRequests  = fmt.Errorf("the client has %d requests from the server unanswered", maxClientRequests)
)

// clientReply is a client's answer to one of the server's requests.
type clientReply struct {
	result json.RawMessage
	err    *mcp.JSONRPCErrorDetails
}

// clientRequests tracks one session's requests to its client.
type clientRequests struct {
	mu      sync.Mutex
	next    int64
	pending map[int64]chan clientReply
}

var (
	_ server.SessionWithSampling    = (*sseSession)(nil)
	_ server.SessionWithElicitation = (*sseSession)(nil)
	_ server.SessionWithRoots       = (*sseSession)(nil)
)

// RequestSampling asks the client to sample (sampling/createMessage).
func (s *sseSession) RequestSampling(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	var res mcp.CreateMessageResult
	if err := s.ask(ctx, mcp.MethodSamplingCreateMessage, req.CreateMessageParams, &res); err != nil {
		return nil, err
	}
	content, err := mcp.ParseSamplingContent(res.Content)
	if err != nil {
		return nil, fmt.Errorf("the client's sampling result: %w", err)
	}
	res.Content = content
	return &res, nil
}

// RequestElicitation asks the client for input (elicitation/create).
func (s *sseSession) RequestElicitation(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	var res mcp.ElicitationResult
	if err := s.ask(ctx, mcp.MethodElicitationCreate, req.Params, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ListRoots asks the client for its roots (roots/list).
func (s *sseSession) ListRoots(ctx context.Context, _ mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	var res mcp.ListRootsResult
	if err := s.ask(ctx, mcp.MethodListRoots, nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ask sends a request to the client and decodes its answer into out. It
// waits until the client answers, ctx ends, or the session ends.
func (s *sseSession) ask(ctx context.Context, method mcp.MCPMethod, params any, out any) error {
	if s.emit == nil {
		return errNoRequestChannel
	}
	id, ch, err := s.asks.open()
	if err != nil {
		return err
	}
	defer s.asks.close(id)
	msg := struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int64  `json:"id"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
	}{mcp.JSONRPC_VERSION, id, string(method), params}
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding the %s request: %w", method, err)
	}
	if err := s.emit(b); err != nil {
		return fmt.Errorf("sending the %s request to the client: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("the client answered %s with error %d: %s", method, r.err.Code, untrusted.Clip(r.err.Message, 200))
		}
		if err := json.Unmarshal(r.result, out); err != nil {
			return fmt.Errorf("the client's %s result: %w", method, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return fmt.Errorf("the client's session ended before it answered %s", method)
	}
}

func (c *clientRequests) open() (int64, chan clientReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) >= maxClientRequests {
		return 0, nil, errTooManyRequests
	}
	if c.pending == nil {
		c.pending = map[int64]chan clientReply{}
	}
	c.next++
	ch := make(chan clientReply, 1)
	c.pending[c.next] = ch
	return c.next, ch, nil
}

func (c *clientRequests) close(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// reply hands msg to the request it answers and reports whether msg is a
// JSON-RPC response at all (one with result or error and no method):
// responses never go to mcp-go, which would answer an error response with
// an error of its own. A response to no request waiting (unknown id, one
// already answered, or one given up on) is dropped.
func (s *sseSession) reply(msg []byte) bool {
	if !bytes.Contains(msg, []byte(`"result"`)) && !bytes.Contains(msg, []byte(`"error"`)) {
		return false // a request or notification: the common case, decided without parsing
	}
	var r struct {
		ID     json.RawMessage          `json:"id"`
		Method json.RawMessage          `json:"method"`
		Result json.RawMessage          `json:"result"`
		Error  *mcp.JSONRPCErrorDetails `json:"error"`
	}
	if json.Unmarshal(msg, &r) != nil || r.Method != nil || (r.Result == nil && r.Error == nil) {
		return false
	}
	var id int64
	if json.Unmarshal(bytes.TrimSpace(r.ID), &id) != nil {
		return true
	}
	s.asks.mu.Lock()
	ch := s.asks.pending[id]
	delete(s.asks.pending, id)
	s.asks.mu.Unlock()
	if ch != nil {
		ch <- clientReply{result: r.Result, err: r.Error} // buffered; one reply per id
	}
	return true
}
