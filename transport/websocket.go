package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/throttle"
	"github.com/mcpauth/mcpauth/internal/quota"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

const (
	// wsSubprotocol is what the MCP TypeScript SDK's
	// WebSocketClientTransport asks for.
	wsSubprotocol = "mcp"
	// wsInFlight bounds the messages of one connection handled at once;
	// further frames wait unread (TCP flow control holds the client).
	wsInFlight = 8
	// maxPendingWS bounds, server-wide, the connections upgraded without
	// a token that have not yet sent a valid one; maxPendingWSPerAddress
	// bounds those of one address (wsWaiting).
	maxPendingWS           = 256
	maxPendingWSPerAddress = 16
	// defaultWSAuthTimeout is how long such a connection may wait.
	defaultWSAuthTimeout = 10 * time.Second
	// codeUnauthorized is the JSON-RPC error of a missing, invalid or
	// foreign token (an implementation-defined server error).
	codeUnauthorized = -32001
)

// Why a connection ends; each is a close frame's reason.
var (
	errWSNoToken      = errors.New("no valid token: send Authorization: Bearer on the upgrade or params.auth.token in the first request")
	errWSAuthTimeout  = errors.New("no valid token received in time")
	errWSThrottled    = errors.New("too many failed attempts from this address")
	errWSTooMany      = errors.New("this client has too many open connections; close one first")
	errWSStalled      = errors.New("the client stopped reading")
	errWSShutdown     = errors.New("server shutting down")
	errWSClientGone   = errors.New("client closed the connection")
	errWSBinaryFrames = errors.New("send JSON-RPC messages as text frames")
)

// wsCloseFor is the close code and reason for why a connection ended.
func wsCloseFor(cause error) (websocket.StatusCode, string) {
	switch {
	case errors.Is(cause, auth.ErrTokenExpired):
		return websocket.StatusPolicyViolation, "token expired"
	case errors.Is(cause, auth.ErrTokenRevoked):
		return websocket.StatusPolicyViolation, "token revoked"
	case errors.Is(cause, errWSShutdown):
		return websocket.StatusGoingAway, cause.Error()
	case errors.Is(cause, errWSBinaryFrames):
		return websocket.StatusUnsupportedData, cause.Error()
	case errors.Is(cause, errWSClientGone):
		return websocket.StatusNormalClosure, ""
	default:
		msg := cause.Error()
		if len(msg) > 120 { // a close reason is at most 123 bytes
			msg = msg[:120]
		}
		return websocket.StatusPolicyViolation, msg
	}
}

// wsAuth sends the upgrade through the Bearer middleware when it carries
// an Authorization header (or auth is off, or no token verifier is
// configured); an upgrade without one is let through unauthenticated, and
// its connection must present params.auth.token in its first message.
func (h *HTTP) wsAuth(next http.Handler) http.Handler {
	withAuth := h.cfg.Auth(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.cfg.AuthEnabled || h.cfg.VerifyToken == nil || len(r.Header.Values("Authorization")) > 0 {
			withAuth.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithRemoteAddr(r.Context(), bearer.ClientAddress(r))))
	})
}

