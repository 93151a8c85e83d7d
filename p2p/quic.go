package p2p

import (
	"fmt"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// A node that holds relay slots listens on QUIC beside TCP: hole punching
// through home routers succeeds more often over UDP (see Config.QUIC). A
// node given --relay knows that at start; one that learns its relays from
// a group's settings (SetGroupRelays) learns it later, and starts
// listening on QUIC then, on the port of its TCP listener where that is
// free, else on one the system picks. It stays on QUIC when the relays go:
// closing a listener would cut the connections on it.

// listenQUIC starts a QUIC listener beside the TCP ones, unless the host
// has one already or was given a multiaddr to listen on (which says
// exactly what to listen on). It returns the addresses it listens on now.
func (p *Host) listenQUIC() ([]ma.Multiaddr, error) {
	if strings.HasPrefix(p.cfg.Listen, "/") {
		return nil, nil
	}
	var tcp []ma.Multiaddr
	for _, a := range p.h.Network().ListenAddresses() {
		if isQUIC(a) {
			return nil, nil
		}
		if isTCP(a) {
			tcp = append(tcp, a)
		}
	}
	var added []ma.Multiaddr
	for _, a := range tcp {
		ip, _ := ma.SplitFirst(a) // /ip4/HOST or /ip6/HOST
		if ip == nil {
			continue
		}
		port, err := a.ValueForProtocol(ma.P_TCP)
		if err != nil {
			continue
		}
		var errs []error
		for _, pt := range []string{port, "0"} {
			q, err := ma.NewMultiaddr(fmt.Sprintf("%s/udp/%s/quic-v1", ip.String(), pt))
			if err != nil {
				errs = append(errs, err)
				break
			}
			if err := p.h.Network().Listen(q); err != nil {
				errs = append(errs, err)
				continue
			}
			added = append(added, q)
			break
		}
		if len(added) == 0 && len(errs) > 0 {
			return nil, fmt.Errorf("listen on QUIC beside %s: %v", a, errs)
		}
	}
	return added, nil
}

// isQUIC reports whether a is a QUIC address.
func isQUIC(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_QUIC_V1)
	return err == nil
}
