package throttle

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Config{Burst: 3, Per: 10 * time.Second, Now: func() time.Time { return now }})
	for i := 0; i < 3; i++ {
		if _, blocked := l.Blocked("a"); blocked {
			t.Fatalf("blocked after %d failures, burst is 3", i)
		}
		l.Fail("a")
	}
	wait, blocked := l.Blocked("a")
	if !blocked || wait < time.Second {
		t.Fatalf("after 3 failures: blocked=%v wait=%v", blocked, wait)
	}
	if _, blocked := l.Blocked("b"); blocked {
		t.Fatal("another source is blocked too")
	}
	now = now.Add(10 * time.Second) // one failure drains
	if _, blocked := l.Blocked("a"); blocked {
		t.Fatal("still blocked after the budget refilled by one")
	}
	l.Fail("a")
	if _, blocked := l.Blocked("a"); !blocked {
		t.Fatal("not blocked again after another failure")
	}
	now = now.Add(time.Hour)
	if _, blocked := l.Blocked("a"); blocked {
		t.Fatal("blocked forever")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Config{Burst: 3, Per: time.Hour, MaxSources: 100, Now: func() time.Time { return now }})
	for i := 0; i < 10_000; i++ {
		l.Fail(fmt.Sprint("src-", i))
	}
	if l.Len() > 100 {
		t.Fatalf("%d sources tracked, bound is 100", l.Len())
	}
}

func TestDrainedSourcesAreForgotten(t *testing.T) {
	l := New(Config{Burst: 2, Per: time.Millisecond})
	for i := range 1000 {
		l.Fail(fmt.Sprint("10.0.", i/256, ".", i%256))
	}
	l.Fail("10.9.9.9")
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		n, sweeping := len(l.src), l.sweep != nil
		l.mu.Unlock()
		if n == 0 && !sweeping {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d drained sources still tracked (sweeping: %v)", n, sweeping)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Still counts afterwards (on a clock that stands still).
	now := time.Now()
	l.mu.Lock()
	l.cfg.Now = func() time.Time { return now }
	l.mu.Unlock()
	l.Fail("10.9.9.9")
	l.Fail("10.9.9.9")
	if _, blocked := l.Blocked("10.9.9.9"); !blocked {
		t.Fatal("a source over its burst is not blocked after a sweep emptied the limiter")
	}
}

// An IPv6 /64 is one source: its holder cannot get a fresh budget by
// moving to another address in it.
func TestAnIPv6Slash64IsOneSource(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Config{Burst: 2, Per: time.Minute, Now: func() time.Time { return now }})
	l.Fail("2001:db8:1:2::1")
	l.Fail("2001:db8:1:2:ffff:ffff:ffff:fffe")
	cases := []struct {
		addr    string
		blocked bool
	}{
		{"2001:db8:1:2::1", true},
		{"2001:db8:1:2:abcd::9", true}, // same /64
		{"2001:DB8:1:2:0:0:0:7", true}, // same /64, spelled otherwise
		{"2001:db8:1:3::1", false},     // the next /64
		{"192.0.2.1", false},           // IPv4: itself
		{"unix-socket-peer", false},    // not an address: itself
	}
	for _, c := range cases {
		if _, blocked := l.Blocked(c.addr); blocked != c.blocked {
			t.Errorf("%s blocked = %v, want %v", c.addr, blocked, c.blocked)
		}
	}
	// IPv4 addresses count one by one, mapped into IPv6 or not.
	l.Fail("192.0.2.7")
	l.Fail("::ffff:192.0.2.7")
	if _, blocked := l.Blocked("192.0.2.7"); !blocked {
		t.Error("an IPv4 address and its IPv6-mapped form are not one source")
	}
	if _, blocked := l.Blocked("192.0.2.8"); blocked {
		t.Error("a neighbouring IPv4 address shares the budget")
	}
}
