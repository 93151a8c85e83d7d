package p2p

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

// TestNewFailsWhenOneTransportCannotListen: libp2p starts a host when any
// of its listen addresses works; a host whose TCP port another program
// holds ran on QUIC alone, which peers dial only after TCP, and said
// nothing. New now fails with the system's reason; a taken UDP port moves
// QUIC to another.
func TestNewFailsWhenOneTransportCannotListen(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		h, err := New(Config{Seed: newSeed(t), Listen: ln.Addr().String(), QUIC: true, MaxFrame: testMaxFrame})
		if err == nil {
			h.Close()
			t.Fatalf("a host started on %s with its TCP port taken", ln.Addr())
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("error %q does not say the address is in use", err)
		}
	})
	t.Run("tcp of another host", func(t *testing.T) {
		// libp2p listens on TCP with SO_REUSEPORT (for hole
		// punching), so a second host on the same port bound it too,
		// and the kernel shared the connections out between the two:
		// half of the peers reached another peer id.
		first, err := New(Config{Seed: newSeed(t), Listen: "127.0.0.1:0", MaxFrame: testMaxFrame})
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		tcp, _ := first.ListenPorts()
		addr := fmt.Sprintf("127.0.0.1:%d", tcp)
		h, err := New(Config{Seed: newSeed(t), Listen: addr, QUIC: true, MaxFrame: testMaxFrame})
		if err == nil {
			h.Close()
			t.Fatalf("a host started on %s, the TCP port of another host", addr)
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("error %q does not say the address is in use", err)
		}
	})
	t.Run("udp", func(t *testing.T) {
		// QUIC's port is an addition for hole punching: the host starts,
		// on TCP there and on QUIC on a port the system picks.
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		h, err := New(Config{Seed: newSeed(t), Listen: pc.LocalAddr().String(), QUIC: true, MaxFrame: testMaxFrame})
		if err != nil {
			t.Skipf("the TCP port of the same number is taken too: %v", err)
		}
		defer h.Close()
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		tcp, udp := h.ListenPorts()
		if fmt.Sprint(tcp) != port || udp == 0 || fmt.Sprint(udp) == port {
			t.Fatalf("listening on TCP %d and UDP %d, with UDP %s taken: want TCP there and QUIC on another port", tcp, udp, port)
		}
	})
	t.Run("both free", func(t *testing.T) {
		h, err := New(Config{Seed: newSeed(t), Listen: "127.0.0.1:0", QUIC: true, MaxFrame: testMaxFrame})
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
	})
}
