package main

// The soak (issue 12, "Faults survived"): go run ./bench -soak.
//
// One real `mcpauth serve` process (SQLite registry in a temp dir, API_KEY
// set, MCP_TRUSTED_PROXIES=127.0.0.1 so every simulated client has an
// address of its own in X-Forwarded-For) is driven by -soak-clients
// concurrent clients for -soak-duration with a mix of transports and of
// good and bad credentials. Every response is checked against what it
// should be; anything else is an unexpected error. The server's RSS, open
// file descriptors and goroutines are read before, during and after the
// load, and the result replaces only the soak section of -out.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// soakKind is what one simulated client does for the whole run.
type soakKind int

const (
	kStreamable   soakKind = iota // 2025-11-25 session (Mcp-Session-Id), whoami
	kStateless                    // 2026-07-28 stateless requests, whoami
	kSSE                          // legacy SSE stream + POST /message, whoami
	kExpired                      // a token minted with a 1s lifetime, used after expiry
	kForgedSecret                 // signed with the wrong secret
	kForgedNone                   // "alg":"none", no signature
	kForgedTamper                 // a real token whose payload was edited
	kHammer                       // wrong-secret token every few ms, sharing its address with a valid client
	kAdminTool                    // admin: issue_token over a session, then whoami with the new token
	kAdminAPI                     // admin: the HTTP token API (API key or admin Bearer), then whoami with the new token
	kRevoker                      // admin: revoke_token on valid clients' tokens mid-run
	numSoakKinds
)

var soakKindNames = [numSoakKinds]string{
	"streamable-http 2025-11-25", "streamable-http 2026-07-28", "legacy SSE", "expired token",
	"forged: wrong secret", "forged: alg none", "forged: tampered payload", "forged, hammering (throttled)",
	"admin: issue_token", "admin: token API", "admin: revoke_token",
}

// soakMix is each kind's share of the clients (per mille); kRevoker and
// kHammer get fixed counts, the rest of the clients are kStreamable.
var soakMix = map[soakKind]int{
	kStateless: 200, kSSE: 250, kExpired: 60, kForgedSecret: 40, kForgedNone: 40, kForgedTamper: 40,
	kHammer: 10, kAdminTool: 30, kAdminAPI: 28, kRevoker: 2,
}

func (k soakKind) valid() bool { return k == kStreamable || k == kStateless || k == kSSE }
func (k soakKind) bad() bool   { return k >= kExpired && k <= kHammer }

// The protocol of the stateless era and the server's error texts the
// soak expects (auth.Message of auth.ErrTokenExpired etc., as clients see them).
const (
	modernVersion   = "2026-07-28"
	descExpired     = "Token has expired"
	descRevoked     = "Token has been revoked"
	descBadSig      = "Invalid token: signature does not match (wrong secret, algorithm or tampered token)"
	soakFailBurst   = 20 // MCP_AUTH_FAIL_BURST's default, which the soak keeps
	soakFailRefill  = 3 * time.Second
	soakLeeway      = time.Second
	soakReqTimeout  = 15 * time.Second
	soakStreamGrace = 2 * time.Second // a revoked token's SSE stream must end within this
)

// soakClient is one simulated client.
type soakClient struct {
	i    int
	kind soakKind
	id   string // client_id (token subject)
	xff  string // its address, sent as X-Forwarded-For
	rng  *mrand.Rand
	// counts are its outcomes by "request → outcome"; lats its valid
	// whoami latencies. Only its goroutine touches them until the end.
	counts map[string]int64
	lats   []time.Duration
	fails  int // 401s its address has earned (the throttle's count)

	mu       sync.Mutex
	token    string
	jti      string
	revStart time.Time // a revoker is revoking the current token
	revDone  time.Time // the revocation was confirmed
	revoking bool      // picked by a revoker and not yet re-minted
}

func (c *soakClient) count(what string) { c.counts[what]++ }

func (c *soakClient) current() (tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

func (c *soakClient) revTimes() (time.Time, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revStart, c.revDone
}

// soakRun is one soak.
type soakRun struct {
	base     string
	hc       *http.Client
	apiKey   string
	admin    string // the harness's own admin token (GET /metrics)
	think    time.Duration
	stopped  atomic.Bool
	mintSeq  atomic.Int64
	clients  []*soakClient
	targets  []*soakClient // valid clients the revokers may revoke
	revoked  atomic.Int64
	unexpMu  sync.Mutex
	unexp    int64
	unexpBy  map[string]int64
	samples  []string
	timeouts atomic.Int64
}

// unexpected records an outcome that is not what the request should get.
func (s *soakRun) unexpected(c *soakClient, what string, err error) {
	s.unexpMu.Lock()
	defer s.unexpMu.Unlock()
	s.unexp++
	s.unexpBy[soakKindNames[c.kind]+": "+what]++
	if len(s.samples) < 25 {
		s.samples = append(s.samples, fmt.Sprintf("%s %s (%s): %s", time.Now().UTC().Format("15:04:05.000"), soakKindNames[c.kind], what, oneLine(err.Error())))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.timeouts.Add(1)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// ---- HTTP ----

type soakResp struct {
	status int
	hdr    http.Header
	body   []byte
}

// do sends one request as client c (its address in X-Forwarded-For) and
// reads the whole answer; an SSE-framed answer is reduced to its last
// event's data.
func (s *soakRun) do(ctx context.Context, c *soakClient, method, path, token, body string, hdr ...string) (soakResp, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return soakResp{}, err
	}
	h := req.Header
	if body != "" {
		h["Content-Type"] = []string{"application/json"}
	}
	h["Accept"] = []string{"application/json, text/event-stream"}
	if token != "" {
		h["Authorization"] = []string{"Bearer " + token}
	}
	if c != nil {
		h["X-Forwarded-For"] = []string{c.xff}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i]] = []string{hdr[i+1]}
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return soakResp{}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return soakResp{}, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b = lastSSEData(b)
	}
	return soakResp{status: resp.StatusCode, hdr: resp.Header, body: b}, nil
}

