package p2p

import (
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// libp2p starts a host when any one of its listen addresses works, and
// only logs the others' failures: with the TCP port taken by another
// program, a node ran on QUIC alone, which peers dial only after TCP
// (dial.go), and nobody was told. So New checks that the host listens on
// each address it was given, as a plain listener would: on TCP, the
// transport every peer dials and the address a relay prints, or it fails;
// QUIC's UDP port is an addition for hole punching, which a node with
// relay slots opens again on a port the system picks (quic.go), so a
// taken one is said in the log.

// tcpFree checks, before libp2p starts, that a plain listener may take each
// TCP port of want that is not 0. libp2p listens on TCP with SO_REUSEPORT
// (hole punching dials from the listen port), and the kernel lets every
// socket of the same user that sets it bind the same port: a second host on
// the port of another (a relay, a node's --p2p) started, and incoming
// connections were shared out between the two, half of them reaching
// another peer id. A plain listener is refused while any socket holds the
// port, and then New fails as for a port another program holds.
func tcpFree(want []ma.Multiaddr) error {
	for _, w := range want {
		kind, port := transportOf(w)
		if kind != "tcp" || port == "0" {
			continue
		}
		ip, err := manet.ToIP(w)
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), port))
		if err != nil {
			return fmt.Errorf("libp2p does not listen on %s: %w", w, err)
		}
		l.Close()
	}
	return nil
}

// checkListening returns, for each address of want that none of got (the
// host's listen addresses) serves (the same transport, TCP or UDP, on the
// same port, or any for port 0), why: the error of a plain listener on the
// same address (an address in use, a port that needs privileges), so that
// the caller can say it in words.
func checkListening(got, want []ma.Multiaddr) (tcp, udp error) {
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
		switch {
		case found:
		case kind == "tcp" && tcp == nil:
			tcp = notListening(w, kind, port)
		case kind == "udp" && udp == nil:
			udp = notListening(w, kind, port)
		}
	}
	return tcp, udp
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
