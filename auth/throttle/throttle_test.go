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
