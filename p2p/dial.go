package p2p

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// quicDelay is how long a dial waits for TCP before it tries a peer's QUIC
// addresses.
const quicDelay = 250 * time.Millisecond

// tcpFirst ranks a peer's direct TCP addresses first, then QUIC ones, then
// relayed ones as libp2p's default ranker does. libp2p prefers QUIC; we
// prefer TCP between members because a member's process that dies (kill -9,
// a crash) has its TCP connections closed by its kernel at once, which the
// others see as the connection's end (Host.OnPeerDown) and a refused dial,
// so the host's best backup takes over within a round trip (node/gone.go).
// A QUIC peer that dies sends nothing: the others learn it only when raft's
// election timeout passes. QUIC stays the fallback (and hole punching uses
// both).
//
// QUIC waits only where there is a TCP address to try first: a dial given
// QUIC addresses alone (a relay's, connectRelayQUIC) starts at once.
func tcpFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	ranked := swarm.DefaultDialRanker(addrs)
	anyTCP := false
	for _, a := range ranked {
		anyTCP = anyTCP || !isCircuit(a.Addr) && isTCP(a.Addr)
	}
	for i, a := range ranked {
		if isCircuit(a.Addr) {
			continue
		}
		if _, err := a.Addr.ValueForProtocol(ma.P_TCP); err == nil {
			ranked[i].Delay = 0
		} else if anyTCP && a.Delay < quicDelay {
			ranked[i].Delay = quicDelay
		}
	}
	return ranked
}
