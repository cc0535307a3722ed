package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// sseQueue is how many framed events (responses, notifications) may wait
// for a session's stream. A response waits for room rather than being
// dropped; a notification finding the queue full is dropped by mcp-go.
const sseQueue = 16

// sseServer serves the legacy HTTP+SSE transport (protocol 2024-11-05):
// GET /sse opens a stream whose first event names the message endpoint, and
// POST /message?sessionId=… delivers a JSON-RPC message whose answer is
// written to that stream.
//
// It replaces mcp-go's SSEServer, whose sessions each hold two extra
// goroutines (a notification forwarder and a keep-alive ticker) and two
// 100-slot channels: about 14 KiB per idle stream, a third of a session's
// memory (docs/benchmarks.md). Here the stream's own handler goroutine does
// all the writing, the queues are small, and keep-alives are SSE comments
// (": ping"), which clients ignore, instead of JSON-RPC pings every client
// must answer with a POST.
type sseServer struct {
	mcp       *server.MCPServer
	keepAlive time.Duration
	newID     func(ctx context.Context, r *http.Request) (string, error)
	log       *slog.Logger
	// writeTimeout bounds each write to a stream and a POST's wait for
	// room in its queue (defaultSSEWriteTimeout when zero); metrics
	// counts the streams dropped for it (may be nil).
	writeTimeout time.Duration
	metrics      *Metrics
	// messagePath is where the endpoint event sends messages ("/message"
	// under the base path).
	messagePath string

	mu       sync.RWMutex
	sessions map[string]*sseSession
	// closed is set by closeAll: a stream opened later (a request that
	// got past the drain check just before shutdown) is refused, not
	// left running on a connection the http.Server no longer tracks.
	closed bool
}

func newSSEServer(s *server.MCPServer, keepAlive time.Duration, newID func(context.Context, *http.Request) (string, error), log *slog.Logger) *sseServer {
	return &sseServer{mcp: s, keepAlive: keepAlive, newID: newID, log: log, sessions: map[string]*sseSession{}, messagePath: "/message"}
}

// defaultSSEWriteTimeout is sseServer.writeTimeout's default.
const defaultSSEWriteTimeout = 15 * time.Second

func (s *sseServer) timeout() time.Duration {
	if s.writeTimeout > 0 {
		return s.writeTimeout
	}
	return defaultSSEWriteTimeout
}

// sseSession is one open stream, as mcp-go sees a client session.
type sseSession struct {
	id    string
	out   chan []byte                  // framed events for the stream
	notes chan mcp.JSONRPCNotification // mcp-go's notifications
	done  chan struct{}                // closed when the stream ends
	once  sync.Once                    // closes done
	// stop ends the stream's handler (and unblocks a write in progress);
	// nil in tests that build a session by hand.
	stop    context.CancelFunc
	stalled atomic.Bool // dropped because its reader was stuck
	ready   atomic.Bool // initialized by mcp-go
	level   atomic.Pointer[mcp.LoggingLevel]
	info    atomic.Pointer[mcp.Implementation]
	caps    atomic.Pointer[mcp.ClientCapabilities]
	proto   atomic.Pointer[string]
	// emit sends a JSON-RPC request to the client (on the stream, or the
	// WebSocket connection); asks matches the client's answers to them.
	// A nil emit: the session cannot ask its client anything.
	emit func([]byte) error
	asks clientRequests
}

var (
	_ server.SessionWithLogging    = (*sseSession)(nil)
	_ server.SessionWithClientInfo = (*sseSession)(nil)
)

func (s *sseSession) SessionID() string { return s.id }
func (s *sseSession) NotificationChannel() chan<- mcp.JSONRPCNotification {
	return s.notes
}
func (s *sseSession) Initialize()       { s.ready.Store(true) }
func (s *sseSession) Initialized() bool { return s.ready.Load() }
func (s *sseSession) SetLogLevel(l mcp.LoggingLevel) {
	s.level.Store(&l)
}

// GetLogLevel is the level set by logging/setLevel; error until then.
func (s *sseSession) GetLogLevel() mcp.LoggingLevel {
	if l := s.level.Load(); l != nil {
		return *l
	}
	return mcp.LoggingLevelError
}

