package p2p

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// A machine that changes networks while its node runs (a laptop carried
// from one Wi-Fi to another) loses an address and gains another. libp2p
// copes, but only after a minute or so, and the group hears nothing from
// the member meanwhile:
//
//  1. Its connections from the old address are dead, yet nothing closes
//     them: the kernel will not send from an address the machine no longer
//     has, so no FIN or reset leaves, and yamux's keepalive gives up only
//     after 30 s without a frame and a 10 s ping. Until then every stream
//     to those peers opens on a dead connection. [Host.watchInterfaces]
//     closes them as soon as the address is gone; the node's next message
//     dials again, from the new address.
//  2. The other end's connection is as dead and as open. When the moved
//     member dials it again, that end holds two connections to it, and
//     libp2p opens new streams on the one with the most streams: the dead
//     one. A request that times out on a connection while a newer one to
//     the same peer is open closes the older ([Host.dropSuperseded]).
//  3. libp2p reads the interfaces' addresses again only once a minute, so
//     the URL the node advertises would name the dead address (and lack
//     the new one) for up to a minute: [Host.Addrs] corrects libp2p's
//     list with what the watcher saw come and go.

// ifaceEvery is how often the host looks at the machine's addresses: one
// netlink dump, cheap, and a moved member is noticed within a second.
const ifaceEvery = time.Second

// ifaceFresh is how long Addrs adds an address that appeared on an
// interface: past it, libp2p's own list has it (its cache of interface
// addresses lives a minute, and it recomputes every 5 s), and libp2p's
// word wins, which may drop an address AutoNAT found unreachable.
const ifaceFresh = 2 * time.Minute

// localIPs returns the machine's interface addresses, without IPv6 link
// local ones (which libp2p does not advertise either).
func localIPs() (map[netip.Addr]bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	ips := map[netip.Addr]bool{}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if ok && !ip.Unmap().IsLinkLocalUnicast() {
			ips[ip.Unmap()] = true
		}
	}
	return ips, nil
}

// watchInterfaces looks at the machine's addresses every ifaceEvery; when
// some are gone, it closes the connections that used them, and when any
// came or went it has watchAddrs look at the URL again.
func (p *Host) watchInterfaces() {
	last, err := localIPs()
	if err != nil {
		p.log.Warn().Err(err).Msg("cannot read the machine's addresses; a change of network will be noticed late")
	}
	t := time.NewTicker(ifaceEvery)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		now, err := localIPs()
		if err != nil || maps.Equal(now, last) {
			continue
		}
		lost, gained := p.sawInterfaces(last, now)
		last = now
		closed := p.closeFrom(lost)
		p.log.Info().Str("lost", fmt.Sprint(lost)).Str("gained", fmt.Sprint(gained)).Int("closed", closed).
			Msg("the machine's addresses changed; connections from lost ones closed")
		p.pokeAddrs()
	}
}

// sawInterfaces records a change of the machine's addresses from last to
// now for Addrs, and returns the addresses lost and gained.
func (p *Host) sawInterfaces(last, now map[netip.Addr]bool) (lost, gained []netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip := range last {
		if !now[ip] {
			lost = append(lost, ip)
			p.goneIPs[ip] = true
			delete(p.cameIPs, ip)
		}
	}
	for ip := range now {
		if !last[ip] {
			gained = append(gained, ip)
			delete(p.goneIPs, ip)
			p.cameIPs[ip] = time.Now()
		}
	}
	return lost, gained
}

// closeFrom closes the host's connections whose local address is one of
// ips, and says how many: the machine no longer has those addresses, so
// nothing can pass on them again.
func (p *Host) closeFrom(ips []netip.Addr) int {
	if len(ips) == 0 {
		return 0
	}
	n := 0
	for _, c := range p.h.Network().Conns() {
		ip, err := manet.ToIP(c.LocalMultiaddr())
		if err != nil {
			continue // unspecified or not IP (a relayed connection: its own ends with the relay's)
		}
		if a, ok := netip.AddrFromSlice(ip); ok && slices.Contains(ips, a.Unmap()) {
			c.Close()
			n++
		}
	}
	return n
}

// fixInterfaces corrects libp2p's addresses of the host, addrs, with what
// watchInterfaces saw since libp2p last read the interfaces: it drops
// those on addresses the machine lost, adds the listen addresses on those
// it gained, and sorts them, so that the URL is the same whichever of the
// two knew first.
func (p *Host) fixInterfaces(addrs []ma.Multiaddr) []ma.Multiaddr {
	p.mu.Lock()
	gone := maps.Clone(p.goneIPs)
	var came []ma.Multiaddr
	for ip, at := range p.cameIPs {
		if time.Since(at) >= ifaceFresh {
			delete(p.cameIPs, ip)
			continue
		}
		if a, err := manet.FromIP(ip.AsSlice()); err == nil {
			came = append(came, a)
		}
	}
	p.mu.Unlock()
	out := slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool {
		ip, err := manet.ToIP(a)
		if err != nil {
			return false
		}
		ipa, ok := netip.AddrFromSlice(ip)
		return ok && gone[ipa.Unmap()]
	})
	if len(came) > 0 {
		// An error says none of the listen addresses is unspecified, or
		// none matches came's families: nothing to add then.
		if more, err := manet.ResolveUnspecifiedAddresses(p.h.Network().ListenAddresses(), came); err == nil {
			out = append(out, more...)
		}
	}
	out = ma.Unique(out)
	slices.SortFunc(out, ma.Multiaddr.Compare)
	return out
}

// dropSuperseded closes c, the connection a request to its peer just
// failed on with err, if the request timed out (and its caller did not
// give up first) while a connection to the same peer opened later is
// open: the peer has dialed again, as after a change of network, and c is
// most likely the dead connection from before. Without this, new streams
// to the peer would keep opening on c (see the note above) until yamux's
// keepalive closes it. Should c be alive after all (the peer was merely
// slow), closing it costs the streams on it, and the newer connection
// carries the next ones.
func (p *Host) dropSuperseded(ctx context.Context, c network.Conn, err error) {
	if !timedOut(ctx, err) {
		return
	}
	if o := newerConn(c, p.h.Network().ConnsToPeer(c.RemotePeer())); o != nil {
		p.log.Info().Str("peer", c.RemotePeer().String()).Str("addr", c.RemoteMultiaddr().String()).
			Str("newer", o.RemoteMultiaddr().String()).Msg("a request timed out on a connection the peer has replaced; closing it")
		c.Close()
	}
}

// timedOut says whether err, from a request made with ctx, is its
// deadline passing: what a dead connection gives, where a caller that
// gave up (ctx canceled) or a peer that closed the stream says nothing
// about the connection.
func timedOut(ctx context.Context, err error) bool {
	var ne net.Error
	return !errors.Is(ctx.Err(), context.Canceled) && errors.As(err, &ne) && ne.Timeout()
}

// newerConn returns a connection of conns, other than c, that is open and
// was opened after c; nil if there is none.
func newerConn(c network.Conn, conns []network.Conn) network.Conn {
	opened := c.Stat().Opened
	for _, o := range conns {
		if o != c && !o.IsClosed() && o.Stat().Opened.After(opened) {
			return o
		}
	}
	return nil
}
