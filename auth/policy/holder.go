package policy

import (
	"sync/atomic"

	"github.com/mcpauth/mcpauth/auth"
)

// Holder holds the policy in force, so a reload (SIGHUP) can replace it
// while requests are being decided. Every method is safe for concurrent
// use; a request reads the policy once and decides with that copy.
type Holder struct{ p atomic.Pointer[Policy] }

// NewHolder returns a Holder holding p.
func NewHolder(p *Policy) *Holder {
	h := &Holder{}
	h.p.Store(p)
	return h
}

// Load returns the policy in force.
func (h *Holder) Load() *Policy { return h.p.Load() }

// Store puts p in force.
func (h *Holder) Store(p *Policy) { h.p.Store(p) }

// MayUse reports whether a caller with claims c may use the named tool,
// prompt or resource under the policy in force now; never without claims
// (or before a policy is stored).
func (h *Holder) MayUse(c *auth.Claims, k Kind, name string) bool {
	p := h.Load()
	return c != nil && p != nil && p.Need(k, name).Allows(c.Scope)
}