// serveWS is GET /ws: MCP over WebSocket, one JSON-RPC message per text
// frame, each connection one mcp-go client session.
func (h *HTTP) serveWS(w http.ResponseWriter, r *http.Request) {
	claims, _ := auth.ClaimsFrom(r.Context())
	var release, unpend func()
	if claims != nil {
		var ok bool
		if release, ok = h.streams.acquire(r); !ok {
			h.cfg.Metrics.Refused(limitStreamsPerClient)
			writeError(w, http.StatusTooManyRequests, "too_many_streams", "This client has too many open connections; close one first")
			return
		}
	} else {
		if secs, blocked := (bearer.Guard{Throttle: h.throttle}).Blocked(w, bearer.ClientAddress(r)); blocked {
			bearer.WriteTooManyRequests(w, secs)
			return
		}
		var outcome int
		unpend, outcome = h.wsPending.take(throttle.Key(bearer.ClientAddress(r)))
		switch outcome {
		case wsFromAddressFull:
			writeError(w, http.StatusTooManyRequests, "too_many_pending",
				"Too many connections from this address are waiting to authenticate; authenticate or close one first")
			return
		case wsAllFull:
			writeError(w, http.StatusServiceUnavailable, "too_many_pending", "Too many connections are waiting to authenticate; retry later")
			return
		}
	}
	// net/http clears this request's read deadline (ReadTimeout) when
	// Accept hijacks the connection, so it lives until its token ends
	// (TestWebSocketRefusals runs with a short ReadTimeout); writes get
	// their own deadline per message below.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{wsSubprotocol},
		// The Origin has already been decided by mcpauth's originGuard,
		// which wraps every route (allowed origins, the loopback self
		// origin, no Origin for non-browser clients) and answered 403
		// to any other. coder/websocket's own check (Origin host equal
		// to Host) would refuse origins the operator allowed, so it is
		// skipped here, and only here, after that decision.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		if release != nil {
			release()
		}
		if unpend != nil {
			unpend()
		}
		return // Accept has answered
	}
	conn.SetReadLimit(maxBodyBytes)
	c := &wsConn{h: h, conn: conn, release: release, unpend: unpend}
	c.serve(context.WithoutCancel(r.Context()), claims)
}

// wsConn is one open WebSocket connection.
type wsConn struct {
	h    *HTTP
	conn *websocket.Conn
	sess *sseSession // the session state mcp-go sees (as for SSE)
	// answers carries the handlers' responses to the writer
	// (notifications), which writes the notifications queued before each
	// one first: the connection is ordered as the server sent.
	answers chan []byte
	life    context.Context
	end     context.CancelCauseFunc
	wg      sync.WaitGroup
	release func() // the client's connection slot; nil until bound
	stall   atomic.Bool

	// Read loop only (binding happens there).
	unpend    func()       // gives back its place in h.wsPending; nil once bound
	bound     *auth.Claims // the token the connection was bound with
	unbind    func()       // forgets the stream (revocation) and expiry timer
	authTimer *time.Timer  // ends an unbound connection; stopped by bind
}

func (c *wsConn) serve(base context.Context, claims *auth.Claims) {
	h := c.h
	var b [16]byte
	_, _ = rand.Read(b[:])
	c.sess = &sseSession{
		id:    "ws-" + hex.EncodeToString(b[:]),
		notes: make(chan mcp.JSONRPCNotification, sseQueue),
		done:  make(chan struct{}),
	}
	c.sess.emit = c.write
	c.answers = make(chan []byte, wsInFlight)
	c.life, c.end = context.WithCancelCause(base)
	stopShutdown := context.AfterFunc(h.wsBase, func() { c.end(errWSShutdown) })
	defer stopShutdown()

	// Ends the connection, with a close frame naming why, when its life
	// ends (token expired or revoked, no token in time, shutdown).
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		<-c.life.Done()
		code, reason := wsCloseFor(context.Cause(c.life))
		_ = c.conn.Close(code, reason)
	}()
	registered := false
	defer func() {
		c.end(errWSClientGone)
		<-closed
		c.wg.Wait() // no handler uses the session any more
		if registered {
			h.cfg.MCP.UnregisterSession(context.WithoutCancel(c.life), c.sess.id)
		}
		c.sess.end()
		if c.unbind != nil {
			c.unbind()
		}
		if c.release != nil {
			c.release()
		}
		if c.unpend != nil {
			c.unpend()
		}
	}()

	if err := h.cfg.MCP.RegisterSession(c.life, c.sess); err != nil {
		c.end(errors.New("cannot register the session"))
		return
	}
	registered = true

	if claims != nil {
		c.bind(claims)
	} else {
		c.authTimer = time.AfterFunc(h.wsAuthTimeout(), func() { c.end(errWSAuthTimeout) })
		defer c.authTimer.Stop()
	}

	c.wg.Add(2)
	go c.notifications()
	go c.keepAlive()

	sem := make(chan struct{}, wsInFlight)
	for {
		typ, data, err := c.conn.Read(context.Background()) // ended by Close
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.end(errWSBinaryFrames)
			return
		}
		msg, eff, refusal, fatal := c.admit(data)
		if refusal != nil {
			_ = c.write(refusal)
		}
		if fatal != nil {
			c.end(fatal)
			return
		}
		if msg == nil || c.sess.reply(msg) {
			continue // nothing to run, or the client's answer to the server's request
		}
		select {
		case sem <- struct{}{}:
		case <-c.life.Done():
			return
		}
		c.wg.Add(1)
		go func() {
			defer func() { <-sem; c.wg.Done() }()
			c.handle(eff, msg)
		}()
	}
}

