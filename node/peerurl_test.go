package node

import (
	"crypto/ed25519"
	"testing"

	"github.com/demes/demes/p2p"
)

// urlOf takes a p2p URL as member k's address only when every address in it
// ends in k's own peer id (p2p.PeerID), circuit addresses included; any
// other URL (HTTP, the simulated network's) is left alone.
func TestURLOf(t *testing.T) {
	keyOf := func(b byte) [32]byte {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = b
		return [32]byte(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	}
	k, other, relay := keyOf(1), keyOf(2), keyOf(3)
	id := func(k [32]byte) string {
		pid, err := p2p.PeerID(k)
		if err != nil {
			t.Fatal(err)
		}
		return pid.String()
	}
	circuit := "/ip4/127.0.0.1/tcp/4001/p2p/" + id(relay) + "/p2p-circuit/p2p/"
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:7946", true},
		{"sim://a", true},
		{"p2p:/ip4/127.0.0.1/tcp/1/p2p/" + id(k), true},
		{"p2p:" + circuit + id(k) + ",/ip4/10.0.0.1/tcp/1/p2p/" + id(k), true},
		{"p2p:/ip4/127.0.0.1/tcp/1/p2p/" + id(other), false},
		{"p2p:/ip4/127.0.0.1/tcp/1/p2p/" + id(k) + ",/ip4/127.0.0.1/tcp/2/p2p/" + id(other), false},
		{"p2p:" + circuit + id(other), false},
		{"p2p:/ip4/127.0.0.1/tcp/1", false},
		{"p2p:/ip4/127.0.0.1/tcp/1/p2p/" + id(k) + "/tcp/2", false},
		{"p2p:", false},
		{"p2p:not a multiaddr", false},
	} {
		if got := urlOf(k, c.url); got != c.want {
			t.Errorf("urlOf(%.60s): %v, want %v", c.url, got, c.want)
		}
	}
}
