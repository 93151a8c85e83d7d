package p2p

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/rs/zerolog"

	"github.com/demes/demes/internal/testutil"
)

// The verdict is AutoNAT v2's per-address answer when there is one (one
// reachable address is enough to be public), and v1's host-wide answer
// only while v2 has none.
func TestVerdict(t *testing.T) {
	tcp := ma.StringCast("/ip4/192.0.0.66/tcp/7948")
	quic := ma.StringCast("/ip4/192.0.0.66/udp/7948/quic-v1")
	for _, c := range []struct {
		name  string
		addrs event.EvtHostReachableAddrsChanged
		v1    network.Reachability
		want  string
	}{
		{"nothing known", event.EvtHostReachableAddrsChanged{}, network.ReachabilityUnknown, ReachUnknown},
		{"addresses not judged yet", event.EvtHostReachableAddrsChanged{Unknown: []ma.Multiaddr{tcp, quic}}, network.ReachabilityUnknown, ReachUnknown},
		{"one reachable", event.EvtHostReachableAddrsChanged{Reachable: []ma.Multiaddr{tcp}, Unknown: []ma.Multiaddr{quic}}, network.ReachabilityUnknown, ReachPublic},
		{"one reachable, one not", event.EvtHostReachableAddrsChanged{Reachable: []ma.Multiaddr{quic}, Unreachable: []ma.Multiaddr{tcp}}, network.ReachabilityUnknown, ReachPublic},
		{"unreachable, the other unknown", event.EvtHostReachableAddrsChanged{Unreachable: []ma.Multiaddr{tcp}, Unknown: []ma.Multiaddr{quic}}, network.ReachabilityUnknown, ReachPrivate},
		{"v2 wins over v1", event.EvtHostReachableAddrsChanged{Unreachable: []ma.Multiaddr{tcp}}, network.ReachabilityPublic, ReachPrivate},
		{"v1 public alone", event.EvtHostReachableAddrsChanged{}, network.ReachabilityPublic, ReachPublic},
		{"v1 private alone", event.EvtHostReachableAddrsChanged{Unknown: []ma.Multiaddr{tcp}}, network.ReachabilityPrivate, ReachPrivate},
	} {
		if got := verdict(c.addrs, c.v1); got != c.want {
			t.Errorf("%s: verdict %q, want %q", c.name, got, c.want)
		}
	}
}

// A host on loopback has no public address for AutoNAT to test: it
// reports unknown, and lists the relay it holds a slot on once it holds
// one. An AutoNAT event changes the state, and the same event twice is
// logged once.
func TestReachabilityOnLoopback(t *testing.T) {
	seedA := newSeed(t)
	r := newHost(t, newSeed(t), Config{RelayFor: func(k [32]byte) bool { return k == signKeyOf(seedA) }})
	log := &lockedBuf{}
	a := newHost(t, seedA, Config{Relays: []peer.AddrInfo{{ID: r.ID(), Addrs: r.Addrs()}}, Logger: zerolog.New(log)})
	start := a.Reachability()
	if start.State != ReachUnknown {
		t.Fatalf("state %q at start, want %q", start.State, ReachUnknown)
	}
	if start.Since.IsZero() || time.Since(start.Since) > time.Minute {
		t.Errorf("since %v at start, want the host's start", start.Since)
	}
	testutil.Eventually(t, 30*time.Second, "a slot on the relay", func() bool { return len(a.Reachability().Relays) == 1 })
	rel := a.Reachability().Relays[0]
	if !strings.HasSuffix(rel.String(), "/p2p/"+r.ID().String()) || !strings.HasPrefix(rel.String(), "/ip4/127.0.0.1/") {
		t.Errorf("relay listed as %s, want its loopback address and peer id %s", rel, r.ID())
	}

	pub := ma.StringCast("/ip4/192.0.0.66/tcp/7948")
	for range 2 {
		a.reachEvent(event.EvtHostReachableAddrsChanged{Unreachable: []ma.Multiaddr{pub}})
	}
	got := a.Reachability()
	if got.State != ReachPrivate || len(got.Unreachable) != 1 || !got.Unreachable[0].Equal(pub) {
		t.Errorf("after an unreachable address: %+v, want private with %s unreachable", got, pub)
	}
	if !got.Since.After(start.Since) {
		t.Errorf("since %v did not move on from %v when the state changed", got.Since, start.Since)
	}
	if n := strings.Count(log.String(), "cannot dial this node"); n != 1 {
		t.Errorf("the change to private logged %d times, want once:\n%s", n, log.String())
	}
}

// lockedBuf is a log that goroutines of the host may write at once.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
