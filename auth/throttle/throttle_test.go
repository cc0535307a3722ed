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
