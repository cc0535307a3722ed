package transport

import (
	"context"
	"sync"
)

// handoff lets an event stream outlive the handler that opened it. A
// handler that takes its connection over (hijacks it) and returns, leaving
// the stream to a goroutine of its own, hands the cleanup that the
// middleware around it would run on return (its stream slot, its session)
// to that goroutine, which runs it when the stream ends (end), and what
// must wait until the connection is done with (the in-flight count a
// shutdown waits on) when it is (close). A request that is not handed off
// runs both on return, as usual.
type handoff struct {
	// unlink detaches the stream's context from the request's, which
	// net/http cancels once the handler returns.
	unlink func() bool

	mu      sync.Mutex
	taken   bool      // the stream carries on after the handler returned
	atEnd   afterward // cleanup for when the stream ends
	atClose afterward // for when its connection is done with
}

// afterward is what waits for a moment of a handed-off stream (its end,
// its connection done with), in order; once the moment has come, what is
// handed over later runs at once.
type afterward struct {
	come bool
	fs   []func()
}

type handoffKey struct{}

// withHandoff returns ctx carrying a new handoff, and the handoff.
func withHandoff(ctx context.Context, unlink func() bool) (context.Context, *handoff) {
	hf := &handoff{unlink: unlink}
	return context.WithValue(ctx, handoffKey{}, hf), hf
}

// handoffFrom is the handoff a request may use, or nil.
func handoffFrom(ctx context.Context) *handoff {
	hf, _ := ctx.Value(handoffKey{}).(*handoff)
	return hf
}

// take marks the request handed off, before its handler returns: the
// stream's context no longer ends with the request. False when the
// request's context had ended already (the client went away); the stream
// then ends at once, its cleanup run by end as usual.
func (h *handoff) take() bool {
	h.mu.Lock()
	h.taken = true
	h.mu.Unlock()
	return h.unlink == nil || h.unlink()
}

// done runs f now, or, when the request has been handed off to a stream
// that is still open, when the stream ends. Middleware defer their
// cleanup through it. A nil handoff runs f now.
func (h *handoff) done(f func()) {
	if h == nil {
		f()
		return
	}
	h.runAt(&h.atEnd, f)
}

// onClose runs f now, or, when the request has been handed off to a
// stream whose connection is still in use, once it is done with.
func (h *handoff) onClose(f func()) { h.runAt(&h.atClose, f) }

// runAt runs f now, or, when the request has been handed off and the
// moment a has not come yet, then.
func (h *handoff) runAt(a *afterward, f func()) {
	h.mu.Lock()
	if h.taken && !a.come {
		a.fs = append(a.fs, f)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	f()
}

// arrive marks the moment a come and runs what waited for it, in order.
func (h *handoff) arrive(a *afterward) {
	h.mu.Lock()
	a.come = true
	fs := a.fs
	a.fs = nil
	h.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// isTaken reports whether the request was handed off.
func (h *handoff) isTaken() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.taken
}

// end runs the cleanup handed over, in the order the middleware deferred
// it; cleanup handed over later runs at once.
func (h *handoff) end() { h.arrive(&h.atEnd) }

// close runs what waited for the connection to be done with (after end).
func (h *handoff) close() {
	h.end()
	h.arrive(&h.atClose)
}
