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

// sessionTable remembers which subject opened each session, so that a
// session id alone (which travels in URLs and headers) never lets another
// client act inside it.
type sessionTable struct {
	mu     sync.RWMutex
	owners map[string]string
}

func newSessionTable() *sessionTable { return &sessionTable{owners: map[string]string{}} }

func (t *sessionTable) open(subject string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	id := hex.EncodeToString(b[:])
	t.mu.Lock()
	t.owners[id] = subject
	t.mu.Unlock()
	return id
}

func (t *sessionTable) owner(id string) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.owners[id]
	return s, ok
}

func (t *sessionTable) close(id string) {
	t.mu.Lock()
	delete(t.owners, id)
	t.mu.Unlock()
}

func (t *sessionTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.owners)
}

// errUnknownSession is returned by Validate for ids this table never
// issued (or already closed); mcp-go answers it with 404.
var errUnknownSession = errors.New("unknown session")

// ResolveSessionIdManager implements server.SessionIdManagerResolver: the
// manager it returns records the requesting subject as the owner of any
// session it generates.
func (t *sessionTable) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	m := boundManager{t: t}
	if r != nil {
		if c, ok := auth.ClaimsFrom(r.Context()); ok {
			m.subject = c.Subject
		}
	}
	return m
}

type boundManager struct {
	t       *sessionTable
	subject string
}

func (m boundManager) Generate() string { return m.t.open(m.subject) }

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

// sseIDHolder receives the id of the SSE session being opened, so the
// GET /sse wrapper can forget it when the stream ends.
type sseIDHolder struct{ id string }

type sseIDHolderKey struct{}

// sseSessionID generates SSE session ids bound to the opener's subject.
func (t *sessionTable) sseSessionID(ctx context.Context, r *http.Request) (string, error) {
	c, ok := auth.ClaimsFrom(r.Context())
	if !ok {
		return "", errors.New("no identity on SSE request")
	}
	id := t.open(c.Subject)
	if h, ok := r.Context().Value(sseIDHolderKey{}).(*sseIDHolder); ok {
		h.id = id
	}
	return id, nil
}
