package auth

import "sync"

// verifiedCache remembers the claims of tokens that passed verification,
// keyed by the exact token string, so that a client's repeated requests
// skip the HMAC and the claim parsing. Only facts that cannot change for a
// given string are cached: the signature and the decoded claims. Expiry,
// revocation and the allowed-clients list are checked on every hit.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[string]*Claims
	max int
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{m: make(map[string]*Claims), max: max}
}

func (c *verifiedCache) get(token string) (*Claims, bool) {
	c.mu.RLock()
	cl, ok := c.m[token]
	c.mu.RUnlock()
	return cl, ok
}

func (c *verifiedCache) put(token string, cl *Claims) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Bounded: forget an arbitrary eighth (map order is random).
		n := c.max / 8
		for k := range c.m {
			if n <= 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[token] = cl
}

func (c *verifiedCache) drop(token string) {
	c.mu.Lock()
	delete(c.m, token)
	c.mu.Unlock()
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
