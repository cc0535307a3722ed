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
)

// session is what the transport remembers of an open session: who opened
// it, with which token, and how to end its streams.
type session struct {
	subject string
	jti     string
	// streams cancel the open streams (SSE GET, Streamable HTTP GET) of
	// this session.
	streams map[*context.CancelFunc]struct{}
}

// sessionTable remembers which subject opened each session, so that a
// session id alone (which travels in URLs and headers) never lets another
// client act inside it, and which token opened it, so that revoking that
// token ends the session.
type sessionTable struct {
	mu       sync.RWMutex
	sessions map[string]*session
}

func newSessionTable() *sessionTable { return &sessionTable{sessions: map[string]*session{}} }

func (t *sessionTable) open(c *auth.Claims) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	id := hex.EncodeToString(b[:])
	s := &session{streams: map[*context.CancelFunc]struct{}{}}
	if c != nil {
		s.subject, s.jti = c.Subject, c.ID
	}
	t.mu.Lock()
	t.sessions[id] = s
	t.mu.Unlock()
	return id
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

// addStream registers a stream's cancel func under a session; the
// returned func unregisters it. ok is false for an unknown session.
func (t *sessionTable) addStream(id string, cancel context.CancelFunc) (remove func(), ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	if !ok {
		return func() {}, false
	}
	key := &cancel
	s.streams[key] = struct{}{}
	return func() {
		t.mu.Lock()
		delete(s.streams, key)
		t.mu.Unlock()
	}, true
}

// close forgets a session and ends its streams.
func (t *sessionTable) close(id string) {
	t.mu.Lock()
	s, ok := t.sessions[id]
	delete(t.sessions, id)
	t.mu.Unlock()
	if ok {
		for c := range s.streams {
			(*c)()
		}
	}
}

// closeRevoked ends every session opened with a revoked token and
// returns how many it ended.
func (t *sessionTable) closeRevoked(revoked auth.RevocationChecker) int {
	var ids []string
	t.mu.RLock()
	for id, s := range t.sessions {
		if s.jti != "" && revoked.IsRevoked(s.jti) {
			ids = append(ids, id)
		}
	}
	t.mu.RUnlock()
	for _, id := range ids {
		t.close(id)
	}
	return len(ids)
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
	}
	return m
}

type boundManager struct {
	t      *sessionTable
	claims *auth.Claims
}

func (m boundManager) Generate() string { return m.t.open(m.claims) }

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
}

type sseStreamKey struct{}

// sseSessionID generates SSE session ids bound to the opener's identity
// and registers the stream so the session can be ended from outside.
func (t *sessionTable) sseSessionID(_ context.Context, r *http.Request) (string, error) {
	c, ok := auth.ClaimsFrom(r.Context())
	if !ok {
		return "", errors.New("no identity on SSE request")
	}
	id := t.open(c)
	if st, ok := r.Context().Value(sseStreamKey{}).(*sseStream); ok {
		st.id = id
		t.addStream(id, st.cancel)
	}
	return id, nil
}
