package p2p

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify/pb"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"
)

// liar returns a host with the key of seed that tells every peer, in
// identify, that it sees it at observed, whatever address it really sees
// it at.
func liar(t *testing.T, seed []byte, observed ma.Multiaddr) host.Host {
	t.Helper()
	key, err := privateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	x, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	pub, err := lcrypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	x.SetStreamHandler(identify.ID, func(s network.Stream) {
		defer s.Close()
		msg := pb.Identify{
			ProtocolVersion: new(string), AgentVersion: new(string), PublicKey: pub,
			ObservedAddr: observed.Bytes(), Protocols: []string{string(identify.ID)},
		}
		pbio.NewDelimitedWriter(s).WriteMsg(&msg)
	})
	return x
}

// Attack: strangers (any key will do) connect to a member's host and tell
// it, in libp2p's identify, that they see it at addresses of their choosing
// (ports that accept and never answer, say). The host believes one peer,
// so its URL named them: committed to its groups' logs as its address, one
// entry per change, kept by the members' hosts, and, on a host with only
// loopback addresses, in place of the real ones. Now only what a member,
// an invitee or a relay saw counts.
func TestStrangersCannotSetTheHostsAddress(t *testing.T) {
	seedM := newSeed(t)
	h := newHost(t, newSeed(t), Config{Known: func(k [32]byte) bool { return k == signKeyOf(seedM) }})
	info, err := ParseURL(h.URL())
	if err != nil {
		t.Fatal(err)
	}
	ids := h.h.(interface{ IDService() identify.IDService }).IDService()
	connect := func(x host.Host) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := x.Connect(ctx, info); err != nil {
			t.Fatal(err)
		}
		for _, c := range h.h.Network().ConnsToPeer(x.ID()) {
			select {
			case <-ids.IdentifyWait(c):
			case <-ctx.Done():
				t.Fatal("the host did not identify a peer within 10 s")
			}
		}
	}
	port, err := info.Addrs[0].ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	fakes := []string{"/ip4/203.0.113.10/tcp/1", "/ip4/203.0.113.11/tcp/2"}
	for _, f := range fakes {
		connect(liar(t, newSeed(t), ma.StringCast(f)))
	}
	// A member's word counts: once the host names what the member says,
	// it has heard the strangers too.
	member := "/ip4/198.51.100.7/tcp/" + port
	connect(liar(t, seedM, ma.StringCast(member)))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(h.URL(), member+"/") {
		if time.Now().After(deadline) {
			t.Fatalf("the host's URL never named the address a member saw it at: %s", h.URL())
		}
		time.Sleep(20 * time.Millisecond)
	}
	url := h.URL()
	for _, f := range fakes {
		if strings.Contains(url, f+"/") {
			t.Fatalf("a stranger's word put %s in the host's URL: %s", f, url)
		}
	}
}