func (s *sseSession) GetClientInfo() mcp.Implementation {
	if i := s.info.Load(); i != nil {
		return *i
	}
	return mcp.Implementation{}
}
func (s *sseSession) SetClientInfo(i mcp.Implementation) { s.info.Store(&i) }
func (s *sseSession) GetClientCapabilities() mcp.ClientCapabilities {
	if c := s.caps.Load(); c != nil {
		return *c
	}
	return mcp.ClientCapabilities{}
}
func (s *sseSession) SetClientCapabilities(c mcp.ClientCapabilities) { s.caps.Store(&c) }

// ProtocolVersion is the version negotiated by initialize ("" before).
func (s *sseSession) ProtocolVersion() string {
	if v := s.proto.Load(); v != nil {
		return *v
	}
	return ""
}
func (s *sseSession) SetProtocolVersion(v string) { s.proto.Store(&v) }

func (s *sseSession) end() {
	s.once.Do(func() { close(s.done) })
	if s.stop != nil {
		s.stop()
	}
}

var (
	errStreamEnded   = errors.New("the stream has ended")
	errStreamStalled = errors.New("the stream's reader is stuck")
)

// send queues a framed event, waiting up to wait for room: errStreamEnded
// once the stream has ended, errStreamStalled when there was no room in
// time (the caller then drops the stream).
func (s *sseSession) send(ev []byte, wait time.Duration) error {
	select {
	case s.out <- ev:
		return nil
	case <-s.done:
		return errStreamEnded
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.out <- ev:
		return nil
	case <-s.done:
		return errStreamEnded
	case <-t.C:
		return errStreamStalled
	}
}

// drop ends a stream whose reader is stuck, counting it once.
func (s *sseServer) drop(sess *sseSession) {
	if sess.stalled.CompareAndSwap(false, true) {
		s.metrics.Refused(limitStalledStream)
		s.log.Warn("dropped an SSE stream whose client stopped reading", "session", sess.id, "timeout", s.timeout().String())
	}
	sess.end()
}

func frame(data []byte) []byte {
	ev := make([]byte, 0, len(data)+23)
	ev = append(ev, "event: message\ndata: "...)
	ev = append(ev, data...)
	return append(ev, "\n\n"...)
}

// serveStream is GET /sse. It runs until the client goes away, the
// request context ends (token expiry, revocation, shutdown), the session
// is closed or a write to a client that stopped reading times out.
//
// On an HTTP/1.x connection whose request can be handed off (openSSE),
// the stream takes the connection over and the handler returns: net/http's
// connection goroutine, its buffers and the parsed request are let go, and
// the stream runs in a goroutine of its own (streamConn), which writes
// straight to the connection. Anywhere else (HTTP/2, a test's recorder)
// the handler serves the stream itself.
func (s *sseServer) serveStream(w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(http.Flusher); !ok {
		writeError(w, http.StatusInternalServerError, "server_error", "Streaming is not supported by this connection")
		return
	}
	id, err := s.newID(r.Context(), r)
	if err != nil || id == "" {
		writeError(w, http.StatusInternalServerError, "server_error", "Cannot open a session")
		return
	}
	ctx, stop := context.WithCancel(r.Context())
	sess := &sseSession{
		id:    id,
		out:   make(chan []byte, sseQueue),
		notes: make(chan mcp.JSONRPCNotification, sseQueue),
		done:  make(chan struct{}),
		stop:  stop,
	}
	sess.emit = func(b []byte) error { return s.deliver(sess, frame(b)) }
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.sessions[id] = sess
	}
	s.mu.Unlock()
	if closed {
		stop()
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "The server is shutting down; retry on another replica or in a moment")
		return
	}
	forget := func() {
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
		sess.end()
		stop()
	}
	if err := s.mcp.RegisterSession(r.Context(), sess); err != nil {
		forget()
		writeError(w, http.StatusInternalServerError, "server_error", "Cannot register the session")
		return
	}
	unregister := func() {
		s.mcp.UnregisterSession(context.WithoutCancel(ctx), id)
		forget()
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	// The connection ends with the stream: its last write deadline must
	// not apply to a later request on it.
	h.Set("Connection", "close")
	h.Set("X-Accel-Buffering", "no") // let nginx pass events through at once
	endpoint := []byte(fmt.Sprintf("event: endpoint\ndata: %s?sessionId=%s\r\n\r\n", s.messagePath, id))

	if conn, hf := s.takeOver(w, r); conn != nil {
		chunked := r.ProtoAtLeast(1, 1)
		go s.streamConn(ctx, sess, conn, responseHead(h, chunked), chunked, endpoint, hf, unregister)
		return
	}

	defer unregister()
	wr := newDeadlineWriter(ctx, responseSink(w), s.timeout())
	defer wr.finish()
	w.WriteHeader(http.StatusOK)
	if err := wr.write(endpoint); err != nil {
		return
	}
	s.run(ctx, sess, wr)
}

