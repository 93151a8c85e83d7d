package main

import (
	"net"
	"testing"
)

// TestUIHostPort: a UI listening on every address (--ui 0.0.0.0:PORT, as
// in a container) is printed at 127.0.0.1, which a browser opens and the
// UI's Host check takes, not at http://[::]:PORT or http://0.0.0.0:PORT.
func TestUIHostPort(t *testing.T) {
	for _, tt := range []struct {
		ip   net.IP
		want string
	}{
		{net.IPv4zero, "127.0.0.1:7947"},
		{net.IPv6unspecified, "127.0.0.1:7947"},
		{net.IPv4(127, 0, 0, 1), "127.0.0.1:7947"},
		{net.ParseIP("::1"), "[::1]:7947"},
		{net.IPv4(192, 0, 2, 7), "192.0.2.7:7947"},
	} {
		if got := uiHostPort(&net.TCPAddr{IP: tt.ip, Port: 7947}); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.ip, got, tt.want)
		}
	}
}
