package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"
)

// The addresses the commands listen on (serve --listen, --ui, --metrics and
// --p2p, relay --listen) are checked in two steps. One that is malformed is
// bad usage (exit 2), said before anything starts, with what a good one
// looks like: Go's and the multiaddr library's texts ("address bad: missing
// port in address", "failed to parse multiaddr") said neither, and exit 1
// read as a failure of the node. One that is well formed but cannot be
// listened on (a port another program holds) is a failure of the run
// (exit 1), said in words by listenFailed, with the flag that changes it.

// checkListenAddr checks addr, the value of flag ("--listen"), as an address
// to listen on: HOST:PORT, where HOST may be left out (every address), and
// PORT 0 lets the system choose. With ipOnly, for libp2p, which listens on
// addresses and not on names, HOST must be an IP address, and a multiaddr
// (/ip4/0.0.0.0/tcp/4001) is taken too. example is a good value.
func checkListenAddr(flag, addr, example string, ipOnly bool) error {
	why := listenAddrProblem(addr, ipOnly)
	if why == "" {
		return nil
	}
	return fmt.Errorf("%s %q: %s; want HOST:PORT, such as %s", flag, addr, why, example)
}

// listenAddrProblem says what is wrong with addr as an address to listen
// on, or "" when nothing is.
func listenAddrProblem(addr string, ipOnly bool) string {
	if ipOnly && strings.HasPrefix(addr, "/") {
		a, err := ma.NewMultiaddr(addr)
		if err != nil {
			return "it is not a multiaddr libp2p can listen on"
		}
		// libp2p listens on TCP and QUIC only ("no transport for
		// protocol" otherwise).
		_, tcpErr := a.ValueForProtocol(ma.P_TCP)
		_, quicErr := a.ValueForProtocol(ma.P_QUIC_V1)
		if tcpErr != nil && quicErr != nil {
			return "it names no TCP port (/tcp/PORT) nor QUIC one (/udp/PORT/quic-v1)"
		}
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil && strings.Contains(addr, "://"):
		return "it is a URL, not an address"
	case err != nil && !strings.Contains(addr, ":"):
		return "it has no port"
	case err != nil && strings.Count(addr, ":") > 1 && !strings.Contains(addr, "["):
		return "an IPv6 address goes in brackets, as [::1]:PORT"
	case err != nil:
		return "it is not written as HOST:PORT"
	}
	if why := portProblem(port, ipOnly); why != "" {
		return why
	}
	if host == "" {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil && ipOnly && ip.Zone() != "":
		return fmt.Sprintf("libp2p does not listen on an address with a zone (%s)", host)
	case err == nil:
		return ""
	case strings.Trim(host, "0123456789.") == "" || strings.Contains(host, ":"):
		return fmt.Sprintf("%q is not an IP address", host)
	case ipOnly:
		return fmt.Sprintf("%q is not an IP address (libp2p listens on addresses, not names)", host)
	case !hostName(host):
		return fmt.Sprintf("%q is neither an IP address nor a host name", host)
	}
	return ""
}

// portProblem says what is wrong with port, or "" when nothing is. An
// empty port is the system's choice to net.Listen, as 0 is; libp2p wants a
// number. net.Listen also takes a service's name (http), as it always did.
func portProblem(port string, ipOnly bool) string {
	switch {
	case port == "" && ipOnly:
		return "it has no port"
	case port == "":
		return ""
	case strings.Trim(port, "0123456789") == "":
		if n, err := strconv.ParseUint(port, 10, 64); err != nil || n > 65535 {
			return fmt.Sprintf("port %s is out of range (0 to 65535)", port)
		}
		return ""
	case !ipOnly:
		if _, err := net.LookupPort("tcp", port); err == nil {
			return ""
		}
	}
	return fmt.Sprintf("port %q is not a number from 0 to 65535", port)
}

// hostName reports whether s is written as a host name: labels of letters,
// digits and hyphens, separated by dots. Whether it names this machine is
// for listening to find out.
func hostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// loopbackAddr reports whether addr (HOST:PORT) is on loopback.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listenFailed says in words why what ("the peer listener") could not
// listen on addr, a well-formed address, with the flag that changes it: a
// failure (exit 1), not bad usage. Go says "listen tcp 127.0.0.1:7946:
// bind: address already in use", libp2p a list of such.
func listenFailed(what, addr, flag string, err error) error {
	hint := "choose another address with " + flag
	var why string
	switch {
	case hasErrno(err, syscall.EADDRINUSE):
		why = "the port is in use by another program"
		hint = "choose another port with " + flag + ", or stop the program that uses this one"
	case hasErrno(err, syscall.EACCES):
		why = "this user may not listen on that port (ports below 1024 need privileges)"
		hint = "choose a port from 1024 up with " + flag
	case hasErrno(err, syscall.EADDRNOTAVAIL):
		why = "no network interface of this machine has that address"
		hint = "choose one of this machine's addresses with " + flag + ", or 0.0.0.0 for every one"
	default:
		var dnsErr *net.DNSError
		var opErr *net.OpError
		switch {
		case errors.As(err, &dnsErr):
			why = fmt.Sprintf("the host name %s is not known", dnsErr.Name)
		case errors.As(err, &opErr):
			why = opErr.Err.Error() // the address is said before it
		default:
			why = err.Error()
		}
	}
	return withHint(fmt.Errorf("%s cannot listen on %s: %s", what, addr, why), hint)
}

// hasErrno reports whether err is, or says, the system's errno: libp2p
// keeps only the text of its listeners' errors.
func hasErrno(err error, errno syscall.Errno) bool {
	return errors.Is(err, errno) || strings.Contains(err.Error(), errno.Error())
}
