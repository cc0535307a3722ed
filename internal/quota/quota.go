// Package quota counts what each key (a client's subject, an address)
// holds at once against a bound: open streams, requests waiting for an
// upstream, connections waiting to authenticate.
package quota

import "sync"

// PerKey counts, per key, the places taken and not yet given back. A key
// holding none is forgotten, so the map holds only keys in use.
type PerKey struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// New returns a PerKey allowing max places per key; max <= 0 allows any
// number.
func New(max int) *PerKey { return &PerKey{max: max, n: map[string]int{}} }

// Max is the bound per key (<= 0: none).
func (p *PerKey) Max() int { return p.max }

// Take takes one of key's places; release gives it back (calling it again
// does nothing). ok is false, and nothing is taken, when key holds max
// already.
func (p *PerKey) Take(key string) (release func(), ok bool) {
	if p.max <= 0 {
		return func() {}, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key] >= p.max {
		return nil, false
	}
	p.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.n[key]--; p.n[key] <= 0 {
				delete(p.n, key)
			}
			p.mu.Unlock()
		})
	}, true
}
