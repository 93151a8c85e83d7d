package p2p

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/demes/demes/internal/testutil"
)

// TestRelayDropsARemovedMember: a member removed from the relay's groups
// (RelayFor no longer accepts it) loses its slot on the relay within
// seconds. Before, libp2p's relay asked its ACL only when a slot was
// reserved or renewed, so the removed member kept its slot, and stayed
// reachable through the relay, until its next renewal (reserveEvery, 30 s,
// or the relay's hour for a client that does not renew), and kept its
// relayed connections until they ended.
func TestRelayDropsARemovedMember(t *testing.T) {
	seedB, seedC := newSeed(t), newSeed(t)
	var mu sync.Mutex
	members := map[[32]byte]bool{signKeyOf(seedB): true, signKeyOf(seedC): true}
	r := newHost(t, newSeed(t), Config{
		RelayRecheck: 50 * time.Millisecond,
		RelayFor: func(k [32]byte) bool {
			mu.Lock()
			defer mu.Unlock()
			return members[k]
		},
	})
	ri := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	b := newHost(t, seedB, Config{Relays: []peer.AddrInfo{ri}})
	c := newHost(t, seedC, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.WaitRelays(ctx) != 1 {
		t.Fatal("the member got no slot on the relay")
	}
	if got, err := post(t, c, b.CircuitURL(), "hello"); err != nil || string(got) != "echo:hello" {
		t.Fatalf("a member cannot reach another through the relay: %q, %v", got, err)
	}

	mu.Lock()
	delete(members, signKeyOf(seedB))
	mu.Unlock()
	// Well within reserveEvery, when b would ask to renew and be refused
	// even without the relay's recheck.
	testutil.Eventually(t, reserveEvery/2, "the removed member to lose its slot on the relay", func() bool {
		return !b.Reserved(r.ID())
	})
	// And the relay does not give it one again.
	if _, ok := openCircuit(t, c, r.ID(), b.ID()); ok {
		t.Error("the relay opened a circuit to the removed member")
	}
}

// TestRelayACLForgetsPeersGone: a relay for anyone remembers only the
// peers connected to it, not every peer it ever admitted.
func TestRelayACLForgetsPeersGone(t *testing.T) {
	a := newACL(func([32]byte) bool { return true })
	var ids []peer.ID
	for i := 0; i < 3; i++ {
		h := newHost(t, newSeed(t), Config{})
		ids = append(ids, h.ID())
		if !a.AllowReserve(h.ID(), nil) {
			t.Fatal("a relay for anyone refused a peer")
		}
	}
	if revoked := a.sweep(func(id peer.ID) bool { return id == ids[0] }); len(revoked) != 0 {
		t.Errorf("revoked %v from a relay for anyone", revoked)
	}
	if len(a.admitted) != 1 || !a.admitted[ids[0]] {
		t.Errorf("remembers %v, want only the connected %v", a.admitted, ids[0])
	}
}
