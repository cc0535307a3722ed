package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/delivery"
)

// session is what the transport remembers of an open session: who opened
// it, with which token, and its open streams.
type session struct {
	subject string
	jti     string
	streams map[*stream]struct{}
	// counted: the session holds one of its subject's session slots
	// (opened by initialize).
	counted bool
	// notes counts the notifications written to its streams.
	notes delivery.Counter
}

// stream is one open event stream (SSE GET, Streamable HTTP GET): the
// token it was opened with and how to end it.
type stream struct {
	jti    string
	cancel context.CancelFunc
}

// sessionTable remembers which subject opened each session, so that a
// session id alone (which travels in URLs and headers) never lets another
// client act inside it, and which token opened it, so that revoking that
// token ends the session. It also holds every open event stream, in a
// session or not, so that revoking a stream's own token ends the stream.
type sessionTable struct {
	mu       sync.RWMutex
	sessions map[string]*session
	streams  map[*stream]struct{}
	// maxPerClient bounds the sessions initialize opens per subject
	// (0: unbounded); perClient counts them, with reserved slots.
	maxPerClient int
	perClient    map[string]int
}

func newSessionTable(maxPerClient int) *sessionTable {
	return &sessionTable{sessions: map[string]*session{}, streams: map[*stream]struct{}{},
		maxPerClient: maxPerClient, perClient: map[string]int{}}
}

// slot is one of a subject's session places, reserved by an initialize
// request before mcp-go generates the session id. It passes to the
// session opened with it, or is given back by release.
type slot struct {
	subject string
	done    bool // passed to a session, or released
}

// reserve takes a session slot for subject; ok is false when subject
// already has maxPerClient sessions. A nil slot (no limit) is fine to
// pass on and release.
func (t *sessionTable) reserve(subject string) (sl *slot, ok bool) {
	if t.maxPerClient <= 0 {
		return nil, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perClient[subject] >= t.maxPerClient {
		return nil, false
	}
	t.perClient[subject]++
	return &slot{subject: subject}, true
}

// release gives back a slot no session took.
func (t *sessionTable) release(sl *slot) {
	if sl == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !sl.done {
		sl.done = true
		t.uncount(sl.subject)
	}
}

func (t *sessionTable) uncount(subject string) { // t.mu held
	if t.perClient[subject]--; t.perClient[subject] <= 0 {
		delete(t.perClient, subject)
	}
}

// open records a new session of c's subject and token; with a slot
// reserved for it, the session holds that slot until it closes.
func (t *sessionTable) open(c *auth.Claims, sl *slot) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	id := hex.EncodeToString(b[:])
	s := &session{streams: map[*stream]struct{}{}}
	if c != nil {
		s.subject, s.jti = c.Subject, c.ID
	}
	t.mu.Lock()
	if sl != nil && !sl.done && sl.subject == s.subject {
		sl.done, s.counted = true, true
	}
	t.sessions[id] = s
	t.mu.Unlock()
	return id
}

// notes is the notification counter of session id, or nil.
func (t *sessionTable) notes(id string) *delivery.Counter {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if s, ok := t.sessions[id]; ok {
		return &s.notes
	}
	return nil
}

func (t *sessionTable) owner(id string) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.sessions[id]
	if !ok {
		return "", false
	}
	return s.subject, true
}

// addStream registers an open stream, opened with token jti, under
// session id ("" for none); the returned func unregisters it. ok is
// false, and nothing is registered, for an unknown session.
func (t *sessionTable) addStream(id, jti string, cancel context.CancelFunc) (remove func(), ok bool) {
	st := &stream{jti: jti, cancel: cancel}
	t.mu.Lock()
	defer t.mu.Unlock()
	var s *session
	if id != "" {
		if s, ok = t.sessions[id]; !ok {
			return func() {}, false
		}
		s.streams[st] = struct{}{}
	}
	t.streams[st] = struct{}{}
	return func() {
		t.mu.Lock()
		delete(t.streams, st)
		if s != nil {
			delete(s.streams, st)
		}
		t.mu.Unlock()
	}, true
}

