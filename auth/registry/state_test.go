package registry

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestStateContract(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	for _, b := range contractBackends {
		t.Run(b.name, func(t *testing.T) {
			s := b.fresh(t).open(t)
			put := func(kind, key, grp, val string, exp time.Time) error {
				return s.PutState(ctx, State{Kind: kind, Key: key, Group: grp, Value: []byte(val), ExpiresAt: exp})
			}
			if err := put("code", "k1", "", "v1", now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := put("code", "k1", "", "other", now.Add(time.Minute)); !errors.Is(err, ErrStateExists) {
				t.Fatalf("second Put of a taken key: %v", err)
			}
			got, err := s.GetState(ctx, "code", "k1", now)
			if err != nil || string(got.Value) != "v1" {
				t.Fatalf("Get = %+v, %v", got, err)
			}
			if _, err := s.GetState(ctx, "client", "k1", now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("kinds are separate: %v", err)
			}
			if _, err := s.GetState(ctx, "code", "k1", now.Add(2*time.Minute)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("expired item returned: %v", err)
			}
			if err := s.UpdateState(ctx, State{Kind: "code", Key: "k1", Value: []byte("v2"), ExpiresAt: now.Add(time.Hour)}, now); err != nil {
				t.Fatal(err)
			}

			// Consume is single-use, even under concurrency.
			var wg sync.WaitGroup
			wins := make(chan string, 8)
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if st, err := s.ConsumeState(ctx, "code", "k1", now); err == nil {
						wins <- string(st.Value)
					}
				}()
			}
			wg.Wait()
			close(wins)
			if n := len(wins); n != 1 {
				t.Fatalf("%d consumers got the single-use item", n)
			}
			if v := <-wins; v != "v2" {
				t.Fatalf("consumed value %q, want the updated v2", v)
			}

			// An expired item cannot be consumed.
			_ = put("code", "old", "", "x", now.Add(-time.Second))
			if _, err := s.ConsumeState(ctx, "code", "old", now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("expired consume: %v", err)
			}

			// Groups (refresh-token families) are deleted together.
			for _, k := range []string{"r1", "r2", "r3"} {
				if err := put("refresh", k, "fam-a", "x", now.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			_ = put("refresh", "r4", "fam-b", "x", now.Add(time.Hour))
			_ = put("refresh", "r5", "fam-a", "x", now.Add(-time.Second)) // expired
			_ = put("spent", "r6", "fam-a", "x", now.Add(time.Hour))      // another kind
			fam, err := s.ListStateGroup(ctx, "refresh", "fam-a", now)
			if err != nil || len(fam) != 3 || slices.ContainsFunc(fam, func(st State) bool { return st.Group != "fam-a" || st.Kind != "refresh" }) {
				t.Fatalf("ListStateGroup(fam-a) = %+v, %v; want r1-r3", fam, err)
			}
			if n, err := s.DeleteStateGroup(ctx, "refresh", "fam-a"); err != nil || n != 4 {
				t.Fatalf("DeleteStateGroup = %d, %v", n, err)
			}
			left, err := s.ListState(ctx, "refresh", now)
			if err != nil || len(left) != 1 || left[0].Key != "r4" {
				t.Fatalf("left after group delete: %+v %v", left, err)
			}
			// CountState counts the unexpired items of one kind.
			if err := put("refresh", "r5", "", "v", now.Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.CountState(ctx, "refresh", now); err != nil || n != 1 {
				t.Fatalf("CountState = %d, %v; want 1 (one expired item, other kinds not counted)", n, err)
			}
			if err := s.PruneState(ctx, now.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if left, _ := s.ListState(ctx, "refresh", now); len(left) != 0 {
				t.Fatalf("prune kept %d expired items", len(left))
			}
		})
	}
}
