package transport

import (
	"context"
	"slices"
	"testing"
)

// A request not handed off runs its cleanup on return; one handed off
// runs it when its stream ends (end) and when its connection is done with
// (close), in order, whether the middleware deferred it before or after
// the stream ended.
func TestHandoffRunsCleanupWhenTheStreamEnds(t *testing.T) {
	var ran []string
	note := func(s string) func() { return func() { ran = append(ran, s) } }

	ctx, hf := withHandoff(context.Background(), nil)
	if handoffFrom(ctx) != hf {
		t.Fatal("the handoff is not in the context")
	}
	hf.done(note("not taken"))
	hf.onClose(note("not taken, close"))
	if !slices.Equal(ran, []string{"not taken", "not taken, close"}) {
		t.Fatalf("a request not handed off: %v", ran)
	}

	ran = nil
	_, hf = withHandoff(context.Background(), func() bool { return true })
	if !hf.take() {
		t.Fatal("take: the request's context had not ended")
	}
	hf.done(note("inner"))
	hf.done(note("outer"))
	hf.onClose(note("in flight"))
	if len(ran) != 0 {
		t.Fatalf("ran before the stream ended: %v", ran)
	}
	hf.end()
	if !slices.Equal(ran, []string{"inner", "outer"}) {
		t.Fatalf("at the stream's end: %v", ran)
	}
	hf.done(note("late"))
	hf.close()
	hf.onClose(note("late, close"))
	if want := []string{"inner", "outer", "late", "in flight", "late, close"}; !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}

	// A stream that ended before its handler returned: the cleanup runs
	// as the middleware defers it.
	ran = nil
	_, hf = withHandoff(context.Background(), func() bool { return false })
	if hf.take() {
		t.Fatal("take: the request's context had ended")
	}
	hf.close()
	hf.done(note("after the end"))
	hf.onClose(note("after the close"))
	if !slices.Equal(ran, []string{"after the end", "after the close"}) {
		t.Fatalf("ran %v", ran)
	}
	var none *handoff
	none.done(note("nil"))
	if ran[len(ran)-1] != "nil" {
		t.Fatal("a nil handoff did not run its cleanup")
	}
}