// authError is a 401's body.
func authError(r soakResp) (code, desc string) {
	var e struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error, e.Desc
}

// check401 verifies a refusal: 401, invalid_token with desc in the body
// and in the RFC 6750 challenge.
func check401(r soakResp, desc string) error {
	code, got := authError(r)
	if r.status != http.StatusUnauthorized || code != "invalid_token" || got != desc {
		return fmt.Errorf("want 401 invalid_token %q, got %d %.200s", desc, r.status, r.body)
	}
	if ch := r.hdr.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, `error_description="`+desc+`"`) {
		return fmt.Errorf("401 with challenge %q", ch)
	}
	return nil
}

// isRevoked reports a correct 401 "revoked" answer.
func isRevoked(r soakResp) bool { return check401(r, descRevoked) == nil }

// checkWhoami verifies a tools/call whoami answer for client id.
func checkWhoami(r soakResp, id string) error {
	if r.status != http.StatusOK {
		return fmt.Errorf("whoami: %d %.200s", r.status, r.body)
	}
	if err := checkResult(r.body); err != nil {
		return err
	}
	if !bytes.Contains(r.body, []byte(`"client_id":"`+id+`"`)) {
		return fmt.Errorf("whoami answered for someone else: %.200s", r.body)
	}
	return nil
}

