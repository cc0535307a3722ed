// Package throttle slows down repeated failures from one source (a client
// address): after Burst failures within the window, further attempts are
// refused until failures age out, so secrets and API keys cannot be
// brute-forced. Successes are never slowed and cost one map lookup.
package throttle

import (
	"net/netip"
	"sync"
	"time"
)

// Config configures a Limiter.
type Config struct {
	// Burst is how many failures a source may have before it is
	// throttled.
	Burst int
	// Per is how long one failure counts against a source: the budget
	// refills at one failure per Per.
	Per time.Duration
	// MaxSources bounds memory: when exceeded, the oldest idle sources
	// are forgotten first.
	MaxSources int
	Now        func() time.Time
}

// Limiter counts failures per source with a leaky bucket.
//
// A source whose bucket has drained is forgotten by a sweep that runs
// every Burst×Per (a full bucket's drain time) while any source is
// tracked, and the map is rebuilt once it holds less than half its
// high-water mark (Go maps never shrink): after a flood of failures from
// many addresses ends, its memory goes too, instead of staying until
// MaxSources forces an eviction. A drained bucket counts as no bucket, so
// forgetting one changes no answer.
type Limiter struct {
	cfg   Config
	mu    sync.Mutex
	src   map[string]*bucket
	peak  int         // most sources tracked since the map was made
	sweep *time.Timer // armed while src is not empty
}

type bucket struct {
	level float64 // failures currently counted
	at    time.Time
}

// New returns a Limiter. Zero fields get defaults: Burst 10, Per 6s (10
// failures a minute), MaxSources 100,000.
func New(cfg Config) *Limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.Per <= 0 {
		cfg.Per = 6 * time.Second
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, src: map[string]*bucket{}}
}

// drain returns the bucket's level at now.
func (l *Limiter) drain(b *bucket, now time.Time) float64 {
	lvl := b.level - float64(now.Sub(b.at))/float64(l.cfg.Per)
	if lvl < 0 {
		lvl = 0
	}
	return lvl
}

// Key is the source an address is counted as: an IPv6 address counts as
// its /64, which one host or household is usually given whole (counting
// each address of it apart would give its holder an endless budget); an
// IPv4 address (also one mapped into IPv6) as itself. Anything else is
// kept as it is.
func Key(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Blocked reports whether source must wait, and for how long, before its
// next attempt is even considered. Sources are counted by Key.
func (l *Limiter) Blocked(source string) (time.Duration, bool) {
	source = Key(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.src[source]
	if !ok {
		return 0, false
	}
	now := l.cfg.Now()
	// Blocked once another failure would exceed the burst.
	over := l.drain(b, now) - float64(l.cfg.Burst-1)
	if over <= 0 {
		return 0, false
	}
	wait := time.Duration(over * float64(l.cfg.Per))
	if wait < time.Second {
		wait = time.Second
	}
	return wait, true
}

// Fail records one failure of source (counted by Key).
func (l *Limiter) Fail(source string) {
	source = Key(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	b, ok := l.src[source]
	if !ok {
		if len(l.src) >= l.cfg.MaxSources {
			l.evict(now)
		}
		b = &bucket{at: now}
		l.src[source] = b
		l.peak = max(l.peak, len(l.src))
		if l.sweep == nil {
			l.sweep = time.AfterFunc(l.sweepEvery(), l.forgetDrained)
		}
	}
	b.level = l.drain(b, now) + 1
	b.at = now
}

// evict forgets sources whose buckets have drained; if none has, it
// forgets an arbitrary tenth to stay bounded.
func (l *Limiter) evict(now time.Time) {
	for k, b := range l.src {
		if l.drain(b, now) == 0 {
			delete(l.src, k)
		}
	}
	if len(l.src) < l.cfg.MaxSources {
		return
	}
	n := l.cfg.MaxSources / 10
	for k := range l.src {
		if n <= 0 {
			break
		}
		delete(l.src, k)
		n--
	}
}

// sweepEvery is how long a full bucket takes to drain (at least 1s).
func (l *Limiter) sweepEvery() time.Duration {
	return max(time.Duration(l.cfg.Burst)*l.cfg.Per, time.Second)
}

// forgetDrained drops drained sources, and rebuilds the map when it has
// shrunk to less than half its high-water mark; it stops sweeping once
// nothing is tracked.
func (l *Limiter) forgetDrained() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	for k, b := range l.src {
		if l.drain(b, now) == 0 {
			delete(l.src, k)
		}
	}
	if len(l.src) < l.peak/2 || len(l.src) == 0 {
		m := make(map[string]*bucket, len(l.src))
		for k, b := range l.src {
			m[k] = b
		}
		l.src, l.peak = m, len(m)
	}
	if len(l.src) == 0 {
		l.sweep = nil
		return
	}
	l.sweep.Reset(l.sweepEvery())
}

// Len is the number of sources tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.src)
}
