package p2p

import (
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// libp2p starts a host when any one of its listen addresses works, and
// only logs the others' failures: with the TCP port taken by another
// program, a node would run on QUIC alone, which peers dial only after TCP
// (dial.go), and nobody would be told. So New checks that the host listens
// on each address it was given, as a plain listener would.

// checkListening returns an error for the first address of want that none
// of got (the host's listen addresses) serves: the same transport, TCP or
// UDP, on the same port (any, for port 0). The error is the system's, from
// listening there the same way (an address in use, a port that needs
// privileges), so that the caller can say it in words.
func checkListening(got, want []ma.Multiaddr) error {
	for _, w := range want {
		kind, port := transportOf(w)
		if kind == "" {
			continue
		}
		found := false
		for _, g := range got {
			k, p := transportOf(g)
			found = found || k == kind && (port == "0" || p == port)
		}
		if !found {
			return notListening(w, kind, port)
		}
	}
	return nil
}

// transportOf returns "tcp" or "udp" and the port of a listen address; ""
// for any other (a relay circuit).
func transportOf(a ma.Multiaddr) (kind, port string) {
	if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
		return "tcp", p
	}
	if p, err := a.ValueForProtocol(ma.P_UDP); err == nil {
		return "udp", p
	}
	return "", ""
}

// notListening is why the host does not listen on a: the error of a plain
// listener on the same address, which tells the errno libp2p only logged.
func notListening(a ma.Multiaddr, kind, port string) error {
	ip, err := manet.ToIP(a)
	if err != nil {
		return fmt.Errorf("libp2p does not listen on %s", a)
	}
	hp := net.JoinHostPort(ip.String(), port)
	if kind == "tcp" {
		l, err := net.Listen("tcp", hp)
		if err != nil {
			return fmt.Errorf("libp2p does not listen on %s: %w", a, err)
		}
		l.Close()
	} else {
		c, err := net.ListenPacket("udp", hp)
		if err != nil {
			return fmt.Errorf("libp2p does not listen on %s: %w", a, err)
		}
		c.Close()
	}
	return fmt.Errorf("libp2p does not listen on %s", a)
}