func modernCall(id int, tool, args string) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args +
		`,"_meta":{"io.modelcontextprotocol/protocolVersion":"` + modernVersion +
		`","io.modelcontextprotocol/clientInfo":{"name":"mcpauth-soak","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
}

// statelessWhoami is one 2026-07-28 tools/call whoami.
func (s *soakRun) statelessWhoami(ctx context.Context, c *soakClient, token string, id int) (soakResp, error) {
	return s.do(ctx, c, http.MethodPost, "/mcp", token, modernCall(id, "whoami", "{}"),
		"Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", "whoami")
}

// ---- sessions ----

// soakSession is a 2025-11-25 Streamable HTTP session.
type soakSession struct {
	id   string
	next int
}

// openSession initializes a session; a non-nil soakResp is a refusal.
// adminSession opens c's session with its own token, counting the
// exchange, or records why it could not (nil).
func (s *soakRun) adminSession(ctx context.Context, c *soakClient) *soakSession {
	ss, refused, err := s.openSession(ctx, c, c.token)
	if err == nil && refused != nil {
		err = fmt.Errorf("initialize: %d %.200s", refused.status, refused.body)
	}
	if err != nil {
		s.unexpected(c, "initialize", err)
		return nil
	}
	c.count("initialize + notifications/initialized → 200, 202")
	return ss
}

func (s *soakRun) openSession(ctx context.Context, c *soakClient, token string) (*soakSession, *soakResp, error) {
	r, err := s.do(ctx, c, http.MethodPost, "/mcp", token, initializeBody(0))
	if err != nil {
		return nil, nil, err
	}
	if r.status != http.StatusOK {
		return nil, &r, nil
	}
	sid := r.hdr.Get("Mcp-Session-Id")
	if sid == "" || !bytes.Contains(r.body, []byte(`"protocolVersion":"`+protocolVersion+`"`)) {
		return nil, nil, fmt.Errorf("initialize: session %q, %.200s", sid, r.body)
	}
	r, err = s.do(ctx, c, http.MethodPost, "/mcp", token, initializedBody, "Mcp-Session-Id", sid, "Mcp-Protocol-Version", protocolVersion)
	if err != nil {
		return nil, nil, err
	}
	if r.status/100 != 2 {
		return nil, &r, nil
	}
	return &soakSession{id: sid, next: 1}, nil, nil
}

func (s *soakRun) sessionCall(ctx context.Context, c *soakClient, ss *soakSession, token, tool, args string) (soakResp, error) {
	ss.next++
	return s.do(ctx, c, http.MethodPost, "/mcp", token, toolsCallBody(ss.next, tool, args), "Mcp-Session-Id", ss.id, "Mcp-Protocol-Version", protocolVersion)
}

func (s *soakRun) closeSession(c *soakClient, ss *soakSession, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := s.do(ctx, c, http.MethodDelete, "/mcp", token, "", "Mcp-Session-Id", ss.id, "Mcp-Protocol-Version", protocolVersion)
	switch started, _ := c.revTimes(); {
	case err != nil:
	case r.status == http.StatusOK:
		c.count("DELETE /mcp → 200")
	case !started.IsZero() && r.status == http.StatusUnauthorized && strings.Contains(string(r.body), descRevoked):
		// The client's token was revoked while it ended its session.
		c.count("DELETE /mcp → 401 revoked (revocation in flight)")
	default:
		s.unexpected(c, "DELETE /mcp", fmt.Errorf("%d %.200s", r.status, r.body))
	}
}

// soakStream is a legacy SSE stream and its session.
type soakStream struct {
	msgURL string
	body   io.ReadCloser
	cancel context.CancelFunc
	events chan []byte
	ended  chan struct{}
	next   int
}

// openStream opens GET /sse and initializes; a non-nil soakResp is a
// refusal of the GET or of an initialize POST.
func (s *soakRun) openStream(ctx context.Context, c *soakClient, token string) (*soakStream, *soakResp, error) {
	life, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(life, http.MethodGet, s.base+"/sse", nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.Header["Authorization"] = []string{"Bearer " + token}
	req.Header["Accept"] = []string{"text/event-stream"}
	req.Header["X-Forwarded-For"] = []string{c.xff}
	stop := context.AfterFunc(ctx, cancel)
	resp, err := s.hc.Do(req)
	stop()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		return nil, &soakResp{status: resp.StatusCode, hdr: resp.Header, body: b}, nil
	}
	br := bufio.NewReaderSize(resp.Body, 8192)
	ev, err := readSSEEvent(br)
	if err != nil || ev.name != "endpoint" {
		resp.Body.Close()
		cancel()
		return nil, nil, fmt.Errorf("GET /sse: want an endpoint event, got %q %q (%v)", ev.name, ev.data, err)
	}
	st := &soakStream{msgURL: strings.TrimPrefix(strings.TrimSpace(string(ev.data)), s.base), body: resp.Body, cancel: cancel,
		events: make(chan []byte, 16), ended: make(chan struct{})}
	go func() {
		defer close(st.ended)
		for {
			ev, err := readSSEEvent(br)
			if err != nil {
				return
			}
			if (ev.name == "" || ev.name == "message") && !bytes.Contains(ev.data, []byte(`"method":`)) {
				select {
				case st.events <- ev.data:
				default: // nobody waits for it (a late answer)
				}
			}
		}
	}()
	// A refused POST (the token revoked since the GET) is returned as a
	// refusal, for the caller to judge like any other.
	r, err := s.streamRequest(ctx, c, st, token, initializeBody(0), 0)
	if err != nil || r.status != http.StatusOK {
		st.close()
		if err == nil {
			return nil, &r, nil
		}
		return nil, nil, err
	}
	pr, err := s.do(ctx, c, http.MethodPost, st.msgURL, token, initializedBody)
	if err != nil || pr.status/100 != 2 {
		st.close()
		if err == nil {
			return nil, &pr, nil
		}
		return nil, nil, err
	}
	st.next = 1
	return st, nil, nil
}

func (st *soakStream) close() {
	st.cancel()
	st.body.Close()
}

// errStreamEnded: the SSE stream ended while a request waited for its
// answer.
var errStreamEnded = errors.New("SSE stream ended")

// streamRequest posts body to the stream's session; a 2xx POST is
// followed by the answer with that id from the stream, returned as a 200.
// A refused POST is returned as it is.
func (s *soakRun) streamRequest(ctx context.Context, c *soakClient, st *soakStream, token, body string, id int) (soakResp, error) {
	r, err := s.do(ctx, c, http.MethodPost, st.msgURL, token, body)
	if err != nil || r.status/100 != 2 {
		return r, err
	}
	a := []byte(`"id":` + strconv.Itoa(id) + `,`)
	b := []byte(`"id":` + strconv.Itoa(id) + `}`)
	for {
		select {
		case data := <-st.events:
			if bytes.Contains(data, a) || bytes.Contains(data, b) {
				return soakResp{status: http.StatusOK, body: data}, nil
			}
		case <-st.ended:
			return soakResp{}, errStreamEnded
		case <-ctx.Done():
			return soakResp{}, ctx.Err()
		}
	}
}

// ---- valid clients ----

// validConn is a valid client's open session or stream, if any.
type validConn struct {
	sess  *soakSession
	st    *soakStream
	calls int
	token string
}

func (s *soakRun) closeConn(c *soakClient, vc *validConn, deleteSession bool) {
	if vc.sess != nil && deleteSession {
		s.closeSession(c, vc.sess, vc.token)
	}
	if vc.st != nil {
		vc.st.close()
	}
	vc.sess, vc.st = nil, nil
}

// outcome of one valid client's step.
type vOutcome int

const (
	vOK      vOutcome = iota
	vRevoked          // 401 "Token has been revoked"
	vEnded            // its SSE stream ended (the reaper closed it)
	vGone             // 404 session_not_found (the reaper ended the session)
)

// validStep makes one whoami (opening the session or stream first when
// needed) and says how it went; err is an answer that is wrong whatever
// the token's state.
func (s *soakRun) validStep(ctx context.Context, c *soakClient, vc *validConn) (string, vOutcome, error) {
	classify := func(what string, r soakResp) (string, vOutcome, error) {
		switch {
		case isRevoked(r):
			return what, vRevoked, nil
		case r.status == http.StatusNotFound && bytes.Contains(r.body, []byte("session_not_found")):
			return what, vGone, nil
		}
		return what, vOK, fmt.Errorf("%d %.200s", r.status, r.body)
	}
	switch c.kind {
	case kStateless:
		r, err := s.statelessWhoami(ctx, c, vc.token, 1)
		if err != nil {
			return "POST /mcp whoami", vOK, err
		}
		if r.status != http.StatusOK {
			return classify("POST /mcp whoami", r)
		}
		return "POST /mcp whoami", vOK, checkWhoami(r, c.id)
	case kStreamable:
		if vc.sess == nil {
			ss, refused, err := s.openSession(ctx, c, vc.token)
			if err != nil {
				return "initialize", vOK, err
			}
			if refused != nil {
				return classify("initialize", *refused)
			}
			vc.sess, vc.calls = ss, 0
			c.count("initialize + notifications/initialized → 200, 202")
		}
		r, err := s.sessionCall(ctx, c, vc.sess, vc.token, "whoami", "{}")
		if err != nil {
			return "POST /mcp whoami (session)", vOK, err
		}
		if r.status != http.StatusOK {
			return classify("POST /mcp whoami (session)", r)
		}
		return "POST /mcp whoami (session)", vOK, checkWhoami(r, c.id)
	default: // kSSE
		if vc.st == nil {
			st, refused, err := s.openStream(ctx, c, vc.token)
			if errors.Is(err, errStreamEnded) {
				return "GET /sse + initialize", vEnded, nil
			}
			if err != nil {
				return "GET /sse + initialize", vOK, err
			}
			if refused != nil {
				return classify("GET /sse + initialize", *refused)
			}
			vc.st, vc.calls = st, 0
			c.count("GET /sse + initialize → 200")
		}
		vc.st.next++
		r, err := s.streamRequest(ctx, c, vc.st, vc.token, whoamiBody(vc.st.next), vc.st.next)
		if errors.Is(err, errStreamEnded) {
			return "POST /message whoami", vEnded, nil
		}
		if err != nil {
			return "POST /message whoami", vOK, err
		}
		if r.status != http.StatusOK {
			return classify("POST /message whoami", r)
		}
		return "POST /message whoami", vOK, checkWhoami(r, c.id)
	}
}

// runValid is a valid client's loop: whoami after whoami, a new session
// or stream every 100 calls; once its token is revoked it checks the
// refusal, then mints a new token through the token API and goes on.
func (s *soakRun) runValid(c *soakClient) {
	vc := &validConn{token: c.current()}
	defer func() { s.closeConn(c, vc, true) }()
	for !s.stopped.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), soakReqTimeout)
		t0 := time.Now()
		what, out, err := s.validStep(ctx, c, vc)
		d := time.Since(t0)
		cancel()
		rs, rd := c.revTimes()
		switch {
		case rs.IsZero():
			// Nobody touched the token: only a correct answer will do.
			if err == nil && out != vOK {
				err = fmt.Errorf("a valid, unrevoked token was refused (outcome %d)", out)
			}
			if err != nil {
				s.unexpected(c, what, err)
				s.closeConn(c, vc, false) // start afresh
				break
			}
			c.count(what + " → 200")
			c.lats = append(c.lats, d)
		case !rd.IsZero() && t0.After(rd):
			// Revoked before this request started: 401 revoked only.
			if err == nil && out != vRevoked {
				err = fmt.Errorf("revoked token not refused with 401 %q (outcome %d)", descRevoked, out)
			}
			if err != nil {
				s.unexpected(c, what+" after revocation", err)
			} else {
				c.count(what + " → 401 revoked")
			}
			s.afterRevocation(c, vc, rd)
		default:
			// The revocation raced this request: served, or refused as
			// revoked, or its session/stream ended under it.
			if err != nil {
				s.unexpected(c, what+" during revocation", err)
				s.closeConn(c, vc, false)
				break
			}
			if out == vOK {
				c.count(what + " → 200 (revocation in flight)")
				break
			}
			c.count(what + " → " + [...]string{"", "401 revoked", "stream ended", "404 session ended"}[out] + " (revocation in flight)")
			// Wait for the revoker's confirmation, then behave as above.
			for rd.IsZero() && !s.stopped.Load() {
				time.Sleep(50 * time.Millisecond)
				_, rd = c.revTimes()
			}
			if !rd.IsZero() {
				s.afterRevocation(c, vc, rd)
			}
		}
		if vc.sess != nil || vc.st != nil {
			vc.calls++
			if vc.calls >= 100 {
				s.closeConn(c, vc, true)
			}
		}
		s.pause(c, s.think)
	}
}

// afterRevocation: the client's token was revoked at rd. An SSE stream
// must end within soakStreamGrace; a new request with the old token must
// get 401 revoked; then the client mints a new token through the token
// API (as its operator would) and starts over.
func (s *soakRun) afterRevocation(c *soakClient, vc *validConn, rd time.Time) {
	if vc.st != nil {
		select {
		case <-vc.st.ended:
			c.count("SSE stream ended within " + soakStreamGrace.String() + " of revocation")
		case <-time.After(time.Until(rd.Add(soakStreamGrace))):
			s.unexpected(c, "SSE stream after revocation", fmt.Errorf("stream still open %s after its token was revoked", soakStreamGrace))
		}
	}
	s.closeConn(c, vc, false)
	ctx, cancel := context.WithTimeout(context.Background(), soakReqTimeout)
	defer cancel()
	r, err := s.statelessWhoami(ctx, c, vc.token, 1)
	if err == nil {
		err = check401(r, descRevoked)
	}
	if err != nil {
		s.unexpected(c, "POST /mcp whoami with the revoked token", err)
	} else {
		c.count("POST /mcp whoami with the revoked token → 401 revoked")
	}
	c.fails++
	tok, jti, err := s.mintAPI(ctx, c, c.id, "", "1h")
	if err != nil {
		s.unexpected(c, "re-mint through the token API", err)
		time.Sleep(time.Second)
		return
	}
	c.count("re-mint through the token API → 200")
	c.mu.Lock()
	c.token, c.jti, c.revStart, c.revDone, c.revoking = tok, jti, time.Time{}, time.Time{}, false
	c.mu.Unlock()
	vc.token = tok
}

// pause sleeps a random time in [0, 2·mean) (mean ≤ 0: not at all).
func (s *soakRun) pause(c *soakClient, mean time.Duration) {
	if mean > 0 && !s.stopped.Load() {
		time.Sleep(time.Duration(c.rng.Int64N(int64(2 * mean))))
	}
}

// ---- clients with bad tokens ----

// runBad sends requests of every shape with a token that must be refused:
// 401 with the right description, or 429 once its address has earned
// MCP_AUTH_FAIL_BURST failures (the throttle), never anything else.
func (s *soakRun) runBad(c *soakClient, desc string, mean time.Duration) {
	shapes := []struct {
		what string
		do   func(ctx context.Context) (soakResp, error)
	}{
		{"POST /mcp initialize", func(ctx context.Context) (soakResp, error) {
			return s.do(ctx, c, http.MethodPost, "/mcp", c.token, initializeBody(0))
		}},
		{"POST /mcp whoami (2026-07-28)", func(ctx context.Context) (soakResp, error) { return s.statelessWhoami(ctx, c, c.token, 1) }},
		{"GET /sse", func(ctx context.Context) (soakResp, error) {
			return s.do(ctx, c, http.MethodGet, "/sse", c.token, "", "Accept", "text/event-stream")
		}},
		{"POST /message", func(ctx context.Context) (soakResp, error) {
			return s.do(ctx, c, http.MethodPost, "/message?sessionId=soak-"+strconv.Itoa(c.i), c.token, whoamiBody(1))
		}},
	}
	for n := c.i; !s.stopped.Load(); n++ {
		sh := shapes[n%len(shapes)]
		ctx, cancel := context.WithTimeout(context.Background(), soakReqTimeout)
		r, err := sh.do(ctx)
		cancel()
		switch {
		case err != nil:
			s.unexpected(c, sh.what, err)
		case r.status == http.StatusTooManyRequests:
			code, _ := authError(r)
			if c.fails < soakFailBurst || code != "too_many_requests" || r.hdr.Get("Retry-After") == "" {
				s.unexpected(c, sh.what, fmt.Errorf("429 after %d failures from this address (burst %d), error %q, Retry-After %q",
					c.fails, soakFailBurst, code, r.hdr.Get("Retry-After")))
			} else {
				c.count(sh.what + " → 429 throttled")
			}
		default:
			if err := check401(r, desc); err != nil {
				s.unexpected(c, sh.what, err)
			} else {
				c.fails++
				c.count(sh.what + " → 401 " + shortDesc(desc))
			}
		}
		s.pause(c, mean)
	}
}

func shortDesc(d string) string {
	switch d {
	case descExpired:
		return "expired"
	case descBadSig:
		return "invalid signature"
	}
	return d
}

// ---- admins ----

// mintAPI mints through POST /api/v1/mcp/auth/token: with the API key,
// or with bearer (an admin token) when given.
func (s *soakRun) mintAPI(ctx context.Context, c *soakClient, clientID, bearer, life string) (token, jti string, err error) {
	body := `{"client_id":"` + clientID + `","expires_in":"` + life + `"}`
	var r soakResp
	if bearer != "" {
		r, err = s.do(ctx, c, http.MethodPost, "/api/v1/mcp/auth/token", bearer, body)
	} else {
		r, err = s.do(ctx, c, http.MethodPost, "/api/v1/mcp/auth/token", "", body, "X-API-Key", s.apiKey)
	}
	if err != nil {
		return "", "", err
	}
	var res struct {
		Success bool `json:"success"`
		Data    struct {
			AccessToken string `json:"access_token"`
			JTI         string `json:"jti"`
			ClientID    string `json:"client_id"`
		} `json:"data"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &res) != nil || !res.Success || res.Data.AccessToken == "" || res.Data.ClientID != clientID {
		return "", "", fmt.Errorf("token API: %d %.200s", r.status, r.body)
	}
	return res.Data.AccessToken, res.Data.JTI, nil
}