// bind ties the connection to claims' token: it ends when that token
// expires or is revoked (the reaper ends it as it ends streams). False
// when the client is at its connection limit.
func (c *wsConn) bind(claims *auth.Claims) bool {
	h := c.h
	if c.release == nil {
		rel, ok := h.streams.acquireSubject(claims.Subject)
		if !ok {
			h.cfg.Metrics.Refused(limitStreamsPerClient)
			return false
		}
		c.release = rel
	}
	if c.authTimer != nil {
		c.authTimer.Stop() // had it fired, the connection is ending anyway
	}
	if c.unpend != nil {
		c.unpend()
		c.unpend = nil
	}
	c.bound = claims
	remove, _ := h.sessions.addStream("", claims.ID, func() { c.end(auth.ErrTokenRevoked) })
	stop := func() bool { return false }
	if exp, ok := claims.Expires(); ok {
		t := time.AfterFunc(time.Until(exp), func() { c.end(auth.ErrTokenExpired) })
		stop = t.Stop
	}
	c.unbind = func() { remove(); stop() }
	return true
}

// admit checks one frame: the message to hand to mcp-go (params.auth
// removed) and the claims it acts with, or a JSON-RPC error to answer
// with, and an error when the connection must end.
func (c *wsConn) admit(data []byte) (msg []byte, eff *auth.Claims, refusal []byte, fatal error) {
	h := c.h
	trimmed := bytes.TrimSpace(data)
	if !json.Valid(trimmed) {
		if c.bound == nil {
			return nil, nil, rpcFrame(json.RawMessage("null"), mcp.PARSE_ERROR, "Parse error", nil), errWSNoToken
		}
		return trimmed, c.bound, nil, nil // mcp-go answers -32700
	}
	id := unambiguousID(trimmed)
	rm, err := checkJSONRPC(trimmed)
	if err == nil {
		var tok string
		var found bool
		tok, found, msg, err = takeAuth(trimmed)
		if err == nil && !found {
			msg = trimmed
		}
		if err == nil {
			eff, refusal, fatal = c.authenticate(id, tok, found)
			if refusal != nil || fatal != nil {
				return nil, nil, refusal, fatal
			}
			if rm.method == "tools/call" && h.cfg.ToolScope != nil {
				if need := h.cfg.ToolScope(rm.tool); need != "" && !hasAll(eff.Scope, need) {
					auth.Audit(c.life, h.log, auth.EventForbidden, "client_id", subjectOf(eff), "jti", jtiOf(eff),
						"required_scope", need, "via", "websocket", "tool", untrusted.Clip(rm.tool, 64))
					return nil, nil, rpcFrame(id, codeForbidden,
						fmt.Sprintf("insufficient_scope: %s requires the scope %q", untrusted.Clip(rm.tool, 64), need),
						map[string]string{"error": "insufficient_scope", "scope": need}), nil
				}
			}
			return msg, eff, nil, nil
		}
	}
	refusal = rpcFrame(id, mcp.INVALID_REQUEST, "Invalid Request: "+err.Error(), nil)
	if c.bound == nil {
		return nil, nil, refusal, errWSNoToken
	}
	return nil, nil, refusal, nil
}

