package nodetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/p2p"
)

// relayWait bounds how long a member's host waits for its slot on the
// cluster's relay.
const relayWait = 10 * time.Second

// startRelay starts the circuit relay of a cluster with Options.Relayed: a
// host with a fresh identity on loopback that relays for anyone.
func (c *Cluster) startRelay() error {
	seed := make([]byte, 32)
	rand.Read(seed)
	h, err := p2p.New(p2p.Config{
		Seed: seed, Listen: "127.0.0.1:0", MaxFrame: crypto.MaxFrame, PortMap: false,
		RelayFor: func([32]byte) bool { return true },
	})
	if err != nil {
		return fmt.Errorf("start the relay: %w", err)
	}
	c.relay = h
	return nil
}

// startHost starts member m's libp2p host on loopback, once for the
// member's life in the cluster, so that its URL survives restarts. Frames
// and lost connections go to the member's running node; frames are
// answered 503 while it is down.
// With Options.Relayed the host holds a slot on the cluster's relay and the
// member advertises only its circuit address, so that the others reach it
// through the relay.
func (c *Cluster) startHost(m *Member) error {
	cfg := p2p.Config{Seed: m.ID.Private()[:32], Listen: "127.0.0.1:0", MaxFrame: crypto.MaxFrame, PortMap: false,
		Known: func(k [32]byte) bool {
			n := c.Node(m.Index)
			return n != nil && n.Member(k)
		},
	}
	if c.relay != nil {
		cfg.Relays = []peer.AddrInfo{{ID: c.relay.ID(), Addrs: c.relay.Addrs()}}
	}
	h, err := p2p.New(cfg)
	if err != nil {
		return fmt.Errorf("libp2p host of %s: %w", m.Name, err)
	}
	m.host = h
	h.SetHandler(func(ctx context.Context, src string, size int64, body io.Reader) (int, []byte) {
		n := c.Node(m.Index)
		if n == nil {
			return http.StatusServiceUnavailable, []byte("node stopped")
		}
		code, resp, _ := n.ServeFrame(ctx, src, size, body)
		return code, resp
	})
	// As in demes serve: a closed connection says a member's process may
	// be gone. The URL stays fixed (no OnAddrsChanged): the addresses of a
	// host on loopback do not change, and a relayed member advertises
	// only its circuit address.
	h.OnPeerDown(func(k [32]byte) {
		if n := c.Node(m.Index); n != nil {
			n.PeerGone(k)
		}
	})
	if c.relay == nil {
		m.URL = h.URL()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayWait)
	defer cancel()
	if h.WaitRelays(ctx) != 1 {
		return fmt.Errorf("%s got no slot on the relay within %s", m.Name, relayWait)
	}
	if m.URL = h.CircuitURL(); m.URL == "" {
		return fmt.Errorf("%s has a slot on the relay but no circuit address", m.Name)
	}
	return nil
}

// Host returns the member's libp2p host (nil unless the cluster runs on
// libp2p).
func (m *Member) Host() *p2p.Host { return m.host }

// Paths counts how the members' hosts reach each other now, one count per
// path ("direct", "relayed", or "" when not connected), over every ordered
// pair of members. It is empty unless the cluster runs on libp2p.
func (c *Cluster) Paths() map[string]int {
	out := map[string]int{}
	for _, a := range c.members {
		for _, b := range c.members {
			if a != b && a.host != nil {
				out[a.host.Path(b.ID.Public().Sign)]++
			}
		}
	}
	return out
}

// p2pLink is the link of a member on libp2p: p2p URLs over its host,
// others over HTTP.
func p2pLink(m *Member) node.Link {
	m.link = node.NewHTTPLink()
	return node.SchemeLink{HTTP: m.link, P2P: m.host}
}
