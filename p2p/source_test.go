package p2p

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The node's limits per source (node/limit.go) refuse every frame of a
// source whose requests failed too often. A relayed connection's remote
// address is the relay's, shared by everyone it relays, so its source is
// the peer id: otherwise a peer that sends junk through a relay (a member,
// or anyone on a relay-only node without --allow) would have the frames of
// every member relayed by it refused. Our relays set no limit on the
// connections they relay, and libp2p then does not mark them limited: the
// source was the relay's IP address.
func TestRelayedSourceIsThePeer(t *testing.T) {
	r := newHost(t, newSeed(t), Config{RelayFor: func([32]byte) bool { return true }})
	ri := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	a := newHost(t, newSeed(t), Config{})
	b := newHost(t, newSeed(t), Config{Relays: []peer.AddrInfo{ri}})
	srcs := make(chan string, 1)
	b.SetHandler(func(_ context.Context, src string, _ int64, body io.Reader) (int, []byte) {
		io.Copy(io.Discard, body)
		srcs <- src
		return 200, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.WaitRelays(ctx) != 1 {
		t.Fatal("no slot on the relay")
	}
	if _, err := post(t, a, b.CircuitURL(), "through the relay"); err != nil {
		t.Fatal(err)
	}
	if src := <-srcs; src != a.ID().String() {
		t.Fatalf("a frame through the relay came from source %q, want the peer %s", src, a.ID())
	}
}

// The limits per source count an IPv6 address by its /64, as over HTTP
// (node.sourceOf): one host usually has a whole /64, and a source per
// address would give it as many buckets as it likes.
func TestIPv6SourceIsItsSlash64(t *testing.T) {
	b := newHost(t, newSeed(t), Config{Listen: "/ip6/::1/tcp/0"})
	a := newHost(t, newSeed(t), Config{Listen: "/ip6/::1/tcp/0"})
	srcs := make(chan string, 1)
	b.SetHandler(func(_ context.Context, src string, _ int64, body io.Reader) (int, []byte) {
		io.Copy(io.Discard, body)
		srcs <- src
		return 200, nil
	})
	if _, err := post(t, a, b.URL(), "over IPv6"); err != nil {
		t.Fatal(err)
	}
	if src := <-srcs; src != "::/64" {
		t.Fatalf("a frame from ::1 came from source %q, want ::/64", src)
	}
}