// run writes the stream's events until it ends.
func (s *sseServer) run(ctx context.Context, sess *sseSession, wr *deadlineWriter) {
	keep := time.NewTicker(s.keepAlive)
	defer keep.Stop()
	for {
		var ev []byte
		select {
		case ev = <-sess.out:
			// Notifications queued before this answer (progress, log
			// messages of the call it answers) go first: the stream is
			// ordered as the server sent.
			if err := s.writeQueuedNotes(sess, wr); err != nil {
				if errors.Is(err, errStreamStalled) {
					s.drop(sess)
				}
				return
			}
		case n := <-sess.notes:
			b, err := json.Marshal(n)
			if err != nil {
				s.log.Warn("cannot encode a notification", "method", n.Method, "err", err)
				continue
			}
			ev = frame(b)
		case <-keep.C:
			ev = []byte(": ping\n\n")
		case <-ctx.Done():
			return
		case <-sess.done:
			return
		}
		if err := wr.write(ev); err != nil {
			if errors.Is(err, errStreamStalled) {
				s.drop(sess)
			}
			return
		}
	}
}

// takeOver hijacks the connection of a GET /sse over HTTP/1.x whose
// request can be handed off: the connection and the handoff, or nil when
// the handler must serve the stream itself (nothing is then changed).
// Bytes the client sent after its request (it has no body; a pipelined
// request would never be answered, as the response closes the connection)
// are ignored.
func (s *sseServer) takeOver(w http.ResponseWriter, r *http.Request) (net.Conn, *handoff) {
	hf := handoffFrom(r.Context())
	if hf == nil || r.Method != http.MethodGet || r.ProtoMajor != 1 {
		return nil, nil
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			s.log.Debug("cannot take an SSE connection over; serving the stream in its handler", "err", err)
		}
		return nil, nil
	}
	// Whether or not the request's context has ended already (the stream
	// then ends at once), the stream and its cleanup are the new
	// goroutine's from now on.
	hf.take()
	return conn, hf
}

// responseHead is the head net/http would write for the stream: status,
// the handler's headers (sorted, as net/http writes them), Date, and,
// answering HTTP/1.1, the chunked body's Transfer-Encoding. An HTTP/1.0
// request (what nginx sends by default) gets an HTTP/1.0 status line and a
// body that ends when the connection closes, as net/http answers it.
func responseHead(h http.Header, chunked bool) []byte {
	var b bytes.Buffer
	if chunked {
		b.WriteString("HTTP/1.1 200 OK\r\n")
	} else {
		b.WriteString("HTTP/1.0 200 OK\r\n")
	}
	_ = h.Write(&b) // a bytes.Buffer takes every write
	b.WriteString("Date: ")
	b.WriteString(time.Now().UTC().Format(http.TimeFormat))
	if chunked {
		b.WriteString("\r\nTransfer-Encoding: chunked")
	}
	b.WriteString("\r\n\r\n")
	return b.Bytes()
}

// lingerTimeout bounds how long a taken-over connection waits, after its
// stream's last byte, for the client to close its side (net/http's
// rstAvoidanceDelay), so the client reads the end of the stream rather
// than a reset.
const lingerTimeout = 500 * time.Millisecond

