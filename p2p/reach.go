package p2p

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reachability from the internet: can a peer out there open a connection
// to this host, or does it depend on a relay?
//
// libp2p's AutoNAT v2 answers per address. The host tracks its public
// addresses (its listen addresses where they are public, and the
// addresses peers observe it at, through a home router's NAT); for each,
// it asks connected peers that serve AutoNAT v2 (every go-libp2p host
// with AutoNAT v2 enabled does, members and relays alike) to dial it back
// from another connection. An address is reachable after two more
// successful dial-backs than failed ones, unreachable after two more
// failures; each server answers a host at most once every two minutes.
// The host's addresses manager publishes the outcome as
// event.EvtHostReachableAddrsChanged, the most precise signal go-libp2p
// v0.52.0 has; AutoNAT v1's event.EvtLocalReachabilityChanged (one verdict
// for the whole host) comes only from peers that run the v1 service,
// which demes does not enable, and is used only while v2 has no answer.
//
// AutoNAT tests public addresses only: a node on a LAN, or one whose
// peers are all on private networks, never gets an answer and stays
// [ReachUnknown].

// The states of a [Reachability].
const (
	// ReachUnknown: AutoNAT has not concluded (yet).
	ReachUnknown = "unknown"
	// ReachPublic: a peer confirmed that at least one public address of
	// this host accepts connections from the internet.
	ReachPublic = "public"
	// ReachPrivate: peers failed to dial this host's public addresses,
	// and none was found reachable: the host is behind a NAT or a
	// firewall, and peers on the internet reach it only through a relay
	// (or a hole punch).
	ReachPrivate = "private"
)

// Reachability is what the host knows about whether peers on the internet
// can dial it, and through which relays they reach it otherwise.
type Reachability struct {
	// State is ReachPublic, ReachPrivate or ReachUnknown.
	State string
	// Reachable, Unreachable and Unknown are the host's public addresses
	// that AutoNAT v2 confirmed reachable, found unreachable, or has not
	// judged yet.
	Reachable, Unreachable, Unknown []ma.Multiaddr
	// Relays are the addresses of the circuit relays this host holds a
	// slot on now: a peer that cannot dial the host reaches it through
	// them.
	Relays []ma.Multiaddr
	// Since is when State last changed (when the host started, while it
	// is ReachUnknown from the start).
	Since time.Time
}

// reachState is the host's latest AutoNAT news, kept by watchReachability.
type reachState struct {
	mu       sync.Mutex
	started  time.Time
	v1       network.Reachability
	addrs    event.EvtHostReachableAddrsChanged
	verdict  string
	since    time.Time
	reported string // what was last logged, so that each change is logged once
}

// verdict is the host's state from AutoNAT's latest events: v2's answer
// per address first, v1's for the whole host while v2 has none.
func verdict(addrs event.EvtHostReachableAddrsChanged, v1 network.Reachability) string {
	switch {
	case len(addrs.Reachable) > 0:
		return ReachPublic
	case len(addrs.Unreachable) > 0:
		return ReachPrivate
	case v1 == network.ReachabilityPublic:
		return ReachPublic
	case v1 == network.ReachabilityPrivate:
		return ReachPrivate
	}
	return ReachUnknown
}

// Reachability returns what AutoNAT found about the host's reachability
// from the internet, and the relays it holds a slot on.
func (p *Host) Reachability() Reachability {
	r := &p.reach
	r.mu.Lock()
	out := Reachability{
		State:       r.verdict,
		Reachable:   slices.Clone(r.addrs.Reachable),
		Unreachable: slices.Clone(r.addrs.Unreachable),
		Unknown:     slices.Clone(r.addrs.Unknown),
		Since:       r.since,
	}
	r.mu.Unlock()
	if out.State == "" {
		out.State = ReachUnknown
	}
	p.mu.Lock()
	for _, rel := range p.cfg.Relays {
		if p.reserved[rel.ID] == nil {
			continue
		}
		// One address per relay, for a person to read: the first that
		// is neither loopback nor a circuit, else the first.
		id := ma.StringCast("/p2p/" + rel.ID.String())
		pick := id
		for i, a := range rel.Addrs {
			if i == 0 || !isCircuit(a) && !manet.IsIPLoopback(a) {
				pick = a.Encapsulate(id)
			}
			if !isCircuit(a) && !manet.IsIPLoopback(a) {
				break
			}
		}
		out.Relays = append(out.Relays, pick)
	}
	p.mu.Unlock()
	return out
}

// startReachability follows AutoNAT's events for as long as the host runs.
// Should the subscription fail, the host works on and reports
// ReachUnknown: reachability is shown to the user, nothing depends on it.
func (p *Host) startReachability() {
	now := time.Now()
	p.reach.mu.Lock()
	p.reach.started, p.reach.since, p.reach.verdict = now, now, ReachUnknown
	p.reach.mu.Unlock()
	sub, err := p.h.EventBus().Subscribe([]any{new(event.EvtHostReachableAddrsChanged), new(event.EvtLocalReachabilityChanged)})
	if err != nil {
		p.log.Warn().Err(err).Msg("cannot follow AutoNAT; this node's reachability from the internet stays unknown")
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer sub.Close()
		for {
			select {
			case <-p.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				p.reachEvent(e)
			}
		}
	}()
}

// reachEvent takes one AutoNAT event in and logs the host's reachability
// when it changed.
func (p *Host) reachEvent(e any) {
	r := &p.reach
	r.mu.Lock()
	switch ev := e.(type) {
	case event.EvtHostReachableAddrsChanged:
		r.addrs = ev
	case event.EvtLocalReachabilityChanged:
		r.v1 = ev.Reachability
	default:
		r.mu.Unlock()
		return
	}
	v := verdict(r.addrs, r.v1)
	now := time.Now()
	if v != r.verdict {
		r.verdict, r.since = v, now
	}
	line := v + " " + joinAddrs(r.addrs.Reachable) + " / " + joinAddrs(r.addrs.Unreachable)
	changed := line != r.reported
	r.reported = line
	took := now.Sub(r.started)
	addrs := r.addrs
	r.mu.Unlock()
	if !changed {
		return
	}
	l := p.log.Info().Str("reachability", v).
		Strs("reachable", addrStrings(addrs.Reachable)).
		Strs("unreachable", addrStrings(addrs.Unreachable)).
		Strs("unknown", addrStrings(addrs.Unknown)).
		Dur("after", took)
	switch v {
	case ReachPublic:
		l.Msg("AutoNAT: peers on the internet can dial this node")
	case ReachPrivate:
		l.Msg("AutoNAT: peers on the internet cannot dial this node; it is reachable only through its relays (or a hole punch)")
	default:
		l.Msg("AutoNAT: this node's reachability from the internet is not known yet")
	}
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func joinAddrs(as []ma.Multiaddr) string { return strings.Join(addrStrings(as), ",") }
