package p2p

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// tarpits listens on n loopback TCP ports below the ephemeral range, where
// the hosts listen (libp2p dials a peer's TCP addresses lowest port first,
// 8 at a time), accepting connections and never answering.
func tarpits(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for port := 20000; len(addrs) < n && port < 21000; port++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		addrs = append(addrs, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	}
	if len(addrs) < n {
		t.Fatalf("only %d free ports for tarpits", len(addrs))
	}
	return addrs
}

// Attack: a member's URL names, beside its real address, a few that accept
// and never answer, and changes (a lying peer tells the member, in
// identify, that it sees it there: three such addresses at a time, a few
// others a moment later; or the member itself does). The others' hosts kept
// every address of every URL they used for the member, for good: with more
// than 8 such addresses, at ports below the real one, reaching the member
// again after the connection dropped waited for their dials to time out
// (5 s on loopback, 15 s elsewhere), however the URL read by then. Now a
// peer's addresses are those of the URL last used for it.
func TestOldURLsDoNotSlowReachingAPeer(t *testing.T) {
	a, b := newHost(t, newSeed(t), Config{}), newHost(t, newSeed(t), Config{})
	pits := tarpits(t, 9)
	real := strings.TrimPrefix(b.URL(), Scheme)
	var url string
	for i := 0; i < 3; i++ {
		parts := []string{real}
		for _, p := range pits[3*i : 3*i+3] {
			parts = append(parts, p+"/p2p/"+b.ID().String())
		}
		url = Scheme + strings.Join(parts, ",")
		if _, err := post(t, a, url, "hello"); err != nil {
			t.Fatalf("URL %d: %v", i, err)
		}
	}
	// The connection drops (a change of network, a restart).
	if err := a.h.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := a.Post(ctx, url, []byte("again")); err != nil {
		t.Fatalf("reaching the peer again at its URL: %v", err)
	}
}
