package main

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// stdioEnded waits until the stdio server stops answering (its process
// has exited) and returns when that was first seen.
func stdioEnded(t *testing.T, c *client.Client, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		cancel()
		if err != nil {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the stdio session was still served %v later", within)
	return time.Time{}
}

// A stdio session acting as MCP_TOKEN ends when that token is revoked
// (here by the CLI, another process: the server learns it at its next
// revocation resync) or expires, like every HTTP stream.
func TestStdioSessionOfATokenEndsWhenItIsRevokedOrExpires(t *testing.T) {
	t.Run("revoked", func(t *testing.T) {
		e := testEnv(t, "MCP_REVOCATION_RESYNC=200ms")
		user := issue(t, e, "stdio-user", "1h")
		c, err := stdioClient(t, mergeEnv(e, []string{"MCP_TOKEN=" + user.Token}))
		if err != nil {
			t.Fatal(err)
		}
		testutil.CallTool(t, c, "whoami", nil)
		if _, errOut, code := run(t, e, "", "token", "revoke", user.JTI); code != 0 {
			t.Fatalf("token revoke: %d %s", code, errOut)
		}
		revoked := time.Now()
		if el := stdioEnded(t, c, 10*time.Second).Sub(revoked); el > 1500*time.Millisecond {
			t.Fatalf("the stdio session ended %v after the revocation, want within a second of the resync", el)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := testEnv(t)
		user := issue(t, e, "stdio-user", "3s")
		c, err := stdioClient(t, mergeEnv(e, []string{"MCP_TOKEN=" + user.Token}))
		if err != nil {
			t.Fatal(err)
		}
		testutil.CallTool(t, c, "whoami", nil)
		exp, err := time.Parse(time.RFC3339, *user.ExpiresAt)
		if err != nil {
			t.Fatal(err)
		}
		if late := stdioEnded(t, c, 15*time.Second).Sub(exp); late > time.Second {
			t.Fatalf("the stdio session ended %v after its token expired", late)
		}
	})
}
