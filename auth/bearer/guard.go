package bearer

import (
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// The HTTP edge of authentication: where a request comes from, and the
// failure throttle every credential check applies (the Bearer
// middleware, the token API and introspection, the WebSocket
// handshake, the OAuth server). Each caller keeps its own answer format;
// the throttle steps are Guard's.

// Throttle limits repeated failures per source (see auth/throttle).
type Throttle interface {
	Blocked(source string) (retryAfter time.Duration, blocked bool)
	Fail(source string)
}

// Guard applies a Throttle at the edge. A Guard without a Throttle never
// blocks and counts nothing, so callers need no nil checks.
//
// The order is the caller's: a credential that is cheap to guess (an API
// key, an enrollment code) meets Blocked before it is compared and Fail
// once it is wrong; a Bearer token is verified first and only a failure
// meets Failed, so a valid token from a throttled address is served.
// Requests without any credentials are never counted.
type Guard struct {
	Throttle Throttle
}

// Blocked reports whether src is over its failure budget. When it is, it
// sets Retry-After on w (unless w is nil) and returns the same value, in
// whole seconds (RetryAfter), for the caller's message.
func (g Guard) Blocked(w http.ResponseWriter, src string) (retryAfter string, blocked bool) {
	if g.Throttle == nil {
		return "", false
	}
	wait, blocked := g.Throttle.Blocked(src)
	if !blocked {
		return "", false
	}
	retryAfter = RetryAfter(wait)
	if w != nil {
		w.Header().Set("Retry-After", retryAfter)
	}
	return retryAfter, true
}

// Fail counts one failure (or one costly request) against src.
func (g Guard) Fail(src string) {
	if g.Throttle != nil {
		g.Throttle.Fail(src)
	}
}

// Failed is the step for a failed attempt: refused as Blocked when src
// is over its budget (the caller answers 429), else counted with Fail
// (the caller answers its own refusal).
func (g Guard) Failed(w http.ResponseWriter, src string) (retryAfter string, blocked bool) {
	if retryAfter, blocked = g.Blocked(w, src); blocked {
		return retryAfter, true
	}
	g.Fail(src)
	return "", false
}

// ClientAddress is the source a request is throttled and audited by: the
// address recorded in its context (auth.WithRemoteAddr; the transport records
// the client behind a trusted proxy there), else the TCP peer's IP.
func ClientAddress(r *http.Request) string {
	if a, ok := auth.RecordedAddr(r.Context()); ok {
		return a
	}
	return PeerAddress(r.RemoteAddr)
}

// PeerAddress is the host part of a "host:port" remote address.
func PeerAddress(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// RetryAfter renders a wait as Retry-After seconds: rounded up, at
// least 1.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(max(int(math.Ceil(d.Seconds())), 1))
}

// WriteTooManyRequests answers a throttled request 429 with a JSON
// body naming the wait; Guard.Blocked has set Retry-After to retryAfter.
func WriteTooManyRequests(w http.ResponseWriter, retryAfter string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: "too_many_requests", Description: "Too many failed attempts from this address; retry after " + retryAfter + "s"})
}
