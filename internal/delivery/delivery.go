// Package delivery counts the notifications written to a caller's event
// streams, so that a relay that queued some for the caller can answer
// only once they are out. mcp-go v1.2.1's Streamable HTTP server drops a
// notification its forwarder has taken off the session's queue when the
// request's answer is written first (mark3labs/mcp-go#969); counting what
// reached the wire makes the wait exact instead of a guess.
package delivery

import (
	"bytes"
	"context"
	"sync/atomic"
)

// Counter counts notification events written to one session's streams.
type Counter struct {
	n atomic.Int64
}

// Written is how many have been written so far.
func (c *Counter) Written() int64 { return c.n.Load() }

// Saw counts b when it is one event carrying a notification.
func (c *Counter) Saw(b []byte) {
	if IsNotificationEvent(b) {
		c.n.Add(1)
	}
}

type key struct{}

// With is ctx carrying c.
func With(ctx context.Context, c *Counter) context.Context { return context.WithValue(ctx, key{}, c) }

// From is the counter ctx carries, or nil.
func From(ctx context.Context) *Counter {
	c, _ := ctx.Value(key{}).(*Counter)
	return c
}

// notificationEvent is how mcp-go writes a notification: one event,
// written whole, whose data is the JSON-RPC notification with jsonrpc and
// method first.
var notificationEvent = []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/")

// IsNotificationEvent reports whether b is one event carrying a
// notification, as mcp-go writes them.
func IsNotificationEvent(b []byte) bool { return bytes.HasPrefix(b, notificationEvent) }
