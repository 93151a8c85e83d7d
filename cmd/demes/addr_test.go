package main

import "testing"

// TestListenAddrProblem: what is malformed in an address to listen on, said
// in words, and what is well formed (whether it can be bound is for
// listening to find out).
func TestListenAddrProblem(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		ipOnly bool
		want   string // "" when well formed
	}{
		{"0.0.0.0:7946", false, ""},
		{":7946", false, ""},
		{"[::1]:0", false, ""},
		{"localhost:7946", false, ""},
		{"127.0.0.1:", false, ""}, // net.Listen: the system chooses
		{"[fe80::1%eth0]:7946", false, ""},
		{"bad", false, "it has no port"},
		{"http://127.0.0.1:7946", false, "it is a URL, not an address"},
		{"::1:7946", false, "an IPv6 address goes in brackets, as [::1]:PORT"},
		{"127.0.0.1:99999", false, "port 99999 is out of range (0 to 65535)"},
		{"127.0.0.1:-1", false, `port "-1" is not a number from 0 to 65535`},
		{"127.0.0.1:nope", false, `port "nope" is not a number from 0 to 65535`},
		{"999.1.1.1:7946", false, `"999.1.1.1" is not an IP address`},
		{"a b:7946", false, `"a b" is neither an IP address nor a host name`},
		{"0.0.0.0:4001", true, ""},
		{":4001", true, ""},
		{"/ip4/0.0.0.0/tcp/4001", true, ""},
		{"127.0.0.1:", true, "it has no port"},
		{"localhost:4001", true, `"localhost" is not an IP address (libp2p listens on addresses, not names)`},
		{"[fe80::1%eth0]:4001", true, "libp2p does not listen on an address with a zone (fe80::1%eth0)"},
		{"/ip4/bad", true, "it is not a multiaddr libp2p can listen on"},
		{"/ip4/0.0.0.0/udp/4001/quic-v1", true, ""},
		{"/ip4/0.0.0.0/udp/4001", true, "it names no TCP port (/tcp/PORT) nor QUIC one (/udp/PORT/quic-v1)"},
		{"127.0.0.1:http", true, `port "http" is not a number from 0 to 65535`},
	} {
		if got := listenAddrProblem(tt.addr, tt.ipOnly); got != tt.want {
			t.Errorf("%q (ipOnly %t): %q, want %q", tt.addr, tt.ipOnly, got, tt.want)
		}
	}
}
