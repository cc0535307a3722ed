package main

// A minimal MCP client over HTTP for the load harness: just enough of
// Streamable HTTP (2025-11-25 with Mcp-Session-Id, JSON or SSE-framed
// responses) and legacy SSE (GET /sse + POST /message, responses on the
// stream) to initialize a session and call a tool, with as little client
// CPU per call as practical, identical for every server under test.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const protocolVersion = "2025-11-25"

func initializeBody(id int) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"initialize","params":{"protocolVersion":"` + protocolVersion +
		`","capabilities":{},"clientInfo":{"name":"mcpauth-bench","version":"1"}}}`
}

const initializedBody = `{"jsonrpc":"2.0","method":"notifications/initialized"}`

func toolsCallBody(id int, name, args string) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`
}

func whoamiBody(id int) string { return toolsCallBody(id, "whoami", "{}") }

func newHTTPClient(conns int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		Proxy:               nil,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// checkResult fails on a JSON-RPC error or a tool error.
func checkResult(body []byte) error {
	if !bytes.Contains(body, []byte(`"result"`)) {
		return fmt.Errorf("no result in %.300s", body)
	}
	if bytes.Contains(body, []byte(`"isError":true`)) {
		return fmt.Errorf("tool error: %.300s", body)
	}
	return nil
}

// ---- Streamable HTTP ----

type streamableClient struct {
	hc      *http.Client
	url     string
	auth    string
	session string
	id      int
}

func (c *streamableClient) post(ctx context.Context, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/mcp", strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Accept"] = []string{"application/json, text/event-stream"}
	if c.auth != "" {
		h["Authorization"] = []string{c.auth}
	}
	if c.session != "" {
		h["Mcp-Session-Id"] = []string{c.session}
		h["Mcp-Protocol-Version"] = []string{protocolVersion}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b = lastSSEData(b)
	}
	return resp, b, nil
}

// lastSSEData returns the data of the last event in an SSE-framed body.
func lastSSEData(b []byte) []byte {
	var last []byte
	for line := range bytes.Lines(b) {
		line = bytes.TrimRight(line, "\r\n")
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			last = bytes.TrimPrefix(d, []byte(" "))
		}
	}
	return last
}

// openStreamable opens a session; with token "" no Authorization is sent
// (an upstream called directly).
func openStreamable(ctx context.Context, hc *http.Client, url, token string) (*streamableClient, error) {
	c := &streamableClient{hc: hc, url: url}
	if token != "" {
		c.auth = "Bearer " + token
	}
	resp, body, err := c.post(ctx, initializeBody(0))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("initialize: %s: %.300s", resp.Status, body)
	}
	if !bytes.Contains(body, []byte(`"protocolVersion":"`+protocolVersion+`"`)) {
		return nil, fmt.Errorf("initialize: server did not accept %s: %.300s", protocolVersion, body)
	}
	c.session = resp.Header.Get("Mcp-Session-Id")
	if c.session == "" {
		return nil, errors.New("initialize: no Mcp-Session-Id")
	}
	resp, body, err = c.post(ctx, initializedBody)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("notifications/initialized: %s: %.300s", resp.Status, body)
	}
	return c, nil
}

// call sends one tools/call and returns the result body.
func (c *streamableClient) call(ctx context.Context, name, args string) ([]byte, error) {
	c.id++
	resp, body, err := c.post(ctx, toolsCallBody(c.id, name, args))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tools/call: %s: %.300s", resp.Status, body)
	}
	return body, checkResult(body)
}

// callOnce calls whoami (the load test's call).
func (c *streamableClient) callOnce(ctx context.Context) error {
	_, err := c.call(ctx, "whoami", "{}")
	return err
}

// toolCaller calls one tool with fixed arguments on a Streamable HTTP
// session (the gateway benchmarks).
type toolCaller struct {
	*streamableClient
	tool, args string
}

func (t toolCaller) callOnce(ctx context.Context) error {
	_, err := t.call(ctx, t.tool, t.args)
	return err
}

func (c *streamableClient) close() {
	req, err := http.NewRequest(http.MethodDelete, c.url+"/mcp", nil)
	if err != nil {
		return
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := c.hc.Do(req.WithContext(ctx)); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// ---- legacy SSE ----

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// readSSEEvent reads one event (blank-line terminated; LF or CRLF).
func readSSEEvent(br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				// a long data line: collect it whole
				rest, err2 := br.ReadBytes('\n')
				line = append(append([]byte{}, line...), rest...)
				err = err2
			}
			if err != nil {
				return ev, err
			}
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if ev.name != "" || ev.data != nil {
				return ev, nil
			}
			continue
		}
		switch {
		case bytes.HasPrefix(line, []byte("event:")):
			ev.name = string(bytes.TrimSpace(line[6:]))
		case bytes.HasPrefix(line, []byte("data:")):
			d := bytes.TrimPrefix(line[5:], []byte(" "))
			ev.data = append(ev.data, d...)
		}
	}
}

type sseClient struct {
	hc     *http.Client
	url    string
	auth   string
	msgURL string
	body   io.ReadCloser
	cancel context.CancelFunc
	events chan []byte
	id     int
}

func openSSE(ctx context.Context, hc *http.Client, url, token string) (*sseClient, error) {
	life, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(life, http.MethodGet, url+"/sse", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET /sse: %s: %s", resp.Status, b)
	}
	br := bufio.NewReaderSize(resp.Body, 8192)
	ev, err := readSSEEvent(br)
	if err != nil || ev.name != "endpoint" {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET /sse: want an endpoint event, got %q %q (%v)", ev.name, ev.data, err)
	}
	c := &sseClient{hc: hc, url: url, auth: "Bearer " + token, msgURL: strings.TrimSpace(string(ev.data)),
		body: resp.Body, cancel: cancel, events: make(chan []byte, 64)}
	if !strings.HasPrefix(c.msgURL, "http") {
		c.msgURL = url + c.msgURL
	}
	go func() {
		defer close(c.events)
		for {
			ev, err := readSSEEvent(br)
			if err != nil {
				return
			}
			if ev.name == "" || ev.name == "message" {
				c.events <- ev.data
			}
		}
	}()
	if err := c.request(ctx, initializeBody(0), 0); err != nil {
		c.close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if err := c.postOnly(ctx, initializedBody); err != nil {
		c.close()
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	return c, nil
}

func (c *sseClient) postOnly(ctx context.Context, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.msgURL, strings.NewReader(body))
	if err != nil {
		return err
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Authorization"] = []string{c.auth}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST message: %s: %.300s", resp.Status, b)
	}
	return nil
}

// request posts a JSON-RPC request and waits for its response event.
func (c *sseClient) request(ctx context.Context, body string, id int) error {
	_, err := c.requestBody(ctx, body, id)
	return err
}

func (c *sseClient) requestBody(ctx context.Context, body string, id int) ([]byte, error) {
	if err := c.postOnly(ctx, body); err != nil {
		return nil, err
	}
	a := []byte(`"id":` + strconv.Itoa(id) + `,`)
	b := []byte(`"id":` + strconv.Itoa(id) + `}`)
	for {
		select {
		case data, ok := <-c.events:
			if !ok {
				return nil, errors.New("SSE stream ended")
			}
			if bytes.Contains(data, []byte(`"method":`)) {
				continue // a server request (keep-alive ping)
			}
			if bytes.Contains(data, a) || bytes.Contains(data, b) {
				return data, checkResult(data)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *sseClient) callOnce(ctx context.Context) error {
	c.id++
	return c.request(ctx, whoamiBody(c.id), c.id)
}

func (c *sseClient) close() {
	c.cancel()
	c.body.Close()
}