// close forgets a session and ends its streams.
func (t *sessionTable) close(id string) {
	var cancels []context.CancelFunc
	t.mu.Lock()
	if s, ok := t.sessions[id]; ok {
		delete(t.sessions, id)
		if s.counted {
			t.uncount(s.subject)
		}
		for st := range s.streams {
			cancels = append(cancels, st.cancel)
		}
	}
	t.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// closeRevoked ends every session opened with a revoked token and every
// stream opened with one, and returns the ids of the sessions and how
// many streams it ended. All those sessions are forgotten before any stream is ended, so
// a client that sees one of its streams end finds every such session
// gone.
func (t *sessionTable) closeRevoked(revoked auth.RevocationChecker) (closed []string, streams int) {
	var ids []string
	var found []*stream
	t.mu.RLock()
	for id, s := range t.sessions {
		if s.jti != "" && revoked.IsRevoked(s.jti) {
			ids = append(ids, id)
		}
	}
	for st := range t.streams {
		if st.jti != "" && revoked.IsRevoked(st.jti) {
			found = append(found, st)
		}
	}
	t.mu.RUnlock()
	if len(ids) == 0 && len(found) == 0 {
		return nil, 0
	}
	var cancels []context.CancelFunc
	t.mu.Lock()
	for _, id := range ids {
		if s, ok := t.sessions[id]; ok {
			delete(t.sessions, id)
			if s.counted {
				t.uncount(s.subject)
			}
			for st := range s.streams {
				cancels = append(cancels, st.cancel)
			}
			closed = append(closed, id)
		}
	}
	t.mu.Unlock()
	for _, st := range found {
		cancels = append(cancels, st.cancel)
	}
	for _, c := range cancels {
		c() // idempotent: a stream of a closed session may be listed twice
	}
	return closed, len(found)
}

func (t *sessionTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.sessions)
}

// errUnknownSession is returned by Validate for ids this table never
// issued (or already closed); mcp-go answers it with 404.
var errUnknownSession = errors.New("unknown session")

// ResolveSessionIdManager implements server.SessionIdManagerResolver: the
// manager it returns records the requesting identity as the owner of any
// session it generates.
func (t *sessionTable) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	m := boundManager{t: t}
	if r != nil {
		m.claims, _ = auth.ClaimsFrom(r.Context())
		m.slot, _ = r.Context().Value(slotKey{}).(*slot)
		m.generated, _ = r.Context().Value(generatedKey{}).(*string)
	}
	return m
}

// slotKey carries, from bindStreamable to Generate, the session slot an
// initialize request reserved.
type slotKey struct{}

// generatedKey marks a request (a GET /mcp without Mcp-Session-Id) whose
// wrapper wants to know the id of the session mcp-go generates for it, so
// the session can be ended with the request.
type generatedKey struct{}

type boundManager struct {
	t         *sessionTable
	claims    *auth.Claims
	slot      *slot
	generated *string // receives the generated id, when set
}

func (m boundManager) Generate() string {
	id := m.t.open(m.claims, m.slot)
	if m.generated != nil {
		*m.generated = id
	}
	return id
}

func (m boundManager) Validate(id string) (bool, error) {
	if _, ok := m.t.owner(id); !ok {
		return false, errUnknownSession
	}
	return false, nil
}

func (m boundManager) Terminate(id string) (bool, error) {
	m.t.close(id)
	return false, nil
}

// sseStream carries, from the GET /sse wrapper to the session id
// generator, the stream's cancel func; the generator fills in the id.
type sseStream struct {
	id     string
	cancel context.CancelFunc
	remove func() // unregisters the stream; nil until the id is generated
}

type sseStreamKey struct{}

// sseSessionID generates SSE session ids bound to the opener's identity
// and registers the stream so the session can be ended from outside.
func (t *sessionTable) sseSessionID(_ context.Context, r *http.Request) (string, error) {
	c, ok := auth.ClaimsFrom(r.Context())
	if !ok {
		return "", errors.New("no identity on SSE request")
	}
	id := t.open(c, nil)
	if st, ok := r.Context().Value(sseStreamKey{}).(*sseStream); ok {
		st.id = id
		st.remove, _ = t.addStream(id, c.ID, st.cancel)
	}
	return id, nil
}

// countingWriter counts the notification events written through it.
type countingWriter struct {
	http.ResponseWriter
	c *delivery.Counter
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	if err == nil {
		w.c.Saw(b)
	}
	return n, err
}

// Flush implements http.Flusher (mcp-go streams only to a Flusher).
func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