// useMinted checks a freshly minted token with one stateless whoami.
func (s *soakRun) useMinted(ctx context.Context, c *soakClient, token, id string) {
	r, err := s.statelessWhoami(ctx, c, token, 1)
	if err == nil {
		err = checkWhoami(r, id)
	}
	if err != nil {
		s.unexpected(c, "whoami with a freshly minted token", err)
		return
	}
	c.count("POST /mcp whoami (2026-07-28) with the new token → 200")
}

// runAdmin mints, through issue_token in a session (kAdminTool) or the
// token API (kAdminAPI, API key and admin Bearer in turn), and uses each
// new token once.
func (s *soakRun) runAdmin(c *soakClient) {
	var ss *soakSession
	defer func() {
		if ss != nil {
			s.closeSession(c, ss, c.token)
		}
	}()
	for n := 0; !s.stopped.Load(); n++ {
		ctx, cancel := context.WithTimeout(context.Background(), soakReqTimeout)
		id := "soak-minted-" + strconv.FormatInt(s.mintSeq.Add(1), 10)
		if c.kind == kAdminTool {
			if ss == nil {
				if ss = s.adminSession(ctx, c); ss == nil {
					cancel()
					s.pause(c, 10*s.think)
					continue
				}
			}
			r, err := s.sessionCall(ctx, c, ss, c.token, "issue_token", `{"client_id":"`+id+`","expires_in":"1h"}`)
			var res struct {
				Result struct {
					SC struct {
						Token    string `json:"token"`
						ClientID string `json:"client_id"`
					} `json:"structuredContent"`
				} `json:"result"`
			}
			if err == nil && (r.status != http.StatusOK || checkResult(r.body) != nil || json.Unmarshal(r.body, &res) != nil || res.Result.SC.ClientID != id || res.Result.SC.Token == "") {
				err = fmt.Errorf("issue_token: %d %.200s", r.status, r.body)
			}
			if err != nil {
				s.unexpected(c, "issue_token", err)
			} else {
				c.count("POST /mcp issue_token (session) → 200")
				s.useMinted(ctx, c, res.Result.SC.Token, id)
			}
		} else {
			bearer, via := "", "API key"
			if n%2 == 1 {
				bearer, via = c.token, "admin Bearer"
			}
			tok, _, err := s.mintAPI(ctx, c, id, bearer, "1h")
			if err != nil {
				s.unexpected(c, "token API ("+via+")", err)
			} else {
				c.count("POST /api/v1/mcp/auth/token (" + via + ") → 200")
				s.useMinted(ctx, c, tok, id)
			}
		}
		cancel()
		s.pause(c, 10*s.think)
	}
}

