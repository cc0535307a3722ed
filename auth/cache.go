package auth

import (
	"sync"
	"time"
)

// verifiedCache remembers the claims of tokens that passed verification,
// keyed by the exact token string, so that a client's repeated requests
// skip the HMAC and the claim parsing. Only facts that cannot change for a
// given string are cached: the signature and the decoded claims. Expiry,
// revocation and the allowed-clients list are checked on every hit.
//
// Entries are kept in two generations: every verifiedCacheIdle the
// current one becomes the previous one and the previous one is dropped,
// and a hit in the previous one moves the entry back into the current
// one. A token unused for between one and two periods is so forgotten
// (verified afresh if it comes back), and once no token is used at all
// the cache empties and its maps are freed: it holds the tokens in use,
// not every token seen since the process started (up to max of them,
// some 500 bytes each, which the soak saw stay after its load). The
// timer runs only while the cache holds something.
type verifiedCache struct {
	mu     sync.RWMutex
	m, old map[string]*Claims
	max    int
	idle   time.Duration
	timer  *time.Timer // armed while m or old holds entries
}

// verifiedCacheIdle is how long an unused entry is kept at least; it is
// dropped after at most twice that.
const verifiedCacheIdle = time.Minute

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{m: make(map[string]*Claims), max: max, idle: verifiedCacheIdle}
}

func (c *verifiedCache) get(token string) (*Claims, bool) {
	c.mu.RLock()
	cl, ok := c.m[token]
	if ok || len(c.old) == 0 {
		c.mu.RUnlock()
		return cl, ok
	}
	cl, ok = c.old[token]
	c.mu.RUnlock()
	if ok {
		c.mu.Lock()
		if cur, still := c.old[token]; still && cur == cl {
			delete(c.old, token)
			c.m[token] = cl
		}
		c.mu.Unlock()
	}
	return cl, ok
}

func (c *verifiedCache) put(token string, cl *Claims) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m)+len(c.old) >= c.max {
		// Bounded: the previous generation goes first, then an arbitrary
		// eighth (map order is random).
		c.old = nil
		if len(c.m) >= c.max {
			n := c.max / 8
			for k := range c.m {
				if n <= 0 {
					break
				}
				delete(c.m, k)
				n--
			}
		}
	}
	c.m[token] = cl
	if c.timer == nil {
		c.timer = time.AfterFunc(c.idle, c.age)
	}
}

// age starts a new generation; it stops the timer once nothing is left.
func (c *verifiedCache) age() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		c.old = nil
		c.timer = nil
		return
	}
	c.old, c.m = c.m, make(map[string]*Claims)
	c.timer.Reset(c.idle)
}

func (c *verifiedCache) drop(token string) {
	c.mu.Lock()
	delete(c.m, token)
	delete(c.old, token)
	c.mu.Unlock()
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m) + len(c.old)
}
