package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/throttle"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// PendingLimits bound the pending authorization requests that anyone,
// unauthenticated, creates by loading GET /authorize: each is a row in
// the registry and a line in the admin's list_pending_authorizations.
// Zero fields get the defaults.
type PendingLimits struct {
	// PerAddress caps the unexpired requests from one client address
	// (an IPv6 /64 counts as one address); default 10.
	PerAddress int
	// PerClient caps the unexpired requests of one OAuth client id;
	// default 50 (a client id that is a metadata document URL is shared
	// by every user of that application).
	PerClient int
	// Total caps all unexpired requests; default 1000.
	Total int
	// Burst requests may be created by one address at once; then one
	// more per Refill. Defaults 10 and 6s.
	Burst  int
	Refill time.Duration
}

func (l PendingLimits) withDefaults() PendingLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.PerAddress, 10)
	def(&l.PerClient, 50)
	def(&l.Total, 1000)
	def(&l.Burst, 10)
	if l.Refill <= 0 {
		l.Refill = 6 * time.Second
	}
	return l
}

// addressKey is the address pending requests are counted by: the IP, or
// for IPv6 its /64 (one subscriber's usual allocation).
func addressKey(addr string) string { return throttle.Key(addr) }

// pendingRefusal says which limit a new request would exceed and when a
// place frees up.
type pendingRefusal struct {
	limit string // "per_address", "per_client", "total", "rate"
	msg   string
	retry time.Duration
}

// checkPending returns the limit a new request of clientID from addr
// would exceed, or nil. s.pendingMu must be held from this check until
// the request is stored, so one process never overshoots.
func (s *Server) checkPending(ctx context.Context, clientID, addr string) (*pendingRefusal, error) {
	now := s.cfg.Now()
	items, err := s.cfg.Store.ListState(ctx, kindRequest, now)
	if err != nil {
		return nil, err
	}
	var byAddr, byClient int
	var addrFree, clientFree time.Time // when the oldest expires
	for _, it := range items {
		var req authRequest
		if json.Unmarshal(it.Value, &req) != nil {
			continue
		}
		if req.Addr == addr {
			if byAddr++; addrFree.IsZero() {
				addrFree = it.ExpiresAt
			}
		}
		if req.ClientID == clientID {
			if byClient++; clientFree.IsZero() {
				clientFree = it.ExpiresAt
			}
		}
	}
	lim := s.cfg.Pending
	wait := func(t time.Time) time.Duration { return max(t.Sub(now), time.Second) }
	switch {
	case byAddr >= lim.PerAddress:
		return &pendingRefusal{"per_address", fmt.Sprintf("%d sign-ins from this address are already waiting for an answer. Finish or cancel one, or try again when the oldest expires.", byAddr), wait(addrFree)}, nil
	case byClient >= lim.PerClient:
		return &pendingRefusal{"per_client", fmt.Sprintf("%d sign-ins of this application are already waiting for an answer. Try again when the oldest expires.", byClient), wait(clientFree)}, nil
	case len(items) >= lim.Total:
		return &pendingRefusal{"total", "Too many sign-ins are waiting for an answer on this server. Try again in a few minutes.", wait(items[0].ExpiresAt)}, nil
	}
	return nil, nil
}

// refusePending answers 429 with Retry-After and records the refusal
// (counted in /metrics as oauth.authorize_refused).
func (s *Server) refusePending(w http.ResponseWriter, r *http.Request, clientID string, p *pendingRefusal) {
	auth.Audit(auth.WithRemoteAddr(r.Context(), bearer.ClientAddress(r)), s.cfg.Logger, "oauth.authorize_refused", "via", "oauth",
		"limit", p.limit, "oauth_client_id", untrusted.Clip(clientID, 200))
	w.Header().Set("Retry-After", bearer.RetryAfter(p.retry))
	s.errorPage(w, http.StatusTooManyRequests, "Too many sign-in requests", p.msg)
}

// RunPruner deletes expired OAuth state (pending requests, codes,
// enrollment codes, refresh tokens, registrations, cached metadata) now
// and then every interval until ctx ends. Whoever owns the server's
// lifetime runs it; on several replicas each may, deleting is idempotent.
func (s *Server) RunPruner(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.cfg.Store.PruneState(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("cannot delete expired OAuth state", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
