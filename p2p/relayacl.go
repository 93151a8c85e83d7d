package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// relayRecheck is how often a relaying host asks RelayFor again about the
// peers it admitted. RelayFor's answer changes when a member leaves or is
// removed; libp2p's relay asks its ACL only when a peer reserves a slot or
// opens a circuit, and keeps a reservation for an hour and a circuit for as
// long as it lasts. Without the recheck a removed member kept its slot, and
// its relayed connections to the members, until they ended by themselves.
const relayRecheck = 5 * time.Second

// acl admits to the relay the peers whose key RelayFor accepts, both to
// reserve a slot and as either end of a relayed connection, and remembers
// whom it admitted, for sweep.
type acl struct {
	allow func([32]byte) bool

	mu       sync.Mutex
	admitted map[peer.ID]bool
}

func newACL(allow func([32]byte) bool) *acl {
	return &acl{allow: allow, admitted: map[peer.ID]bool{}}
}

func (a *acl) ok(id peer.ID) bool {
	k, ok := SignKey(id)
	return ok && a.allow(k)
}

// admit reports whether every one of ids is allowed, and remembers them
// when they are.
func (a *acl) admit(ids ...peer.ID) bool {
	for _, id := range ids {
		if !a.ok(id) {
			return false
		}
	}
	a.mu.Lock()
	for _, id := range ids {
		a.admitted[id] = true
	}
	a.mu.Unlock()
	return true
}

// AllowReserve is asked by the relay before it gives id a slot.
func (a *acl) AllowReserve(id peer.ID, _ ma.Multiaddr) bool { return a.admit(id) }

// AllowConnect is asked by the relay before it opens a circuit.
func (a *acl) AllowConnect(src peer.ID, _ ma.Multiaddr, dst peer.ID) bool {
	return a.admit(src, dst)
}

// sweep returns, and forgets, the admitted peers RelayFor no longer
// accepts. It forgets too those no longer connected (a reservation or a
// circuit needs a connection; a peer that comes back is admitted again),
// so that a relay for anyone does not remember every peer it ever served.
func (a *acl) sweep(connected func(peer.ID) bool) []peer.ID {
	a.mu.Lock()
	ids := make([]peer.ID, 0, len(a.admitted))
	for id := range a.admitted {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	var gone, revoked []peer.ID
	for _, id := range ids {
		// RelayFor outside a.mu: it takes the node's locks.
		switch {
		case !connected(id):
			gone = append(gone, id)
		case !a.ok(id):
			revoked = append(revoked, id)
		}
	}
	a.mu.Lock()
	for _, id := range append(gone, revoked...) {
		delete(a.admitted, id)
	}
	a.mu.Unlock()
	return revoked
}

// sweepRelay closes, every relayRecheck, the connections of the peers
// the relay admitted and RelayFor no longer accepts: their slot goes with
// their last connection (the relay drops a reservation when its peer
// disconnects), and so do the circuits through this host to or from
// them. They may connect again, as any stranger may; the relay refuses
// them a slot and a circuit.
func (p *Host) sweepRelay(a *acl, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		connected := func(id peer.ID) bool { return p.h.Network().Connectedness(id) == network.Connected }
		for _, id := range a.sweep(connected) {
			p.log.Info().Str("peer", id.String()).Msg("closing the connections of a peer this host no longer relays for (removed, or left every group)")
			p.h.Network().ClosePeer(id)
		}
	}
}