// runRevoker revokes, about once a second, the token of a valid client
// picked at random, with revoke_token by jti over its session.
func (s *soakRun) runRevoker(c *soakClient) {
	var ss *soakSession
	defer func() {
		if ss != nil {
			s.closeSession(c, ss, c.token)
		}
	}()
	for !s.stopped.Load() {
		s.pause(c, time.Second)
		if s.stopped.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), soakReqTimeout)
		if ss == nil {
			if ss = s.adminSession(ctx, c); ss == nil {
				cancel()
				continue
			}
		}
		t := s.targets[c.rng.IntN(len(s.targets))]
		t.mu.Lock()
		if t.revoking || t.token == "" {
			t.mu.Unlock()
			cancel()
			continue
		}
		t.revoking, t.revStart = true, time.Now()
		jti := t.jti
		t.mu.Unlock()
		r, err := s.sessionCall(ctx, c, ss, c.token, "revoke_token", `{"jti":"`+jti+`","reason":"soak"}`)
		if err == nil && (r.status != http.StatusOK || checkResult(r.body) != nil || !bytes.Contains(r.body, []byte(`"jti":"`+jti+`"`))) {
			err = fmt.Errorf("revoke_token: %d %.200s", r.status, r.body)
		}
		t.mu.Lock()
		t.revDone = time.Now()
		t.mu.Unlock()
		if err != nil {
			s.unexpected(c, "revoke_token", err)
		} else {
			s.revoked.Add(1)
			c.count("POST /mcp revoke_token (session) → 200")
		}
		cancel()
	}
}

