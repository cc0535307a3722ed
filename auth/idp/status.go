package idp

import "time"

// Provider states in Status.
const (
	// StateUp: keys fetched and within their age limit.
	StateUp = "up"
	// StatePending: keys never fetched yet (fetched on first use).
	StatePending = "pending"
	// StateDown: no usable keys (the last fetch failed, or the keys are
	// older than MaxKeyAge): the provider's tokens are refused.
	StateDown = "down"
)

// Status is one trusted provider's state, for /health.
type Status struct {
	Name   string `json:"name"`
	Issuer string `json:"issuer"`
	// State is StateUp, StatePending or StateDown.
	State string `json:"state"`
	// Keys is how many keys its JWKS held at the last good fetch.
	Keys int `json:"keys"`
	// FetchedAt is the last good fetch (RFC 3339), if any.
	FetchedAt string `json:"fetched_at,omitempty"`
	// LastError is why the last fetch failed, when it did (it may fail
	// while older keys are still usable).
	LastError string `json:"last_error,omitempty"`
}

// Status reports every provider, in configuration order. Errors are
// those of fetching public metadata (URLs, HTTP statuses): no token or
// secret is in them.
func (s *Set) Status() []Status {
	out := make([]Status, 0, len(s.issuers))
	for _, iss := range s.issuers {
		t := s.byIssuer[iss]
		out = append(out, t.keys.status(t.p.Name, iss))
	}
	return out
}

func (s *keySource) status(name, issuer string) Status {
	usable := s.usable()
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Status{Name: name, Issuer: issuer, Keys: len(s.keys), State: StateDown}
	switch {
	case usable:
		st.State = StateUp
	case s.keys == nil && s.lastErr == nil:
		st.State = StatePending
	}
	if !s.fetchedAt.IsZero() {
		st.FetchedAt = s.fetchedAt.UTC().Format(time.RFC3339)
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	return st
}
