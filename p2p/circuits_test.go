package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/util"
)

// openCircuit asks relay r, from host from, for a relayed connection to
// dst, and leaves it open: the relay counts it against both ends' circuits
// until the stream ends. It reports whether the relay opened it.
func openCircuit(t *testing.T, from *Host, r, dst peer.ID) (network.Stream, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := from.h.NewStream(ctx, r, proto.ProtoIDv2Hop)
	if err != nil {
		t.Logf("no hop stream: %v", err)
		return nil, false
	}
	t.Cleanup(func() { s.Reset() })
	msg := pbv2.HopMessage{Type: pbv2.HopMessage_CONNECT.Enum(), Peer: util.PeerInfoToPeerV2(peer.AddrInfo{ID: dst})}
	if err := util.NewDelimitedWriter(s).WriteMsg(&msg); err != nil {
		t.Logf("hop request: %v", err)
		return nil, false
	}
	msg.Reset()
	if err := util.NewDelimitedReader(s, 4096).ReadMsg(&msg); err != nil {
		t.Logf("hop answer: %v", err)
		return nil, false
	}
	return s, msg.GetStatus() == pbv2.Status_OK
}

// Attack: a member (or, on a relay-only node without --allow, anyone) asks
// the relay for relayed connections to another member until the relay
// refuses. libp2p's relay counts at most 16 circuits per peer, to it as well
// as from it, and one source could hold all 16 of a destination's: then no
// one else reached that member through the relay. It needs no more than the
// hop request: a circuit whose handshake it leaves unanswered lasts until
// the member's side gives up (15 s), and it asks again. The relay now
// admits pairCircuits from one peer to another, and the circuits of a pair
// count again once they close (circuits.go).
func TestRelayCircuitsToAMemberCannotBeExhausted(t *testing.T) {
	seedA, seedB, seedC := newSeed(t), newSeed(t), newSeed(t)
	members := map[[32]byte]bool{signKeyOf(seedA): true, signKeyOf(seedB): true, signKeyOf(seedC): true}
	r := newHost(t, newSeed(t), Config{RelayFor: func(k [32]byte) bool { return members[k] }})
	ri := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	b := newHost(t, seedB, Config{Relays: []peer.AddrInfo{ri}})
	attacker := newHost(t, seedA, Config{})
	c := newHost(t, seedC, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.WaitRelays(ctx) != 1 {
		t.Fatal("the member got no slot on the relay")
	}
	if err := attacker.h.Connect(ctx, ri); err != nil {
		t.Fatal(err)
	}
	var held []network.Stream
	for i := 0; i < 2*maxCircuits; i++ {
		s, ok := openCircuit(t, attacker, r.ID(), b.ID())
		if !ok {
			break
		}
		held = append(held, s)
	}
	if got, err := post(t, c, b.CircuitURL(), "hello"); err != nil || string(got) != "echo:hello" {
		t.Fatalf("a member cannot reach another through the relay while a third holds %d circuits to it: %q, %v", len(held), got, err)
	}
	// The pair's circuits count again once they end: after the attacker
	// closes its own, it gets one again.
	for _, s := range held {
		s.Reset()
	}
	for {
		if s, ok := openCircuit(t, attacker, r.ID(), b.ID()); ok {
			s.Reset()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the relay still counts the circuits that ended")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