// ---- tokens ----

// forge makes the bad tokens: signed with another secret, "alg":"none",
// and a real token (good) whose payload was edited to claim admin.
func forge(kind soakKind, id string, good string) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{"iss": "mcpauth", "sub": id, "jti": "forged-" + id, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "admin"}
	switch kind {
	case kForgedSecret, kHammer:
		var other [32]byte
		_, _ = rand.Read(other[:])
		return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(other[:])
	case kForgedNone:
		return jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	case kForgedTamper:
		parts := strings.Split(good, ".")
		if len(parts) != 3 {
			return "", errors.New("not a JWT")
		}
		p, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return "", err
		}
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			return "", err
		}
		m["scope"] = "admin"
		p, _ = json.Marshal(m)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2], nil
	}
	return "", fmt.Errorf("kind %d forges nothing", kind)
}

// ---- the run ----

// soakResult is what the soak measured.
type soakResult struct {
	clients     int
	kinds       [numSoakKinds]int
	dur, settle time.Duration
	think       time.Duration
	counts      map[string]int64 // "kind | request → outcome"
	total       int64
	unexpected  int64
	unexpBy     map[string]int64
	samples     []string
	timeouts    int64
	revoked     int64
	lats        []time.Duration
	before      soakSample
	peak        soakSample
	after       soakSample
	settled     bool
	rounds      int           // load rounds on the same server (-soak-rounds)
	afterRounds []soakSample  // the state after each round
	lastGCAfter time.Duration // when, after the load ended, the last GC before the after sample ran (0: none)
	serverCPU   time.Duration
	clientCPU   time.Duration
	otherCPU    time.Duration
	serverLog   string
	env         []string
	started     time.Time
	elapsed     time.Duration
	command     string
	machine     machine
	setup       time.Duration
}

// soakSample is the server's state at one moment.
type soakSample struct {
	at         time.Time
	rss, hwm   int64
	anon, file int64 // RssAnon, RssFile: anonymous memory, and pages of the binary and other files
	fds        int
	goroutines int
	heapInuse  int64
	heapAlloc  int64 // live objects and garbage not yet collected
	retained   int64 // idle heap not yet returned to the OS (idle − released)
	stacks     int64
	meta       int64 // runtime metadata: mspan_sys + gc_sys + other_sys
	sessions   int
	lastGC     float64 // go_memstats_last_gc_time_seconds
}

func (r *soakResult) rssOK() bool {
	return r.before.rss > 0 && float64(r.after.rss) <= 1.10*float64(r.before.rss)
}

// sample reads the server's RSS and descriptors (/proc) and, with the
// admin token, its goroutines, heap and sessions (GET /metrics).
func (s *soakRun) sample(srv *proc) soakSample {
	sm := soakSample{at: time.Now()}
	sm.rss, _ = srv.rss()
	sm.hwm, _ = procStatusKB(srv.pid(), "VmHWM")
	sm.anon, _ = procStatusKB(srv.pid(), "RssAnon")
	sm.file, _ = procStatusKB(srv.pid(), "RssFile")
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", srv.pid())); err == nil {
		sm.fds = len(ents)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.do(ctx, nil, http.MethodGet, "/metrics", s.admin, "")
	if err != nil || r.status != http.StatusOK {
		return sm
	}
	for line := range strings.Lines(string(r.body)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			sm.goroutines = int(v)
		case "go_memstats_heap_inuse_bytes":
			sm.heapInuse = int64(v)
		case "go_memstats_heap_alloc_bytes":
			sm.heapAlloc = int64(v)
		case "go_memstats_heap_idle_bytes":
			sm.retained += int64(v)
		case "go_memstats_heap_released_bytes":
			sm.retained -= int64(v)
		case "go_memstats_stack_inuse_bytes":
			sm.stacks = int64(v)
		case "go_memstats_mspan_sys_bytes", "go_memstats_gc_sys_bytes", "go_memstats_other_sys_bytes":
			sm.meta += int64(v)
		case "mcpauth_open_sessions":
			sm.sessions = int(v)
		case "go_memstats_last_gc_time_seconds":
			sm.lastGC = v
		}
	}
	return sm
}

func maxSample(a, b soakSample) soakSample {
	a.rss, a.hwm = max(a.rss, b.rss), max(a.hwm, b.hwm)
	a.anon, a.file = max(a.anon, b.anon), max(a.file, b.file)
	a.fds, a.goroutines = max(a.fds, b.fds), max(a.goroutines, b.goroutines)
	a.heapInuse, a.sessions = max(a.heapInuse, b.heapInuse), max(a.sessions, b.sessions)
	a.heapAlloc, a.retained = max(a.heapAlloc, b.heapAlloc), max(a.retained, b.retained)
	a.stacks, a.meta = max(a.stacks, b.stacks), max(a.meta, b.meta)
	return a
}

// soakOnly runs the soak and writes its section into o.out.
func soakOnly(ctx context.Context, o options, tmp string, started time.Time) error {
	log.Print("building mcpauth")
	bin := filepath.Join(tmp, "mcpauth")
	if err := buildMcpauth(ctx, bin); err != nil {
		return err
	}
	env := newServerEnv(bin, tmp)
	res, err := runSoak(ctx, o, env)
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	res.started, res.elapsed, res.command, res.machine = started, time.Since(started), commandLine(), describeMachine()
	err = rewriteReport(o.out, func(doc string) string { return noteSoakRun(spliceSoak(doc, res.markdown())) })
	if err != nil {
		return err
	}
	log.Printf("wrote the soak section of %s in %s", o.out, res.elapsed.Round(time.Second))
	fmt.Print(summarize(res.targets(), res.machine))
	return nil
}

