package tools

import (
	"slices"
	"testing"
)

// keep keeps what ok accepts, in order; it hands back its input when
// everything passes, and never nil.
func TestKeep(t *testing.T) {
	even := func(v *int) bool { return *v%2 == 0 }
	for _, tc := range []struct{ in, want []int }{
		{nil, []int{}}, {[]int{}, []int{}}, {[]int{2, 4}, []int{2, 4}}, {[]int{1}, []int{}},
		{[]int{1, 2, 3, 4}, []int{2, 4}}, {[]int{2, 3, 4}, []int{2, 4}}, {[]int{2, 4, 5}, []int{2, 4}},
	} {
		in := slices.Clone(tc.in)
		got := keep(in, even)
		if got == nil || !slices.Equal(got, tc.want) || !slices.Equal(in, tc.in) {
			t.Errorf("keep(%v) = %v (input now %v), want %v", tc.in, got, in, tc.want)
		}
	}
	all := []int{2, 4, 6}
	if got := keep(all, even); &got[0] != &all[0] {
		t.Errorf("keep copied a slice it kept whole")
	}
}
