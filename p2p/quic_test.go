package p2p

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestGroupRelayListensOnQUIC: a host started without QUIC (no --relay)
// listens on TCP alone; once a group's settings give it a relay, it
// listens on QUIC too, as a host given relays at start does, and a peer
// that dials it on its QUIC address alone reaches it. Watched to fail
// without listenQUIC in SetGroupRelays (no QUIC address).
func TestGroupRelayListensOnQUIC(t *testing.T) {
	r := newHost(t, newSeed(t), Config{RelayFor: func([32]byte) bool { return true }})
	a := newHost(t, newSeed(t), Config{})
	b := newHost(t, newSeed(t), Config{})
	quicAddrs := func() []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, x := range a.h.Network().ListenAddresses() {
			if isQUIC(x) {
				out = append(out, x)
			}
		}
		return out
	}
	if q := quicAddrs(); len(q) != 0 {
		t.Fatalf("listens on QUIC before any relay: %v", q)
	}
	a.SetGroupRelays([]peer.AddrInfo{{ID: r.ID(), Addrs: r.Addrs()}})
	q := quicAddrs()
	if len(q) != 1 {
		t.Fatalf("QUIC listeners after a group's relay: %v, want one", q)
	}
	if !strings.Contains(a.URL(), "/quic-v1/p2p/"+a.ID().String()) {
		t.Errorf("the URL names no QUIC address: %s", a.URL())
	}
	got, err := post(t, b, FormatURL(a.ID(), q), "over QUIC")
	if err != nil || string(got) != "echo:over QUIC" {
		t.Fatalf("over the QUIC address alone: %q, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if a.WaitRelays(ctx) != 1 {
		t.Error("no slot on the group's relay")
	}
	// Another change of the relays opens no second listener.
	a.SetGroupRelays(nil)
	a.SetGroupRelays([]peer.AddrInfo{{ID: r.ID(), Addrs: r.Addrs()}})
	if q := quicAddrs(); len(q) != 1 {
		t.Errorf("QUIC listeners after the relays changed again: %v, want one", q)
	}
}
