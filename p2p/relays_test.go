package p2p

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSetGroupRelays: a relay added while the host runs (a group's
// settings listed it) gets a slot, the URL the host reports names a
// circuit address through it, and a member reaches the host through it;
// dropped, it leaves the URL again. A relay of Config.Relays stays.
func TestSetGroupRelays(t *testing.T) {
	r := newHost(t, newSeed(t), Config{RelayFor: func([32]byte) bool { return true }})
	fixed := newHost(t, newSeed(t), Config{RelayFor: func([32]byte) bool { return true }})
	a := newHost(t, newSeed(t), Config{Relays: []peer.AddrInfo{{ID: fixed.ID(), Addrs: fixed.Addrs()}}})
	b := newHost(t, newSeed(t), Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	urls := make(chan string, 100)
	a.OnAddrsChanged(func(u string) { urls <- u })
	through := func(id peer.ID) string { return "/p2p/" + id.String() + "/p2p-circuit" }
	// waitURL waits for the host to report a URL that holds (or not) a
	// circuit address through the relay with id.
	waitURL := func(id peer.ID, want bool) string {
		t.Helper()
		for {
			select {
			case u := <-urls:
				if strings.Contains(u, through(id)) == want {
					return u
				}
			case <-ctx.Done():
				t.Fatalf("no URL with a circuit through %s: %v (want %t)", id, a.URL(), want)
			}
		}
	}
	if a.WaitRelays(ctx) != 1 {
		t.Fatal("no slot on the configured relay")
	}
	waitURL(r.ID(), false)

	a.SetGroupRelays([]peer.AddrInfo{{ID: r.ID(), Addrs: r.Addrs()}})
	if a.WaitRelays(ctx) != 2 || !a.Reserved(r.ID()) {
		t.Fatal("no slot on the relay added at run time")
	}
	u := waitURL(r.ID(), true)
	if !strings.Contains(u, through(fixed.ID())) {
		t.Fatalf("URL %s lost the configured relay", u)
	}
	var circuit string
	for _, part := range strings.Split(strings.TrimPrefix(a.CircuitURL(), Scheme), ",") {
		if strings.Contains(part, through(r.ID())) {
			circuit = Scheme + part
		}
	}
	got, err := post(t, b, circuit, "through the new relay")
	if err != nil || string(got) != "echo:through the new relay" {
		t.Fatalf("through the relay added at run time: %q, %v", got, err)
	}

	a.SetGroupRelays(nil)
	u = waitURL(r.ID(), false)
	if a.Reserved(r.ID()) || !strings.Contains(u, through(fixed.ID())) {
		t.Fatalf("after the group relay was dropped: URL %s, slot held %t", u, a.Reserved(r.ID()))
	}
}
