package p2p

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/util"
)

// Circuits per pair of peers. go-libp2p's relay bounds the relayed
// connections to, and from, each peer (MaxCircuits), but not those between
// two peers: one peer it admits could hold all of another's and leave
// everyone else unable to reach that one through the relay (a circuit whose
// handshake the attacker never completes lasts 15 s, and it asks again; one
// it completes has no time limit, since admitted connections have none).
// So this host's relay admits at most pairCircuits open circuits from one
// peer to another, and maxCircuits to or from one peer: one peer then holds
// a small share of another's.

// pairCircuits bounds the open circuits from one peer to another: a member
// needs one, and a second for a moment while a connection replaces another.
const pairCircuits = 4

// maxCircuits bounds the open circuits to or from one peer (the relay's
// MaxCircuits; libp2p's default is 16, fewer than the members a relayed
// member of a large group talks to).
const maxCircuits = 64

// maxHopMessage is the relay's own bound on a hop message.
const maxHopMessage = 4096

// circuitCap counts the open circuits between each pair of peers.
type circuitCap struct {
	mu   sync.Mutex
	open map[[2]peer.ID]int
}

// capHost is the host as the relay sees it: the relay's hop handler, which
// it registers at its start, is registered wrapped by cap.
type capHost struct {
	host.Host
	cap *circuitCap
}

func (h capHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if pid == proto.ProtoIDv2Hop {
		handler = h.cap.wrap(handler)
	}
	h.Host.SetStreamHandler(pid, handler)
}

// wrap reads a hop request before the relay does, refuses a connection
// between two peers that hold pairCircuits already, and hands the relay
// the stream with the request still to read; the circuit counts until the
// relay closes or resets its stream, which it does when the circuit ends
// (or fails to open).
func (c *circuitCap) wrap(next network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		var head bytes.Buffer
		rd := util.NewDelimitedReader(io.TeeReader(s, &head), maxHopMessage)
		var msg pbv2.HopMessage
		s.SetReadDeadline(time.Now().Add(time.Minute))
		err := rd.ReadMsg(&msg)
		rd.Close()
		if err != nil {
			s.Reset()
			return
		}
		hs := &hopStream{Stream: s, r: io.MultiReader(&head, s)}
		if msg.GetType() == pbv2.HopMessage_CONNECT {
			if dst, err := util.PeerToPeerInfoV2(msg.GetPeer()); err == nil {
				pair := [2]peer.ID{s.Conn().RemotePeer(), dst.ID}
				if !c.take(pair) {
					refuseHop(s, pbv2.Status_RESOURCE_LIMIT_EXCEEDED)
					return
				}
				hs.release = func() { c.give(pair) }
			}
		}
		next(hs)
	}
}

func (c *circuitCap) take(pair [2]peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[pair] >= pairCircuits {
		return false
	}
	c.open[pair]++
	return true
}

func (c *circuitCap) give(pair [2]peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[pair]--; c.open[pair] <= 0 {
		delete(c.open, pair)
	}
}

func refuseHop(s network.Stream, status pbv2.Status) {
	s.SetWriteDeadline(time.Now().Add(time.Minute))
	msg := pbv2.HopMessage{Type: pbv2.HopMessage_STATUS.Enum(), Status: status.Enum()}
	if err := util.NewDelimitedWriter(s).WriteMsg(&msg); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// hopStream is a hop stream given to the relay: its first bytes, the
// request wrap read, are read again, and its circuit stops counting when
// the relay closes or resets it.
type hopStream struct {
	network.Stream
	r       io.Reader
	once    sync.Once
	release func() // nil for a stream that holds no circuit
}

func (s *hopStream) Read(b []byte) (int, error) { return s.r.Read(b) }

func (s *hopStream) done() {
	if s.release != nil {
		s.once.Do(s.release)
	}
}

func (s *hopStream) Close() error {
	s.done()
	return s.Stream.Close()
}

func (s *hopStream) Reset() error {
	s.done()
	return s.Stream.Reset()
}

func (s *hopStream) ResetWithError(code network.StreamErrorCode) error {
	s.done()
	return s.Stream.ResetWithError(code)
}
