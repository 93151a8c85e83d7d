package node

import (
	"fmt"
	"testing"
)

// TestRejectReasonsBounded: reasons that name keys or indexes cannot grow
// the counter without bound; the excess is counted under one reason.
func TestRejectReasonsBounded(t *testing.T) {
	r := newRejectCounter()
	for i := range 10 * maxRejectReasons {
		r.add(fmt.Sprintf("signer %x is not a member", i))
	}
	got := r.snapshot()
	if len(got) != maxRejectReasons+1 || got[otherReasons] != 9*maxRejectReasons {
		t.Fatalf("%d reasons, %d under %q", len(got), got[otherReasons], otherReasons)
	}
}