func runSoak(ctx context.Context, o options, env *serverEnv) (*soakResult, error) {
	n := o.soakClients
	if n < 100 {
		return nil, errors.New("-soak-clients must be at least 100 (the mix needs every kind)")
	}
	res := &soakResult{clients: n, dur: o.soakDuration, think: o.soakThink, counts: map[string]int64{}, rounds: max(o.soakRounds, 1)}
	var kb [24]byte
	_, _ = rand.Read(kb[:])
	apiKey := hex.EncodeToString(kb[:])
	// Every simulated client has an address of its own (X-Forwarded-For,
	// believed from 127.0.0.1), so the failure throttle keys on it as it
	// would behind a reverse proxy; MCP_AUTH_FAIL_BURST and _REFILL keep
	// their defaults.
	res.env = []string{"MCP_TRUSTED_PROXIES=127.0.0.1", "MCP_LEEWAY=" + soakLeeway.String(),
		"MCP_AUTH_FAIL_BURST=" + strconv.Itoa(soakFailBurst), "MCP_AUTH_FAIL_REFILL=" + soakFailRefill.String()}
	srv, err := startMcpauth(ctx, env, "mcpauth-soak", false, "", append([]string{"API_KEY=" + apiKey}, res.env...)...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	admin, err := env.mintToken(ctx, "soak-harness")
	if err != nil {
		return nil, err
	}
	s := &soakRun{base: srv.url, hc: newHTTPClient(2*n + 64), apiKey: apiKey, admin: admin, think: o.soakThink, unexpBy: map[string]int64{}}
	defer s.hc.CloseIdleConnections()

	// The clients: kinds by soakMix, the rest kStreamable.
	kinds := make([]soakKind, 0, n)
	for k := kStateless; k < numSoakKinds; k++ {
		m := soakMix[k] * n / 1000
		if k == kRevoker || k == kHammer {
			m = soakMix[k]
		}
		for range m {
			kinds = append(kinds, k)
		}
	}
	for len(kinds) < n {
		kinds = append(kinds, kStreamable)
	}
	slices.Sort(kinds)
	hammers := 0
	for i, k := range kinds {
		c := &soakClient{i: i, kind: k, id: fmt.Sprintf("soak-%d", i), xff: fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256),
			rng: mrand.New(mrand.NewPCG(uint64(i), 0x50a1c)), counts: map[string]int64{}}
		if k == kHammer {
			// Shares its address with valid client number hammers: that
			// client must be served throughout.
			c.xff = s.clientsXFF(hammers)
			hammers++
		}
		s.clients = append(s.clients, c)
		res.kinds[k]++
	}

	// Tokens: one per client through the token API (API key), 16 at a
	// time; admins get the admin scope; expired ones a 1s lifetime.
	log.Printf("soak: minting %d tokens through the token API", n)
	t0 := time.Now()
	if err := s.mintAll(ctx); err != nil {
		return nil, err
	}
	for _, c := range s.clients {
		if c.kind.valid() && c.i >= hammers {
			s.targets = append(s.targets, c)
		}
	}
	// Expired tokens are used only once past exp + leeway.
	time.Sleep(time.Until(t0.Add(1*time.Second + soakLeeway + time.Second)))
	res.setup = time.Since(t0)

	time.Sleep(2 * time.Second)
	res.before = s.sample(srv)
	log.Printf("soak: before: RSS %.1f MiB, %d fds, %d goroutines", mib(res.before.rss), res.before.fds, res.before.goroutines)
	saveServerProfiles(srv, "before")
	s.logFreed(srv, "before")

	peak := res.before
	for round := 1; round <= res.rounds; round++ {
		if err := s.soakRound(ctx, o, srv, res, &peak, round); err != nil {
			return nil, err
		}
	}
	res.peak = peak

	for _, c := range s.clients {
		for what, v := range c.counts {
			res.counts[soakKindNames[c.kind]+" | "+what] += v
			res.total += v
		}
		res.lats = append(res.lats, c.lats...)
	}
	slices.Sort(res.lats)
	res.unexpected, res.unexpBy, res.samples, res.timeouts, res.revoked = s.unexp, s.unexpBy, s.samples, s.timeouts.Load(), s.revoked.Load()
	res.total += res.unexpected
	out := srv.output()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "panic") || strings.Contains(l, "level=ERROR") || strings.Contains(l, `"level":"ERROR"`) {
			res.serverLog += l + "\n"
		}
	}
	return res, nil
}

// clientsXFF is the address of client i.
func (s *soakRun) clientsXFF(i int) string { return s.clients[i].xff }

