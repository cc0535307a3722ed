package quota

import "testing"

func TestPerKeyBoundsEachKey(t *testing.T) {
	p := New(2)
	relA1, ok1 := p.Take("a")
	_, ok2 := p.Take("a")
	if _, ok := p.Take("a"); !ok1 || !ok2 || ok {
		t.Fatalf("takes of a: %v %v, then a third allowed: %v", ok1, ok2, ok)
	}
	if _, ok := p.Take("b"); !ok {
		t.Fatal("another key is refused")
	}
	relA1()
	relA1() // a second release gives nothing back twice
	if got := p.n["a"]; got != 1 {
		t.Fatalf("a holds %d after one release (called twice), want 1", got)
	}
	if _, ok := p.Take("a"); !ok {
		t.Fatal("a freed place is refused")
	}
	if _, ok := p.Take("a"); ok {
		t.Fatal("a third place of a is allowed after taking the freed one")
	}
}

func TestPerKeyWithoutABoundAllowsAny(t *testing.T) {
	p := New(0)
	for range 1000 {
		if _, ok := p.Take("a"); !ok {
			t.Fatal("refused without a bound")
		}
	}
	if got := p.n["a"]; got != 0 {
		t.Fatalf("an unbounded PerKey counts %d, want nothing kept", got)
	}
}

func TestPerKeyForgetsKeysHoldingNothing(t *testing.T) {
	p := New(1)
	for i := range 100 {
		rel, _ := p.Take(string(rune('a' + i%26)))
		rel()
	}
	if len(p.n) != 0 {
		t.Fatalf("%d keys kept after every place was given back", len(p.n))
	}
}
