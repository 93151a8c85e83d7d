package p2p

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/demes/demes/internal/testutil"
)

// TestAddrsChangedOnReservation: a member's host that gains a slot on a
// relay reports its new URL, with a circuit address through the relay,
// to the function OnAddrsChanged set (the node advertises it from then
// on), and never reports the same URL twice in a row.
func TestAddrsChangedOnReservation(t *testing.T) {
	seedA := newSeed(t)
	r := newHost(t, newSeed(t), Config{RelayFor: func(k [32]byte) bool { return k == signKeyOf(seedA) }})
	a := newHost(t, seedA, Config{Relays: []peer.AddrInfo{{ID: r.ID(), Addrs: r.Addrs()}}})
	var mu sync.Mutex
	var got []string
	a.OnAddrsChanged(func(url string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, url)
	})
	reported := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	testutil.Eventually(t, 30*time.Second, "a reported URL with a circuit address", func() bool {
		urls := reported()
		return len(urls) > 0 && strings.Contains(urls[len(urls)-1], "/p2p-circuit")
	})
	urls := reported()
	last := urls[len(urls)-1]
	if last != a.URL() {
		t.Errorf("last URL reported %q, but the host's URL is %q", last, a.URL())
	}
	if !strings.Contains(last, r.ID().String()+"/p2p-circuit") {
		t.Errorf("URL reported %q has no circuit through relay %s", last, r.ID())
	}
	for i := 1; i < len(urls); i++ {
		if urls[i] == urls[i-1] {
			t.Errorf("URL %q reported twice in a row", urls[i])
		}
	}
	t.Logf("reported: %q", urls)
}
