package p2p

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// keepPunching retries from the end a relayed connection came in to, and
// only once the holepunch service runs: on loopback it never does (no
// public address), so no retry may wait on it there.
func TestPunchRetryPicksInboundRelayedPeers(t *testing.T) {
	r := newHost(t, newSeed(t), Config{RelayFor: func([32]byte) bool { return true }})
	ri := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	a := newHost(t, newSeed(t), Config{Relays: []peer.AddrInfo{ri}})
	b := newHost(t, newSeed(t), Config{Relays: []peer.AddrInfo{ri}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if a.WaitRelays(ctx) != 1 || b.WaitRelays(ctx) != 1 {
		t.Fatal("no slot on the relay")
	}
	if got, err := post(t, a, b.CircuitURL(), "relayed"); err != nil || string(got) != "echo:relayed" {
		t.Fatalf("through the relay: %q, %v", got, err)
	}
	if got := b.inboundRelayed(); !slices.Equal(got, []peer.ID{a.ID()}) {
		t.Errorf("b, which the relayed connection came in to, lists %v, want a (%v)", got, a.ID())
	}
	if got := a.inboundRelayed(); len(got) != 0 {
		t.Errorf("a dialed through the relay, yet lists %v", got)
	}
	for _, h := range []*Host{a, b, r} {
		if h.punchSvc == nil {
			t.Errorf("%v: the holepunch service was not handed to the host", h.ID())
		}
		if h.punchReady() {
			t.Errorf("%v: the holepunch service runs on loopback, with no public address", h.ID())
		}
	}
}
