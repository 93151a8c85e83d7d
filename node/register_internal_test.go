package node

import (
	"errors"
	"testing"

	"github.com/demes/demes/crypto"
)

// TestRegisterWhileClosing: a group started while the node closes (a join
// that ends just then) is stopped rather than listed after Close took its
// list, which left its goroutine running and Close waiting for it forever
// (TestKeeperOfferSurvivesCrash hung 16 minutes in CI, the keeper's resumed
// join ending as the test's cleanup crashed the node).
func TestRegisterWhileClosing(t *testing.T) {
	n := &Node{groups: map[crypto.GroupID]*group{}}
	start := func(id byte) *group {
		g := &group{id: crypto.GroupID{id}, stopc: make(chan struct{}), donec: make(chan struct{})}
		n.wg.Add(1)
		go func() { // the group's goroutine: runs until stopped
			defer n.wg.Done()
			defer close(g.donec)
			<-g.stopc
		}()
		return g
	}
	open := start(1)
	if err := n.register(open); err != nil {
		t.Fatalf("register on an open node: %v", err)
	}
	if n.groups[open.id] != open {
		t.Fatal("the group is not listed")
	}
	n.closed = true // Close took its list
	late := start(2)
	err := n.register(late)
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("register while closing: %v, want ErrStopped", err)
	}
	if n.groups[late.id] != nil {
		t.Fatal("a group started while closing was listed")
	}
	select {
	case <-late.donec:
	default:
		t.Fatal("a group started while closing still runs")
	}
	open.stop()
	n.wg.Wait() // hangs (test timeout) if either group still runs
}
