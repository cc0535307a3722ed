package transport

import (
	"context"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// UntilTokenEnds returns a context that ends when c's token expires or,
// checked every interval, is revoked; context.Cause then says which
// (auth.ErrTokenExpired, auth.ErrTokenRevoked). A session that acts as a
// token for as long as it lives (stdio with MCP_TOKEN) runs under it, so
// it ends, like every HTTP stream, within a second of its token.
func UntilTokenEnds(parent context.Context, c *auth.Claims, revoked auth.RevocationChecker, every time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	stopDeadline := func() {}
	if exp, ok := c.Expires(); ok {
		var dctx context.Context
		dctx, stopDeadline = context.WithDeadlineCause(ctx, exp, auth.ErrTokenExpired)
		ctx = dctx
	}
	if revoked != nil && c.ID != "" {
		if every <= 0 {
			every = 500 * time.Millisecond
		}
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if revoked.IsRevoked(c.ID) {
						cancel(auth.ErrTokenRevoked)
						return
					}
				}
			}
		}()
	}
	return ctx, func() { stopDeadline(); cancel(context.Canceled) }
}