// authenticate decides who a message acts as: its own params.auth.token
// when it has one (which must be valid and, once the connection is bound,
// name the same issuer and subject), else the connection's token.
func (c *wsConn) authenticate(id json.RawMessage, tok string, found bool) (eff *auth.Claims, refusal []byte, fatal error) {
	h := c.h
	if !found || h.cfg.VerifyToken == nil || !h.cfg.AuthEnabled {
		// Without a verifier (auth off) a params token means nothing: it
		// is removed and the connection's identity applies.
		if c.bound == nil {
			return nil, rpcFrame(id, codeUnauthorized, "Unauthorized: "+errWSNoToken.Error(), nil), errWSNoToken
		}
		return c.bound, nil, nil
	}
	claims, err := h.cfg.VerifyToken(c.life, tok)
	if err != nil {
		// As the Bearer middleware: a failure from an address over its
		// failure budget ends the connection; others are counted.
		src := auth.RemoteAddrFrom(c.life) // wsAuth recorded the client address
		if !auth.Unavailable(err) {
			if secs, blocked := (bearer.Guard{Throttle: h.throttle}).Failed(nil, src); blocked {
				return nil, rpcFrame(id, codeUnauthorized, "Too many failed attempts from this address; retry after "+secs+"s", nil), errWSThrottled
			}
		}
		refusal = rpcFrame(id, codeUnauthorized, "Unauthorized: "+auth.Message(err), nil)
		if c.bound == nil {
			return nil, refusal, errors.New("invalid token")
		}
		return nil, refusal, nil
	}
	if c.bound == nil {
		if !c.bind(claims) {
			return nil, rpcFrame(id, codeUnauthorized, errWSTooMany.Error(), nil), errWSTooMany
		}
		return claims, nil, nil
	}
	if claims.Issuer != c.bound.Issuer || claims.Subject != c.bound.Subject {
		h.log.Warn("WebSocket connection used with another subject's token", "client_id", subjectOf(c.bound), "other_client_id", untrusted.Clip(claims.Subject, 64))
		return nil, rpcFrame(id, codeUnauthorized, "Forbidden: this connection belongs to another client", nil), nil
	}
	return claims, nil, nil
}

// handle runs one admitted message through mcp-go and writes its answer.
func (c *wsConn) handle(claims *auth.Claims, msg []byte) {
	defer func() {
		if p := recover(); p != nil {
			c.h.log.Error("panic while handling a WebSocket message", "session", c.sess.id, "panic", fmt.Sprint(p))
			c.answer(rpcFrame(unambiguousID(msg), mcp.INTERNAL_ERROR, "internal error", nil))
		}
	}()
	ctx := c.h.cfg.MCP.WithContext(auth.WithClaims(c.life, claims), c.sess)
	resp := c.h.cfg.MCP.HandleMessage(ctx, msg)
	if resp == nil {
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		c.h.log.Error("cannot encode a response", "session", c.sess.id, "err", err)
		b = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	c.answer(b)
}

// answer hands a response to the writer (dropped once the connection is
// ending).
func (c *wsConn) answer(b []byte) {
	select {
	case c.answers <- b:
	case <-c.life.Done():
	}
}

// notifications writes mcp-go's notifications for this session and the
// handlers' answers, in the order the server sent them.
func (c *wsConn) notifications() {
	defer c.wg.Done()
	for {
		select {
		case <-c.life.Done():
			return
		case b := <-c.answers:
			// Notifications queued before this answer (progress, log
			// messages of the call it answers) go first.
			for queued := true; queued; {
				select {
				case n := <-c.sess.notes:
					if c.writeNote(n) != nil {
						return
					}
				default:
					queued = false
				}
			}
			if c.write(b) != nil {
				return
			}
		case n := <-c.sess.notes:
			if c.writeNote(n) != nil {
				return
			}
		}
	}
}

// writeNote writes one notification; an error when the connection
// failed (one that cannot be encoded is skipped).
func (c *wsConn) writeNote(n mcp.JSONRPCNotification) error {
	b, err := json.Marshal(n)
	if err != nil {
		return nil
	}
	return c.write(b)
}

// keepAlive pings every KeepAlive; a client that does not answer within
// the write timeout is dropped.
func (c *wsConn) keepAlive() {
	defer c.wg.Done()
	t := time.NewTicker(c.h.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case <-t.C:
			// Not bounded by c.life: a ping write cut short by it would
			// drop the connection before its close frame is sent.
			ctx, cancel := context.WithTimeout(context.Background(), c.h.sse.timeout())
			err := c.conn.Ping(ctx)
			timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
			cancel()
			if timedOut {
				c.stalled()
				return
			}
			if err != nil {
				return
			}
		}
	}
}