// mintAll gives every client its token.
func (s *soakRun) mintAll(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	sem := make(chan struct{}, 16)
	for _, c := range s.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := s.mintFor(ctx, c)
			if err != nil {
				mu.Lock()
				ferr = errors.Join(ferr, fmt.Errorf("client %d (%s): %w", c.i, soakKindNames[c.kind], err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ferr
}

func (s *soakRun) mintFor(ctx context.Context, c *soakClient) error {
	mint := func(scopes, life string) (string, string, error) {
		body := `{"client_id":"` + c.id + `","expires_in":"` + life + `"` + scopes + `}`
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r, err := s.do(ctx, nil, http.MethodPost, "/api/v1/mcp/auth/token", "", body, "X-API-Key", s.apiKey)
		if err != nil {
			return "", "", err
		}
		var res struct {
			Data struct {
				AccessToken string `json:"access_token"`
				JTI         string `json:"jti"`
			} `json:"data"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &res) != nil || res.Data.AccessToken == "" {
			return "", "", fmt.Errorf("token API: %d %.200s", r.status, r.body)
		}
		return res.Data.AccessToken, res.Data.JTI, nil
	}
	var err error
	switch {
	case c.kind.valid():
		c.token, c.jti, err = mint("", "1h")
	case c.kind == kAdminTool || c.kind == kAdminAPI || c.kind == kRevoker:
		c.token, c.jti, err = mint(`,"scope":["admin"]`, "1h")
	case c.kind == kExpired:
		c.token, c.jti, err = mint("", "1s")
	case c.kind == kForgedTamper:
		var good string
		if good, _, err = mint("", "1h"); err == nil {
			c.token, err = forge(c.kind, c.id, good)
		}
	default:
		c.token, err = forge(c.kind, c.id, "")
	}
	return err
}

// soakRound runs the clients for one -soak-duration, then waits for the
// server to settle, and records the state after it (res.after, and
// res.afterRounds when there are several rounds).
func (s *soakRun) soakRound(ctx context.Context, o options, srv *proc, res *soakResult, peakp *soakSample, round int) error {
	s.stopped.Store(false)
	res.settled, res.lastGCAfter = false, 0
	peak := *peakp
	defer func() { *peakp = peak }()
	log.Printf("soak: round %d of %d: %d clients for %s", round, res.rounds, len(s.clients), o.soakDuration)
	cpu0, self0, sys0 := srv.cpuTime(), selfCPU(), systemBusy()
	var wg sync.WaitGroup
	for _, c := range s.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch {
			case c.kind.valid():
				s.runValid(c)
			case c.kind == kExpired:
				s.runBad(c, descExpired, 2*time.Second)
			case c.kind == kHammer:
				s.runBad(c, descBadSig, s.think/10)
			case c.kind.bad():
				s.runBad(c, descBadSig, 2*time.Second)
			case c.kind == kRevoker:
				s.runRevoker(c)
			default:
				s.runAdmin(c)
			}
		}()
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				peak = maxSample(peak, s.sample(srv))
			}
		}
	}()
	select {
	case <-time.After(o.soakDuration):
	case <-ctx.Done():
	}
	s.stopped.Store(true)
	log.Print("soak: stopping; clients finish their request in flight and close their sessions and streams")
	wg.Wait()
	close(stopSampling)
	<-sampled
	sCPU, cCPU := srv.cpuTime()-cpu0, selfCPU()-self0
	res.serverCPU, res.clientCPU = res.serverCPU+sCPU, res.clientCPU+cCPU
	res.otherCPU += max(0, systemBusy()-sys0-sCPU-cCPU)
	loadEnd := time.Now()
	s.hc.CloseIdleConnections()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Settle: every session and stream closed, a GC after the load, and
	// RSS back within 10% (or the settle time is up).
	log.Printf("soak: settling (up to %s)", o.soakSettle)
	deadline := loadEnd.Add(o.soakSettle)
	for {
		time.Sleep(time.Second)
		sm := s.sample(srv)
		peak = maxSample(peak, sm)
		res.after = sm
		gcd := sm.lastGC > float64(loadEnd.UnixNano())/1e9
		if sm.sessions == 0 && gcd && float64(sm.rss) <= 1.10*float64(res.before.rss) && time.Since(loadEnd) >= 5*time.Second {
			res.settled = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}
	s.hc.CloseIdleConnections()
	res.after = s.sample(srv)
	res.settle = res.after.at.Sub(loadEnd)
	if gc := time.Unix(0, int64(res.after.lastGC*1e9)); gc.After(loadEnd) {
		res.lastGCAfter = gc.Sub(loadEnd)
	}
	log.Printf("soak: after %s: RSS %.1f MiB (before %.1f, peak %.1f), %d fds, %d goroutines, %d sessions",
		res.settle.Round(time.Second), mib(res.after.rss), mib(res.before.rss), mib(peak.rss), res.after.fds, res.after.goroutines, res.after.sessions)
	res.afterRounds = append(res.afterRounds, res.after)
	saveServerProfiles(srv, fmt.Sprintf("after%d", round))
	s.logFreed(srv, fmt.Sprintf("after round %d", round))
	return nil
}

// logFreed, when BENCH_SERVER_PPROF is set, has the server run a GC and
// return every free page to the OS (debug.FreeOSMemory), then logs its
// memory: what is left is what the process holds, as opposed to what the
// Go runtime keeps for reuse.
func (s *soakRun) logFreed(srv *proc, what string) {
	addr := os.Getenv("BENCH_SERVER_PPROF")
	if addr == "" {
		return
	}
	resp, err := http.Post("http://"+addr+"/debug/freeosmemory", "", nil)
	if err != nil {
		log.Printf("soak: freeosmemory: %v", err)
		return
	}
	resp.Body.Close()
	time.Sleep(time.Second)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", srv.pid())); err == nil {
		_ = os.WriteFile(filepath.Join(os.TempDir(), "soak-"+strings.ReplaceAll(what, " ", "")+"-smaps-freed.txt"), b, 0o644)
	}
	sm := s.sample(srv)
	goRes := sm.heapInuse + sm.retained + sm.stacks + sm.meta
	log.Printf("soak: %s, after debug.FreeOSMemory: RSS %.1f MiB (anonymous %.1f, file %.1f); Go heap in use %.1f (allocated %.1f), idle kept %.1f, stacks %.1f, runtime metadata %.1f; anonymous beyond the Go runtime's %.1f MiB",
		what, mib(sm.rss), mib(sm.anon), mib(sm.file), mib(sm.heapInuse), mib(sm.heapAlloc), mib(sm.retained), mib(sm.stacks), mib(sm.meta), mib(sm.anon-goRes))
}

// saveServerProfiles saves, when BENCH_SERVER_PPROF names the address the
// server serves Go's profiles on (cmd/mcpauth/debugpprof.go), its heap
// and goroutine profiles and its /proc smaps to
// $TMPDIR/soak-<what>-{heap.pb.gz,goroutine.txt,smaps.txt}, for memory
// investigations; the report does not use them.
func saveServerProfiles(srv *proc, what string) {
	addr := os.Getenv("BENCH_SERVER_PPROF")
	if addr == "" {
		return
	}
	base := filepath.Join(os.TempDir(), "soak-"+what+"-")
	get := func(path, file string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			log.Printf("soak: profile %s: %v", path, err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		_ = os.WriteFile(base+file, b, 0o644)
	}
	get("/debug/pprof/heap?gc=1", "heap.pb.gz")
	get("/debug/pprof/goroutine?debug=1", "goroutine.txt")
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", srv.pid())); err == nil {
		_ = os.WriteFile(base+"smaps.txt", b, 0o644)
	}
	log.Printf("soak: server profiles saved to %s*", base)
}
