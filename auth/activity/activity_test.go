package activity

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeToucher struct {
	mu      sync.Mutex
	calls   int
	stored  map[string]time.Time
	failing bool
}

func (f *fakeToucher) TouchClients(_ context.Context, seen map[string]time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failing {
		return errors.New("db down")
	}
	if f.stored == nil {
		f.stored = map[string]time.Time{}
	}
	for k, v := range seen {
		f.stored[k] = v
	}
	return nil
}

func TestSightingsAreBatchedIntoOneWrite(t *testing.T) {
	f := &fakeToucher{}
	tr := New(f, nil)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr.now = func() time.Time { return clock }
	for i := 0; i < 1000; i++ {
		tr.Seen("a")
		tr.Seen("b")
	}
	clock = clock.Add(time.Minute)
	tr.Seen("a")
	if f.calls != 0 {
		t.Fatal("Seen wrote to the store")
	}
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.calls != 1 || len(f.stored) != 2 || !f.stored["a"].Equal(clock) {
		t.Fatalf("calls=%d stored=%v", f.calls, f.stored)
	}
	// Nothing pending: no write.
	_ = tr.Flush(context.Background())
	if f.calls != 1 {
		t.Fatal("an empty flush wrote")
	}
}

func TestFailedFlushKeepsSightingsForTheNextOne(t *testing.T) {
	f := &fakeToucher{failing: true}
	tr := New(f, nil)
	tr.Seen("a")
	if err := tr.Flush(context.Background()); err == nil {
		t.Fatal("flush error hidden")
	}
	f.failing = false
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.stored["a"]; !ok {
		t.Fatal("a sighting was lost after a failed flush")
	}
}

func TestRunFlushesOnStop(t *testing.T) {
	f := &fakeToucher{}
	tr := New(f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx, time.Hour); close(done) }()
	tr.Seen("late")
	cancel()
	<-done
	if _, ok := f.stored["late"]; !ok {
		t.Fatal("sightings were lost at shutdown")
	}
}
