package p2p

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// relaySlot is the host's state for one relay it holds, or seeks, a slot
// on.
type relaySlot struct {
	info peer.AddrInfo
	// fixed marks a relay of Config.Relays, which SetGroupRelays leaves
	// alone.
	fixed bool
	// lost wakes keepReservation when the connection to the relay ends:
	// a restarted relay has forgotten the slot.
	lost chan struct{}
	// stop ends keepReservation when SetGroupRelays drops the relay.
	stop context.CancelFunc
}

// addRelay starts holding a slot on relay r, under p.mu.
func (p *Host) addRelay(r peer.AddrInfo, fixed bool) {
	if p.ctx.Err() != nil {
		return // closed: Close waits for p.wg, which must not grow
	}
	ctx, stop := context.WithCancel(p.ctx)
	slot := &relaySlot{info: r, fixed: fixed, lost: make(chan struct{}, 1), stop: stop}
	p.relays[r.ID] = slot
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.keepReservation(ctx, slot)
	}()
}

// SetGroupRelays makes the host hold a slot on each of relays, besides
// those of Config.Relays: the relays the settings of the node's groups
// list. A relay it held a slot on for an earlier call and that relays no
// longer names is let go (its slot lapses). The host's URL then names a
// circuit address through each relay, and the OnAddrsChanged function
// hears of it. With a relay, the host listens on QUIC too (quic.go), as
// one given relays at start does.
func (p *Host) SetGroupRelays(relays []peer.AddrInfo) {
	want := map[peer.ID]peer.AddrInfo{}
	for _, r := range relays {
		if r.ID != p.h.ID() {
			want[r.ID] = r
		}
	}
	p.mu.Lock()
	for id, slot := range p.relays {
		if _, ok := want[id]; !ok && !slot.fixed {
			slot.stop()
			delete(p.relays, id)
			delete(p.reserved, id)
		}
	}
	for id, r := range want {
		if _, ok := p.relays[id]; !ok {
			p.log.Info().Str("relay", id.String()).Msg("reserving a slot on a relay of a group's settings")
			p.addRelay(r, false)
		}
	}
	p.mu.Unlock()
	if len(want) > 0 {
		if added, err := p.listenQUIC(); err != nil {
			p.log.Warn().Err(err).Msg("not listening on QUIC: hole punching through routers tries TCP alone")
		} else if len(added) > 0 {
			p.log.Info().Str("listen", joinAddrs(added)).Msg("listening on QUIC too, for hole punching, now that a group lists relays")
		}
	}
	p.pokeAddrs()
}

// UseGroupRelays is [Host.SetGroupRelays] for relay addresses as a
// group's settings hold them (see [ParseAddrs]); one that does not parse
// is logged and left out.
func (p *Host) UseGroupRelays(addrs []string) {
	var relays []peer.AddrInfo
	for _, a := range addrs {
		ai, err := ParseAddrs(a)
		if err != nil {
			p.log.Warn().Err(err).Str("relay", a).Msg("a group's relay address does not parse; not using it")
			continue
		}
		relays = append(relays, ai)
	}
	p.SetGroupRelays(relays)
}

// relayInfos returns the relays the host holds or seeks a slot on.
func (p *Host) relayInfos() []peer.AddrInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(p.relays))
	for _, r := range p.relays {
		out = append(out, r.info)
	}
	return out
}

// Reserved reports whether the host holds a slot on the relay with peer
// id id now.
func (p *Host) Reserved(id peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reserved[id] != nil
}

// WaitRelays waits until the host holds a slot on every relay it was given
// (Config.Relays and SetGroupRelays), or ctx ends; it reports how many it
// holds.
func (p *Host) WaitRelays(ctx context.Context) int {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		n := 0
		for id := range p.relays {
			if p.reserved[id] != nil {
				n++
			}
		}
		all := n == len(p.relays)
		p.mu.Unlock()
		if all {
			return n
		}
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}

// keepReservation holds a slot on a relay until ctx ends (the host closes,
// or SetGroupRelays drops the relay).
func (p *Host) keepReservation(ctx context.Context, slot *relaySlot) {
	r := slot.info
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		p.connectRelayQUIC(rctx, r)
		res, err := client.Reserve(rctx, p.h, r)
		cancel()
		p.mu.Lock()
		if ctx.Err() != nil {
			// Dropped meanwhile: SetGroupRelays cleared its state.
			p.mu.Unlock()
			return
		}
		if err == nil {
			p.reserved[r.ID] = res
		} else {
			p.reserved[r.ID] = nil
		}
		p.mu.Unlock()
		// A slot gained or lost changes the circuit addresses; a renewal
		// changes nothing, and watchAddrs then reports nothing.
		p.pokeAddrs()
		if err != nil {
			p.log.Warn().Err(err).Str("relay", r.ID.String()).Msg("no slot on relay; trying again")
		}
		wait := reserveEvery
		if err != nil {
			// A relay that refused or was down: try again soon, so
			// that a relay started after this node is used within
			// seconds.
			wait = reserveRetry
		} else if half := time.Until(res.Expiration) / 2; half < wait {
			wait = max(half, reserveRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-slot.lost:
			// Give a restarting relay a moment to listen again.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// connectRelayQUIC connects to relay r over QUIC, when this host listens on
// QUIC, r has a QUIC address and the host is not connected to r yet, so
// that the slot is held over UDP: the relay then tells this host (identify's
// observed address) the UDP address its router's NAT gives it, which is
// what a hole punch over UDP starts from. Held over TCP, the slot teaches
// the host only its TCP address, and behind a router that lets only UDP
// through unasked (most do better with UDP than with a simultaneous TCP
// open) the members would stay relayed (e2e/netns TestNetnsHolePunchQUIC).
// Where the QUIC dial fails, Reserve dials as usual, TCP first.
func (p *Host) connectRelayQUIC(ctx context.Context, r peer.AddrInfo) {
	if p.h.Network().Connectedness(r.ID) == network.Connected || !p.listensQUIC() {
		return
	}
	var quic []ma.Multiaddr
	for _, a := range r.Addrs {
		if isQUIC(a) {
			quic = append(quic, a)
		}
	}
	if len(quic) == 0 {
		return
	}
	if err := p.h.Connect(ctx, peer.AddrInfo{ID: r.ID, Addrs: quic}); err != nil {
		p.log.Debug().Err(err).Str("relay", r.ID.String()).Msg("relay not reached over QUIC; trying its other addresses")
	}
}

// listensQUIC reports whether the host listens on a QUIC address.
func (p *Host) listensQUIC() bool {
	for _, a := range p.h.Network().ListenAddresses() {
		if isQUIC(a) {
			return true
		}
	}
	return false
}
