package upstream

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// A caller's notifications/cancelled ends its request's context in
// mcp-go's server, which ends the forwarded call's context. Over stdio,
// mcp-go's client then tells the upstream with a notifications/cancelled
// of its own. Over HTTP it sends nothing (before protocol 2026-07-28 it
// only drops the POST's stream, which the spec says a server must not take
// as a cancellation), so the HTTP transports are wrapped to send it.

// cancelNoticeTimeout bounds sending one notifications/cancelled.
const cancelNoticeTimeout = 5 * time.Second

// maxCancelNotices bounds the notifications/cancelled being sent to one
// upstream connection at once. Each is sent after its request has ended,
// so the caller's in-flight limit no longer covers it: a caller that
// starts and cancels calls in a loop could otherwise pile them up. When
// that many are on their way, a further one is dropped (the upstream
// then finishes that request and its answer is discarded).
const maxCancelNotices = 64

// cancelNotices holds a slot for each notifications/cancelled on its way.
type cancelNotices chan struct{}

func newCancelNotices() cancelNotices { return make(cancelNotices, maxCancelNotices) }

// notifier is what sendCancelled needs of a transport.
type notifier interface {
	SendNotification(ctx context.Context, n mcp.JSONRPCNotification) error
}

// sendCancelled tells the upstream that the request whose context ended
// is cancelled; off the caller's path, best effort, and at most
// maxCancelNotices at once (slots).
func sendCancelled(ctx context.Context, tr notifier, slots cancelNotices, req transport.JSONRPCRequest, err error) {
	if err == nil || ctx.Err() == nil || req.Method == string(mcp.MethodInitialize) {
		return
	}
	select {
	case slots <- struct{}{}:
	default:
		return
	}
	n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
		Method: string(mcp.MethodNotificationCancelled),
		Params: mcp.NotificationParams{AdditionalFields: map[string]any{"requestId": req.ID, "reason": ctx.Err().Error()}},
	}}
	go func() {
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelNoticeTimeout)
		defer cancel()
		_ = tr.SendNotification(ctx, n)
	}()
}

// cancellingHTTP is a Streamable HTTP transport that sends
// notifications/cancelled for a request whose context ends. Embedding
// keeps every other method (and so every optional interface mcp-go's
// client looks for).
type cancellingHTTP struct {
	*transport.StreamableHTTP
	notices cancelNotices
}

func (t cancellingHTTP) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	res, err := t.StreamableHTTP.SendRequest(ctx, req)
	sendCancelled(ctx, t.StreamableHTTP, t.notices, req, err)
	return res, err
}

// cancellingSSE is the same for the legacy SSE transport.
type cancellingSSE struct {
	*transport.SSE
	notices cancelNotices
}

func (t cancellingSSE) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	res, err := t.SSE.SendRequest(ctx, req)
	sendCancelled(ctx, t.SSE, t.notices, req, err)
	return res, err
}

// The wrappers keep the interfaces mcp-go's client looks for.
var (
	_ transport.BidirectionalInterface                   = cancellingHTTP{}
	_ transport.HTTPConnection                           = cancellingHTTP{}
	_ transport.HTTPConnection                           = cancellingSSE{}
	_ interface{ RequiresLegacyProtocol() bool }         = cancellingHTTP{}
	_ interface{ SetConnectionLostHandler(func(error)) } = cancellingSSE{}
)