// streamConn serves a stream on a taken-over connection (see
// serveStream): it writes the head and the endpoint event, then the
// events, each write bounded as in the handler; a goroutine reading the
// connection ends the stream when the client goes away. When the stream
// ends, the session is unregistered and the request's cleanup run
// (hf.end) before the chunked body is ended, as when a handler returns
// before net/http ends its response; the in-flight count a shutdown waits
// on drops (hf.close) once the end is written. The connection is closed
// when the client has closed its side too, or after lingerTimeout.
func (s *sseServer) streamConn(ctx context.Context, sess *sseSession, conn net.Conn, head []byte, chunked bool, endpoint []byte, hf *handoff, unregister func()) {
	var open atomic.Int32 // the two goroutines using conn; the last closes it
	open.Store(2)
	release := func() {
		if open.Add(-1) == 0 {
			_ = conn.Close()
		}
	}
	go func() {
		defer release()
		// A client has nothing to send on a stream's connection: what
		// it sends is discarded, and the end of reading (EOF, a reset,
		// the linger deadline) ends the stream.
		var buf [64]byte
		for {
			if _, err := conn.Read(buf[:]); err != nil {
				sess.end()
				return
			}
		}
	}()
	body := &chunkedConn{conn: conn, head: head, chunked: chunked}
	wr := newDeadlineWriter(ctx, body, s.timeout())
	if err := wr.write(endpoint); err == nil {
		s.run(ctx, sess, wr)
	}
	unregister()
	hf.end()
	wr.finish()
	// The end of the chunked body (an HTTP/1.0 body ends with the
	// connection), after the head if the stream ended before its first
	// write (an empty stream, as net/http would answer).
	last := body.head[:len(body.head):len(body.head)]
	if chunked {
		last = append(last, "0\r\n\r\n"...)
	}
	if _, err := conn.Write(last); err == nil {
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	hf.close()
	_ = conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	release()
}

// chunkedConn writes a stream's body to a taken-over connection in
// chunked encoding (answering HTTP/1.1; as it is for HTTP/1.0, whose body
// ends with the connection), the first write preceded by the response
// head.
type chunkedConn struct {
	conn    net.Conn
	head    []byte // written with the first chunk
	chunked bool
}

// Write writes b as one chunk (and the head first, once).
func (c *chunkedConn) Write(b []byte) (int, error) {
	if len(b) == 0 { // a zero-length chunk would end the body
		return 0, nil
	}
	buf := make([]byte, 0, len(c.head)+len(b)+12)
	buf = append(buf, c.head...)
	if c.chunked {
		buf = strconv.AppendInt(buf, int64(len(b)), 16)
		buf = append(buf, "\r\n"...)
	}
	buf = append(buf, b...)
	if c.chunked {
		buf = append(buf, "\r\n"...)
	}
	if _, err := c.conn.Write(buf); err != nil {
		return 0, fmt.Errorf("write to the SSE connection: %w", err)
	}
	c.head = nil
	return len(b), nil
}

// Flush does nothing: every Write goes straight to the connection.
func (c *chunkedConn) Flush() error { return nil }

// SetWriteDeadline bounds the connection's writes.
func (c *chunkedConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// writeQueuedNotes writes the notifications waiting in sess.notes.
func (s *sseServer) writeQueuedNotes(sess *sseSession, wr *deadlineWriter) error {
	for {
		select {
		case n := <-sess.notes:
			b, err := json.Marshal(n)
			if err != nil {
				s.log.Warn("cannot encode a notification", "method", n.Method, "err", err)
				continue
			}
			if err := wr.write(frame(b)); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// eventSink is where a deadlineWriter writes: a ResponseWriter
// (responseSink) or a taken-over connection (chunkedConn).
type eventSink interface {
	Write(b []byte) (int, error)
	Flush() error
	SetWriteDeadline(t time.Time) error
}

// rcSink is a ResponseWriter as an eventSink, through its
// ResponseController.
type rcSink struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func responseSink(w http.ResponseWriter) rcSink {
	return rcSink{ResponseWriter: w, rc: http.NewResponseController(w)}
}

func (s rcSink) Flush() error                       { return s.rc.Flush() }
func (s rcSink) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// deadlineWriter writes and flushes events to a stream, each write
// bounded by a deadline, so a client that stops reading cannot hold the
// stream's goroutine (and everything waiting on it) once its socket
// buffers are full. When ctx ends (revocation, expiry, the session
// closed) a write in progress fails at once.
type deadlineWriter struct {
	out     eventSink
	ctx     context.Context
	timeout time.Duration
	stop    func() bool

	mu       sync.Mutex // orders deadline changes
	finished bool
	wrote    bool // a write has been attempted
}

func newDeadlineWriter(ctx context.Context, out eventSink, timeout time.Duration) *deadlineWriter {
	d := &deadlineWriter{out: out, ctx: ctx, timeout: timeout}
	d.stop = context.AfterFunc(ctx, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.finished {
			_ = d.out.SetWriteDeadline(time.Now()) // cuts a write in progress
		}
	})
	return d
}

// write writes b and flushes it: errStreamStalled when the whole timeout
// passed without the client taking it.
func (d *deadlineWriter) write(b []byte) error {
	start, err := d.start()
	if err != nil {
		return err
	}
	if _, err = d.out.Write(b); err == nil {
		err = d.out.Flush()
	}
	if d.stalled(err, start) {
		return fmt.Errorf("%w: %w", errStreamStalled, err)
	}
	return err
}

// streamWriter is the ResponseWriter mcp-go writes a Streamable HTTP GET
// stream to: every Write and the Flush after it are bounded by the
// deadlineWriter's deadline, and stalled is called (once) when one took
// the whole timeout.
type streamWriter struct {
	http.ResponseWriter
	d        *deadlineWriter
	stalled  func()
	once     sync.Once
	lastFrom time.Time // when the deadline in force was set
}

func (s *streamWriter) Write(b []byte) (int, error) {
	start, err := s.d.start()
	if err != nil {
		return 0, err
	}
	s.lastFrom = start
	n, err := s.ResponseWriter.Write(b)
	s.check(err)
	return n, err
}

// WriteHeader closes the connection after the stream (see finish).
func (s *streamWriter) WriteHeader(code int) {
	s.Header().Set("Connection", "close")
	s.ResponseWriter.WriteHeader(code)
}

// Flush implements http.Flusher (mcp-go streams only to a Flusher).
func (s *streamWriter) Flush() { s.check(s.d.out.Flush()) }

func (s *streamWriter) check(err error) {
	if err != nil && !s.lastFrom.IsZero() && s.d.stalled(err, s.lastFrom) {
		s.once.Do(s.stalled)
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *streamWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// start sets the deadline for the next write (unless the stream has
// ended); it returns when the write began.
func (d *deadlineWriter) start() (time.Time, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil { // never extend the deadline of an ended stream
		return time.Time{}, d.ctx.Err()
	}
	// Not every ResponseWriter supports deadlines (tests' recorders);
	// then writes are unbounded, as before.
	now := time.Now()
	_ = d.out.SetWriteDeadline(now.Add(d.timeout))
	d.wrote = true
	return now, nil
}

// stalled reports whether err is a write that took the whole timeout
// since start. (A failed write cancels the request's context too, so the
// time taken, not the context, tells a stuck reader from a stream cut
// short by revocation or expiry.)
func (d *deadlineWriter) stalled(err error, start time.Time) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && time.Since(start) >= d.timeout
}

// finalFlush bounds what net/http writes after a stream's handler returns
// (what is buffered, the end of the chunked body): a client that stopped
// reading must not hold the connection then either.
const finalFlush = 250 * time.Millisecond

// finish bounds the final flush of a stream that wrote (whose response
// says "Connection: close", so the deadline never reaches another
// request), and clears the deadline otherwise.
func (d *deadlineWriter) finish() {
	d.stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finished = true
	if d.wrote {
		_ = d.out.SetWriteDeadline(time.Now().Add(min(finalFlush, d.timeout)))
	} else {
		_ = d.out.SetWriteDeadline(time.Time{})
	}
}

// handleMessage is POST /message?sessionId=… (the caller has checked that
// the session belongs to the caller). The JSON-RPC answer goes to the
// session's stream, as the transport specifies, and the POST gets 202 once
// it is queued there. Answering in the request's own goroutine (rather than
// a new one per message, as mcp-go does) bounds the work a client can have
// in flight by its connections, and a client that stops reading its stream
// holds up only its own POSTs, each for at most the write timeout, after
// which the stream is dropped.
func (s *sseServer) handleMessage(w http.ResponseWriter, r *http.Request) {
	id := sessionParam(r)
	s.mu.RLock()
	sess := s.sessions[id]
	s.mu.RUnlock()
	if sess == nil {
		writeError(w, http.StatusNotFound, "session_not_found", "Session not found: its stream has ended; open a new one")
		return
	}
	// Behind strictJSONRPC (as mounted) the body is checked valid
	// already; any other way in, it is checked here.
	body, checked := checkedBytes(r)
	if !checked {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil || !json.Valid(body) {
			writeError(w, http.StatusBadRequest, "invalid_request", "The body is not a JSON-RPC message")
			return
		}
	}
	if sess.reply(body) {
		// The client's answer to a request the server sent it on the
		// stream (sampling, elicitation, roots).
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// A tool call runs to completion even if the client hangs up on the
	// POST: its answer belongs to the stream.
	ctx := s.mcp.WithContext(context.WithoutCancel(r.Context()), sess)
	if r.Context().Value(listenKey{}) != nil {
		// A 2026-07-28 subscriptions/listen is answered only when its
		// context ends: it ends with the session's stream (which ends
		// with its token).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-sess.done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	switch err := s.answer(ctx, sess, body); {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
	case errors.Is(err, errStreamStalled) || sess.stalled.Load():
		// Its client stopped reading the stream: the stream is dropped
		// and the answer is lost.
		writeError(w, http.StatusServiceUnavailable, "stream_stalled",
			fmt.Sprintf("This session's event stream is not being read: the answer could not be delivered within %s and the stream was closed; open a new one", s.timeout()))
	default:
		// The stream ended while the message was handled: its answer
		// cannot be delivered, so do not claim it was accepted.
		writeError(w, http.StatusNotFound, "session_not_found", "Session ended before its answer could be sent; open a new one")
	}
}

// answer runs one message through mcp-go and queues its response; an
// error when there was a response that cannot be delivered (the stream
// ended, or its reader is stuck and the stream was dropped).
func (s *sseServer) answer(ctx context.Context, sess *sseSession, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic while handling an SSE message", "session", sess.id, "panic", fmt.Sprint(p))
			var req struct {
				ID any `json:"id"`
			}
			err = nil // a notification gets no answer
			if json.Unmarshal(body, &req) == nil && req.ID != nil {
				b, _ := json.Marshal(mcp.NewJSONRPCError(mcp.NewRequestId(req.ID), mcp.INTERNAL_ERROR, "internal error", nil))
				err = s.deliver(sess, frame(b))
			}
		}
	}()
	resp := s.mcp.HandleMessage(ctx, body)
	if resp == nil {
		return nil // a notification, or a client's response to us
	}
	b, err := json.Marshal(resp)
	if err != nil {
		s.log.Error("cannot encode a response", "session", sess.id, "err", err)
		b = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	return s.deliver(sess, frame(b))
}

// deliver queues an answer; when its stream has had no room for the
// whole timeout, the stream is dropped.
func (s *sseServer) deliver(sess *sseSession, ev []byte) error {
	err := sess.send(ev, s.timeout())
	if errors.Is(err, errStreamStalled) {
		s.drop(sess)
	}
	return err
}

// sessionParam returns the sessionId query parameter without building the
// whole query map, which would cost allocations on every message.
func sessionParam(r *http.Request) string {
	q := r.URL.RawQuery
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if k, v, _ := strings.Cut(kv, "="); k == "sessionId" {
			id, err := url.QueryUnescape(v)
			if err != nil {
				return ""
			}
			return id
		}
	}
	return ""
}

// closeAll ends every open stream, and refuses streams opened after it.
func (s *sseServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, sess := range s.sessions {
		sess.end()
	}
}