// write sends one message, waiting at most the write timeout (for the
// socket and for other writers): a client that stops reading is cut off,
// never buffered for.
func (c *wsConn) write(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.h.sse.timeout())
	defer cancel()
	err := c.conn.Write(ctx, websocket.MessageText, b)
	// Only a write that waited the whole timeout is a stuck reader (the
	// write's own deadline closes the socket, so the connection may
	// already be ending for that very reason).
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		c.stalled()
	}
	return err
}

// stalled drops the connection of a client that stopped reading,
// counting and logging it once.
func (c *wsConn) stalled() {
	if !c.stall.CompareAndSwap(false, true) {
		return
	}
	c.h.cfg.Metrics.Refused(limitStalledStream)
	c.h.log.Warn("dropped a WebSocket connection whose client stopped reading", "session", c.sess.id, "timeout", c.h.sse.timeout().String())
	c.end(errWSStalled)
}

func (h *HTTP) wsAuthTimeout() time.Duration {
	if h.cfg.WSAuthTimeout > 0 {
		return h.cfg.WSAuthTimeout
	}
	return defaultWSAuthTimeout
}

// rpcFrame is a JSON-RPC error message for one frame.
func rpcFrame(id json.RawMessage, code int, message string, data any) []byte {
	return bytes.TrimSuffix(rpcError(id, code, message, data), []byte("\n"))
}

// takeAuth removes params.auth from a message that passed checkJSONRPC,
// returning params.auth.token. A case variant of "auth" or "token", or an
// auth member that is not {"token": "<string>"}, is an error: it must not
// reach mcp-go (case-insensitive) or be silently ignored.
func takeAuth(msg []byte) (token string, found bool, out []byte, err error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(msg, &top) != nil {
		return "", false, nil, errors.New("invalid JSON-RPC message: not a JSON object")
	}
	p := bytes.TrimSpace(top["params"])
	if len(p) == 0 || p[0] != '{' {
		return "", false, msg, nil
	}
	keys, err := memberNames(p, "params", "member")
	if err != nil {
		return "", false, nil, err
	}
	if err := canonical(keys, []string{"auth"}); err != nil {
		return "", false, nil, err
	}
	var params map[string]json.RawMessage
	_ = json.Unmarshal(p, &params)
	a, ok := params["auth"]
	if !ok {
		return "", false, msg, nil
	}
	a = bytes.TrimSpace(a)
	if len(a) == 0 || a[0] != '{' {
		return "", false, nil, errors.New(`params.auth must be an object {"token": "<jwt>"}`)
	}
	akeys, err := memberNames(a, "params.auth", "member")
	if err != nil {
		return "", false, nil, err
	}
	if err := canonical(akeys, []string{"token"}); err != nil {
		return "", false, nil, err
	}
	var body struct {
		Token json.RawMessage `json:"token"`
	}
	_ = json.Unmarshal(a, &body)
	if json.Unmarshal(body.Token, &token) != nil || strings.TrimSpace(token) == "" {
		return "", false, nil, errors.New(`params.auth.token must be a non-empty string`)
	}
	delete(params, "auth")
	top["params"], _ = json.Marshal(params)
	out, err = json.Marshal(top)
	return token, true, out, err
}

// wsWaiting counts the connections upgraded without a token that have
// not yet sent a valid one: at most maxPendingWS in all, and at most
// maxPendingWSPerAddress from one address (throttle.Key: an IPv6 /64 is
// one), so that one address reconnecting in a loop cannot keep every
// other client's in-band sign-in out.
type wsWaiting struct {
	from  *quota.PerKey // by address
	total atomic.Int64
}

func newWSWaiting() *wsWaiting { return &wsWaiting{from: quota.New(maxPendingWSPerAddress)} }

// Outcomes of wsWaiting.take.
const (
	wsTaken = iota
	wsFromAddressFull
	wsAllFull
)

// take counts one more waiting connection from addr, unless a limit is
// reached (then nothing is counted); release uncounts it (authenticated or
// gone).
func (w *wsWaiting) take(addr string) (release func(), outcome int) {
	rel, ok := w.from.Take(addr)
	if !ok {
		return nil, wsFromAddressFull
	}
	if w.total.Add(1) > maxPendingWS {
		w.total.Add(-1)
		rel()
		return nil, wsAllFull
	}
	return sync.OnceFunc(func() {
		rel()
		w.total.Add(-1)
	}), wsTaken
}
