package upstream

import (
	"context"
	"fmt"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/quota"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// The gateway's limits on what one caller can make it hold, by the names
// Options.Refused reports their refusals under.
const (
	// LimitInFlightPerClient bounds the requests one client has relayed
	// and not yet had answered (Options.MaxInFlightPerClient).
	LimitInFlightPerClient = "inflight_per_client"
	// LimitSubscriptionsPerSession bounds the resources one session
	// subscribes to through the gateway
	// (Options.MaxSubscriptionsPerSession).
	LimitSubscriptionsPerSession = "subscriptions_per_session"
)

// Limits are the names of the gateway's limits.
func Limits() []string { return []string{LimitInFlightPerClient, LimitSubscriptionsPerSession} }

// Defaults of the limits.
const (
	defaultMaxInFlightPerClient       = 64
	defaultMaxSubscriptionsPerSession = 128
)

// inFlightLimit counts the relayed requests of each client (a token's
// subject) that are waiting for their upstream's answer, across every
// upstream. Each waiting request holds a goroutine, a slot in the upstream
// connection and, for a stdio upstream, a share of one child process: a
// client that sends more than max at once is refused, so it cannot starve
// the other callers of a shared upstream nor grow the server without bound.
type inFlightLimit struct {
	callers *quota.PerKey
	refused func(string)
}

func newInFlightLimit(max int, refused func(string)) *inFlightLimit {
	return &inFlightLimit{callers: quota.New(max), refused: refused}
}

// acquire takes one of the caller's slots; release gives it back. A caller
// without claims (authentication off) shares one count with every other.
func (l *inFlightLimit) acquire(ctx context.Context) (release func(), err error) {
	var who string
	if c, ok := auth.ClaimsFrom(ctx); ok {
		who = c.Subject
	}
	release, ok := l.callers.Take(who)
	if !ok {
		l.refused(LimitInFlightPerClient)
		return nil, fmt.Errorf("client %q already has %d requests waiting for upstreams, the most allowed at once: wait for one to be answered, then retry",
			untrusted.Clip(who, 200), l.callers.Max())
	}
	return release, nil
}
