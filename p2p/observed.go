package p2p

import (
	"net/netip"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Observed addresses. Every peer that connects tells the host, in libp2p's
// identify, the address it sees the host at, and the host believes one
// peer (observers): so any peer at all, a stranger with a key of its own
// making, could have the host advertise addresses of its choosing. The
// URL (the address the node commits to its groups' logs, and that the
// members' hosts keep for it) then named them, and lost the real ones: its
// loopback addresses when it had no other; with each such change an
// address entry in every group's log; and ports that accept and never
// answer, lower than the real one, kept the members from reaching the node
// again (they dial the lowest ports first, 8 at a time). So Addrs names an
// address that is on none of the machine's interfaces (an observed one, or
// a router's port mapping) only while a trusted peer saw the host there: a
// member or invitee (Config.Known) or a relay the host holds a slot on,
// or the router mapped it for the host (mappedNAT: the router's word, not
// a peer's; without it, a node behind a router that maps ports offered
// only its private address, TestNetnsPortMapping).
// Hole punching still tries every observed address (libp2p's own list),
// where a lie costs a failed try.

// watchObserved records what trusted peers saw the host at, per
// connection, and has watchAddrs look at the URL again.
func (p *Host) watchObserved(sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-p.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			evt, ok := e.(event.EvtPeerIdentificationCompleted)
			if !ok || evt.ObservedAddr == nil || evt.Conn == nil || !p.trusted(evt.Peer) {
				continue
			}
			tw, ok := thinWaist(evt.ObservedAddr)
			if !ok {
				continue
			}
			p.mu.Lock()
			p.observed[evt.Conn] = tw
			p.mu.Unlock()
			p.pokeAddrs()
		}
	}
}

// trusted reports whether the host believes what peer id says it sees the
// host at.
func (p *Host) trusted(id peer.ID) bool {
	p.mu.Lock()
	_, relay := p.relays[id]
	p.mu.Unlock()
	if relay {
		return true
	}
	k, ok := SignKey(id)
	return ok && p.cfg.Known != nil && p.cfg.Known(k)
}

// forgetObserved drops what the peer on c saw, once c closed.
func (p *Host) forgetObserved(c network.Conn) {
	p.mu.Lock()
	_, ok := p.observed[c]
	delete(p.observed, c)
	p.mu.Unlock()
	if ok {
		p.pokeAddrs()
	}
}

// seenByTrusted drops from addrs those that are on none of the machine's
// interfaces and that no trusted peer connected now saw the host at.
func (p *Host) seenByTrusted(addrs []ma.Multiaddr) []ma.Multiaddr {
	local, err := localIPs()
	if err != nil {
		return addrs
	}
	p.mu.Lock()
	seen := map[string]bool{}
	for _, tw := range p.observed {
		seen[tw] = true
	}
	p.mu.Unlock()
	var out []ma.Multiaddr
	for _, a := range addrs {
		ip, err := manet.ToIP(a)
		if err != nil {
			out = append(out, a)
			continue
		}
		if ipa, ok := netip.AddrFromSlice(ip); ok && local[ipa.Unmap()] {
			out = append(out, a)
			continue
		}
		if tw, ok := thinWaist(a); ok && (seen[tw] || p.nat.has(tw)) {
			out = append(out, a)
		}
	}
	return out
}

// thinWaistOf is thinWaist for an address that may be nil.
func thinWaistOf(a ma.Multiaddr) (string, bool) {
	if a == nil {
		return "", false
	}
	return thinWaist(a)
}

// thinWaist returns a's IP address and its TCP or UDP port, as a key.
func thinWaist(a ma.Multiaddr) (string, bool) {
	ip, rest := ma.SplitFirst(a)
	if ip == nil || (ip.Code() != ma.P_IP4 && ip.Code() != ma.P_IP6) {
		return "", false
	}
	tr, _ := ma.SplitFirst(rest)
	if tr == nil || (tr.Code() != ma.P_TCP && tr.Code() != ma.P_UDP) {
		return "", false
	}
	return ip.String() + tr.String(), true
}

// mappedNAT is libp2p's NAT manager (port mapping by UPnP or NAT-PMP),
// remembering the address the router mapped for each listen address.
type mappedNAT struct {
	basichost.NATManager
	mu     sync.Mutex
	mapped map[string]string // listen address -> thin waist of its mapping
}

// GetMapping is the NAT manager's, noted.
func (m *mappedNAT) GetMapping(listen ma.Multiaddr) ma.Multiaddr {
	got := m.NATManager.GetMapping(listen)
	m.mu.Lock()
	defer m.mu.Unlock()
	if tw, ok := thinWaistOf(got); ok {
		m.mapped[listen.String()] = tw
	} else {
		delete(m.mapped, listen.String())
	}
	return got
}

// has reports whether the router maps a listen address of the host to tw
// (a thin waist). A nil m (no port mapping asked for) has none.
func (m *mappedNAT) has(tw string) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.mapped {
		if v == tw {
			return true
		}
	}
	return false
}
