package delivery

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// Rule: notification events are counted as mcp-go v1.2.1 writes them
// (one Fprintf of "event: message\ndata: <json>\n\n", the JSON from its
// notification type, jsonrpc then method); responses and server requests
// are not.
func TestCountsNotificationEventsOnly(t *testing.T) {
	event := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Appendf(nil, "event: message\ndata: %s\n\n", b)
	}
	progress := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{Method: "notifications/progress",
		Params: mcp.NotificationParams{AdditionalFields: map[string]any{"progressToken": "t", "progress": 1}}}}
	log := mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "x", "hello")
	logNote := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{Method: log.Method,
		Params: mcp.NotificationParams{AdditionalFields: map[string]any{"level": "info", "data": "hello"}}}}
	response := mcp.NewJSONRPCResultResponse(mcp.NewRequestId(1), mcp.NewToolResultText("notifications/progress"))
	request := mcp.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(2), Request: mcp.Request{Method: "sampling/createMessage"}}

	var c Counter
	for _, b := range [][]byte{event(progress), event(logNote), event(response), event(request), []byte(": keep-alive\n\n")} {
		c.Saw(b)
	}
	if c.Written() != 2 {
		t.Fatalf("counted %d events, want the 2 notifications", c.Written())
	}
}
