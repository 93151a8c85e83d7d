package p2p

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/demes/demes/internal/testutil"
)

// TestAddrsFollowInterfaces: when the machine loses every address it had
// and gains another (a laptop moved to another network), the host's
// addresses, and the URL it reports to OnAddrsChanged, name the new one
// and none of the old at once, not when libp2p next reads the interfaces
// (a minute later). Once libp2p's own list must have caught up, its word
// wins again. The change is fed to the host by hand: the test does not
// change the machine's network. 198.51.100.7 is a documentation address,
// never dialed here.
func TestAddrsFollowInterfaces(t *testing.T) {
	a := newHost(t, newSeed(t), Config{Listen: "0.0.0.0:0"})
	var mu sync.Mutex
	var last string
	a.OnAddrsChanged(func(url string) {
		mu.Lock()
		defer mu.Unlock()
		last = url
	})
	before, err := localIPs()
	if err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParseAddr("198.51.100.7")
	lost, gained := a.sawInterfaces(before, map[netip.Addr]bool{moved: true})
	if len(lost) != len(before) || len(gained) != 1 || gained[0] != moved {
		t.Fatalf("sawInterfaces: lost %v, gained %v; want every one of %v lost and %v gained", lost, gained, before, moved)
	}
	a.pokeAddrs()

	port := ""
	for _, l := range a.h.Network().ListenAddresses() {
		if p, err := l.ValueForProtocol(ma.P_TCP); err == nil {
			port = p
		}
	}
	want := fmt.Sprintf("/ip4/%s/tcp/%s", moved, port)
	addrs := a.Addrs()
	if len(addrs) != 1 || addrs[0].String() != want {
		t.Fatalf("after the move the host's addresses are %v, want only %s", addrs, want)
	}
	testutil.Eventually(t, 30*time.Second, "the new URL reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last == a.URL()
	})
	if !strings.Contains(last, want+"/p2p/") {
		t.Errorf("reported URL %q does not name %s", last, want)
	}

	// Two minutes on, libp2p has read the interfaces again: what it says
	// stands (here it still lists the machine's real addresses, which the
	// test did not take away, so only the lost ones stay dropped).
	a.mu.Lock()
	a.cameIPs[moved] = time.Now().Add(-ifaceFresh)
	a.mu.Unlock()
	for _, ad := range a.Addrs() {
		if strings.Contains(ad.String(), moved.String()) {
			t.Errorf("%s still listed once libp2p's own list must have caught up: %v", moved, a.Addrs())
		}
	}
}

// TestCloseFromLostAddress: the connections whose local address the
// machine lost are closed at once (the kernel would not send from it
// again, so nobody would close them for about 40 s), and only those.
func TestCloseFromLostAddress(t *testing.T) {
	a, b := newHost(t, newSeed(t), Config{}), newHost(t, newSeed(t), Config{})
	if _, err := post(t, a, b.URL(), "hello"); err != nil {
		t.Fatal(err)
	}
	if n := a.closeFrom([]netip.Addr{netip.MustParseAddr("198.51.100.7")}); n != 0 {
		t.Fatalf("closed %d connections for an address none of them uses", n)
	}
	if n := a.closeFrom([]netip.Addr{netip.MustParseAddr("127.0.0.1")}); n != 1 {
		t.Fatalf("closed %d connections from the lost address, want 1", n)
	}
	testutil.Eventually(t, 30*time.Second, "no connection left to b", func() bool {
		return len(a.h.Network().ConnsToPeer(b.ID())) == 0
	})
	// The next frame dials again.
	if _, err := post(t, a, b.URL(), "again"); err != nil {
		t.Fatalf("after the close: %v", err)
	}
}

// fakeConn is a connection for newerConn: its opening time and whether it
// is closed; every other method is the nil interface's (and panics).
type fakeConn struct {
	network.Conn
	opened time.Time
	closed bool
}

func (c *fakeConn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Opened: c.opened}}
}
func (c *fakeConn) IsClosed() bool      { return c.closed }
func (c *fakeConn) RemotePeer() peer.ID { return "" }

// TestDropSupersededRule: a request that timed out on a connection is a
// reason to close it only when a newer open connection to the peer exists,
// and only a timeout counts, not a caller that gave up or a peer that
// closed the stream.
func TestDropSupersededRule(t *testing.T) {
	t0 := time.Now()
	old := &fakeConn{opened: t0}
	newer := &fakeConn{opened: t0.Add(time.Second)}
	older := &fakeConn{opened: t0.Add(-time.Second)}
	closedNewer := &fakeConn{opened: t0.Add(time.Second), closed: true}
	for _, c := range []struct {
		name  string
		conns []network.Conn
		want  network.Conn
	}{
		{"alone", []network.Conn{old}, nil},
		{"a newer one", []network.Conn{old, newer}, newer},
		{"only an older one", []network.Conn{older, old}, nil},
		{"the newer one closed", []network.Conn{old, closedNewer}, nil},
	} {
		if got := newerConn(old, c.conns); got != c.want {
			t.Errorf("%s: newerConn gave %v, want %v", c.name, got, c.want)
		}
	}

	expired, cancelExpired := context.WithDeadline(context.Background(), t0)
	defer cancelExpired()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"deadline", expired, os.ErrDeadlineExceeded, true},
		{"deadline, wrapped", expired, fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true},
		{"caller gave up", canceled, os.ErrDeadlineExceeded, false},
		{"stream reset", expired, network.ErrReset, false},
		{"other error", expired, errors.New("EOF"), false},
	} {
		if got := timedOut(c.ctx, c.err); got != c.want {
			t.Errorf("%s: timedOut = %v, want %v", c.name, got, c.want)
		}
	}
}
