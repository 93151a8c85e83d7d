package p2p

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// idleStreams opens up to n streams from x to the host info names, each
// with one empty request answered, and leaves them open and idle: the
// host's serve waits serveIdle on each for the next request. It reports how
// many the host serves.
func idleStreams(x host.Host, info peer.AddrInfo, n int) int {
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := x.NewStream(ctx, info.ID, ProtocolID)
		cancel()
		if err != nil {
			return i
		}
		s.SetDeadline(time.Now().Add(5 * time.Second))
		var req [4]byte // an empty frame
		var head [6]byte
		if _, err := s.Write(req[:]); err != nil {
			return i
		}
		if _, err := io.ReadFull(s, head[:]); err != nil {
			return i
		}
		if _, err := io.CopyN(io.Discard, s, int64(binary.BigEndian.Uint32(head[2:]))); err != nil {
			return i
		}
	}
	return n
}

// Attack: strangers (peers that are no member: any key will do) open
// streams to a member's host and leave them idle. libp2p bounds the streams
// open to a host in all (about 1,250 here) and a peer's at about 75; from
// one address an attacker has 8 connections, each a peer id of its own (the
// resource manager's limit per IPv4 address, which loopback is exempt
// from): 17 such peers, from 3 addresses, left no stream to the members,
// and a member's new stream was reset. A stranger now has at most
// strangerStreams served at once; a member's streams are not bounded so.
func TestStrangersCannotTakeEveryStream(t *testing.T) {
	seedM := newSeed(t)
	h := newHost(t, newSeed(t), Config{Known: func(k [32]byte) bool { return k == signKeyOf(seedM) }})
	info, err := ParseURL(h.URL())
	if err != nil {
		t.Fatal(err)
	}
	const strangers, each = 40, 100
	served := 0
	for i := 0; i < strangers; i++ {
		// Without limits of its own on what it opens.
		x, err := libp2p.New(libp2p.NoListenAddrs, libp2p.ResourceManager(&network.NullResourceManager{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		x.Peerstore().AddAddrs(info.ID, info.Addrs, time.Hour)
		served += idleStreams(x, info, each)
	}
	t.Logf("%d strangers hold %d idle streams", strangers, served)
	if served > strangers*strangerStreams {
		t.Errorf("%d strangers hold %d streams, more than %d each", strangers, served, strangerStreams)
	}
	// A member that opens a stream now (it joined, or its connection was
	// new) is served, and a member has more than a stranger's share.
	m := newHost(t, seedM, Config{})
	mh := m.h
	mh.Peerstore().AddAddrs(info.ID, info.Addrs, time.Hour)
	if got := idleStreams(mh, info, 2*strangerStreams); got != 2*strangerStreams {
		t.Fatalf("a member got %d streams served while strangers hold theirs, want %d", got, 2*strangerStreams)
	}
}
