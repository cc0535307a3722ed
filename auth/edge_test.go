package auth

import (
	"net/http/httptest"
	"testing"
	"time"
)

// The throttle steps every credential check shares: a Guard without a
// Throttle is inert; Blocked sets Retry-After (rounded up seconds) and
// counts nothing; Failed counts only when not blocked.
func TestGuard(t *testing.T) {
	var none Guard
	if _, blocked := none.Failed(httptest.NewRecorder(), "192.0.2.1"); blocked {
		t.Fatal("a Guard without a Throttle blocked")
	}
	none.Fail("192.0.2.1") // no panic

	thr := &fakeThrottle{}
	g := Guard{Throttle: thr}
	rec := httptest.NewRecorder()
	if _, blocked := g.Blocked(rec, "192.0.2.1"); blocked || thr.fails != 0 || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("unblocked Blocked: blocked=%v fails=%d Retry-After=%q", blocked, thr.fails, rec.Header().Get("Retry-After"))
	}
	if _, blocked := g.Failed(rec, "192.0.2.1"); blocked || thr.fails != 1 {
		t.Fatalf("unblocked Failed: blocked=%v fails=%d", blocked, thr.fails)
	}

	thr.blocked = true
	secs, blocked := g.Failed(rec, "192.0.2.1")
	if !blocked || secs != "3" || rec.Header().Get("Retry-After") != "3" || thr.fails != 1 {
		t.Fatalf("blocked Failed: blocked=%v secs=%q Retry-After=%q fails=%d", blocked, secs, rec.Header().Get("Retry-After"), thr.fails)
	}
	if secs, blocked := g.Blocked(nil, "192.0.2.1"); !blocked || secs != "3" {
		t.Fatalf("Blocked without a writer: %q %v", secs, blocked)
	}
	if got := RetryAfter(1500 * time.Millisecond); got != "2" {
		t.Fatalf("RetryAfter(1.5s) = %q, want 2", got)
	}
}
