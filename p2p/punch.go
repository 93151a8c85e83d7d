package p2p

import (
	"errors"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/rs/zerolog"
)

// Hole punching (DCUtR): two members behind home routers first meet
// through a relay; libp2p's holepunch service then has them dial each
// other's public address at the same moment, so that each router lets the
// other's packets in as the answer to its own member's, and a direct
// connection replaces the relayed one. libp2p tries once, when the relayed
// connection opens. keepPunching tries again while a peer stays relayed: a
// punch that missed (the path between the routers was down for a while,
// or a busy machine dialed too late) would otherwise leave the two relayed
// for as long as the connection lasts.

// punchFirst is how long after a failed punch the next is tried; each
// failure doubles it, up to punchMax.
const (
	punchFirst = 10 * time.Second
	punchMax   = 2 * time.Minute
)

// punchLog logs the outcome of every hole punch attempt: whether members
// behind routers reach each other directly is what an operator asks first.
type punchLog struct{ log zerolog.Logger }

// Trace implements holepunch.EventTracer.
func (l punchLog) Trace(e *holepunch.Event) {
	switch ev := e.Evt.(type) {
	case *holepunch.EndHolePunchEvt:
		if ev.Success {
			l.log.Info().Str("peer", e.Remote.String()).Dur("took", ev.EllapsedTime).Msg("hole punched: a direct connection replaces the relayed one")
		} else {
			l.log.Info().Str("peer", e.Remote.String()).Dur("took", ev.EllapsedTime).Str("err", ev.Error).Msg("a hole punch failed; the relayed connection stays")
		}
	case *holepunch.ProtocolErrorEvt:
		l.log.Debug().Str("peer", e.Remote.String()).Str("err", ev.Error).Msg("hole punching protocol error")
	case *holepunch.DirectDialEvt:
		l.log.Debug().Str("peer", e.Remote.String()).Bool("ok", ev.Success).Dur("took", ev.EllapsedTime).Msg("direct dial before a hole punch")
	}
}

// keepService is a holepunch option that hands the service to the host,
// which libp2p does not otherwise expose: keepPunching asks it again.
func keepService(to **holepunch.Service) holepunch.Option {
	return func(s *holepunch.Service) error {
		*to = s
		return nil
	}
}

// keepPunching tries, every punchFirst, a new hole punch to each peer
// reached only through an inbound relayed connection, backing off per peer
// while punches fail. Only the end a relayed connection came in to may
// start one (the other end's service refuses it), as libp2p does.
func (p *Host) keepPunching() {
	next := map[peer.ID]time.Time{}
	wait := map[peer.ID]time.Duration{}
	t := time.NewTicker(punchFirst)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		relayed := p.inboundRelayed()
		for id := range next {
			if !slices.Contains(relayed, id) {
				delete(next, id)
				delete(wait, id)
			}
		}
		if len(relayed) == 0 || !p.punchReady() {
			continue
		}
		for _, id := range relayed {
			if time.Now().Before(next[id]) {
				continue
			}
			err := p.punch(id)
			switch {
			case p.ctx.Err() != nil:
				return
			case err == nil:
				delete(next, id)
				delete(wait, id)
				continue
			case errors.Is(err, holepunch.ErrHolePunchActive):
				continue
			}
			wait[id] = min(max(2*wait[id], punchFirst), punchMax)
			next[id] = time.Now().Add(wait[id])
			p.log.Info().Err(err).Str("peer", id.String()).Dur("next_in", wait[id]).Msg("a hole punch retry failed; trying again later")
		}
	}
}

// inboundRelayed lists the peers this host reaches only through a relayed
// connection that came in.
func (p *Host) inboundRelayed() []peer.ID {
	var out []peer.ID
	for _, id := range p.h.Network().Peers() {
		inbound := false
		for _, c := range p.h.Network().ConnsToPeer(id) {
			if !isCircuit(c.RemoteMultiaddr()) {
				inbound = false
				break
			}
			inbound = inbound || c.Stat().Direction == network.DirInbound
		}
		if inbound {
			out = append(out, id)
		}
	}
	return out
}

// punchReady says whether the holepunch service runs: it starts once the
// host knows a public address of its own (manet.IsPublicAddr: never on a
// LAN or loopback alone), and sets its DCUtR handler then; DirectConnect
// waits until then, which may be never.
func (p *Host) punchReady() bool {
	return p.punchSvc != nil && slices.Contains(p.h.Mux().Protocols(), holepunch.Protocol)
}

// punch runs one hole punch to peer id and waits for its end, or for the
// host to close.
func (p *Host) punch(id peer.ID) error {
	// DirectConnect first dials the peer plainly when the peerstore holds
	// a public address of it (its URL listed one until AutoNAT found it
	// unreachable, and the peerstore keeps it). That dial holds the port
	// pair the punch then dials from, so the punch leaves from another
	// port, which the other router does not expect, and fails. A peer
	// this host reaches only through a relay is not reachable there
	// anyway: the address goes, and the punch comes first.
	ps := p.h.Peerstore()
	for _, a := range ps.Addrs(id) {
		if !isCircuit(a) && manet.IsPublicAddr(a) {
			ps.SetAddr(id, a, 0)
		}
	}
	done := make(chan error, 1)
	// Not in p.wg: DirectConnect returns soon after the host closes, but
	// could wait forever should the host close in the instant between
	// the service's start and its readiness (see punchReady).
	go func() { done <- p.punchSvc.DirectConnect(id) }()
	select {
	case err := <-done:
		return err
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}
