package p2p

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Scheme starts every p2p URL.
const Scheme = "p2p:"

// maxURL bounds a p2p URL: it travels in address updates, whose URL the
// group's state caps at 512 bytes.
const maxURL = 512

// IsURL reports whether s is a p2p URL (and not an HTTP peer URL).
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// FormatURL returns the p2p URL of a peer reachable at addrs: "p2p:" and the
// addresses, comma-separated, each ending in /p2p/ID. Addresses are kept in
// the order given (the caller puts direct ones first) and dropped from the
// end while the URL would exceed what an address update may carry.
func FormatURL(id peer.ID, addrs []ma.Multiaddr) string {
	var parts []string
	size := len(Scheme)
	for _, a := range addrs {
		full := a.Encapsulate(ma.StringCast("/p2p/" + id.String())).String()
		if _, last := ma.SplitLast(a); last != nil && last.Protocol().Code == ma.P_P2P {
			full = a.String() // already names the peer
		}
		if size+len(full)+1 > maxURL {
			break
		}
		parts = append(parts, full)
		size += len(full) + 1
	}
	return Scheme + strings.Join(parts, ",")
}

// ParseURL returns the peer a p2p URL names and its addresses. Every address
// must name the same peer.
func ParseURL(s string) (peer.AddrInfo, error) {
	if !IsURL(s) {
		return peer.AddrInfo{}, fmt.Errorf("%q is not a p2p URL (p2p:/ip4/.../p2p/ID)", s)
	}
	var info peer.AddrInfo
	for _, part := range strings.Split(strings.TrimPrefix(s, Scheme), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ai, err := peer.AddrInfoFromString(part)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("p2p URL address %q: %w", part, err)
		}
		if info.ID != "" && ai.ID != info.ID {
			return peer.AddrInfo{}, fmt.Errorf("p2p URL names two peers, %s and %s", info.ID, ai.ID)
		}
		info.ID = ai.ID
		info.Addrs = append(info.Addrs, ai.Addrs...)
	}
	if info.ID == "" {
		return peer.AddrInfo{}, errors.New("p2p URL has no address")
	}
	return info, nil
}

// ParseAddrs parses a relay's address as `demes relay` prints it: one or
// more multiaddrs ending in /p2p/ID, comma-separated, with or without the
// "p2p:" prefix.
func ParseAddrs(s string) (peer.AddrInfo, error) {
	if !IsURL(s) {
		s = Scheme + s
	}
	return ParseURL(s)
}

// listenAddrs turns "HOST:PORT" into a TCP multiaddr on that port, and a
// QUIC one with quic; a multiaddr ("/ip4/...") is taken as it is.
func listenAddrs(hostport string, quic bool) ([]ma.Multiaddr, error) {
	if strings.HasPrefix(hostport, "/") {
		a, err := ma.NewMultiaddr(hostport)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", hostport, err)
		}
		return []ma.Multiaddr{a}, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "" {
		return nil, fmt.Errorf("listen address %q: want HOST:PORT (or a multiaddr)", hostport)
	}
	proto := "ip4"
	if host == "" {
		host = "0.0.0.0"
	}
	if strings.Contains(host, ":") {
		proto = "ip6"
	}
	tcp, err := ma.NewMultiaddr(fmt.Sprintf("/%s/%s/tcp/%s", proto, host, port))
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", hostport, err)
	}
	if !quic {
		return []ma.Multiaddr{tcp}, nil
	}
	q, err := ma.NewMultiaddr(fmt.Sprintf("/%s/%s/udp/%s/quic-v1", proto, host, port))
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", hostport, err)
	}
	return []ma.Multiaddr{tcp, q}, nil
}
