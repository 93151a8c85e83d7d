package node

import (
	"bytes"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Checking entries ahead must never let through what applying them would
// refuse: only the exact bytes that passed crypto.Verify are remembered,
// once, and a forged or altered entry is left for the state machine.
func TestVerifiedFramesOnlyExactCheckedBytes(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	frame, err := crypto.Sign(id, &crypto.Envelope{Type: crypto.TypeChat, Group: crypto.GroupID{1}, Counter: 1, Payload: []byte("sealed")})
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Clone(frame)
	altered[len(altered)-1] ^= 1
	forged := bytes.Clone(frame)
	forged[40] ^= 1 // inside the signature
	entry := func(data []byte) *pb.Entry {
		return &pb.Entry{Type: pb.EntryNormal.Enum(), Index: proto.Uint64(1), Term: proto.Uint64(1), Data: data}
	}
	var c verifiedFrames
	c.check([]*pb.Message{{Type: pb.MsgApp.Enum(), Entries: []*pb.Entry{entry(forged), entry(frame), entry(nil)}}})
	if c.take(forged) != nil {
		t.Fatal("a forged entry was remembered as checked")
	}
	if c.take(altered) != nil {
		t.Fatal("altered bytes matched a checked entry")
	}
	env := c.take(frame)
	if env == nil || env.Sender != id.Public().Sign || string(env.Payload) != "sealed" {
		t.Fatalf("checked entry: got %+v", env)
	}
	if c.take(frame) != nil {
		t.Fatal("a checked entry was handed out twice")
	}
}

// The checking goroutine takes every batch waiting at once and checks them
// together; each valid entry of each batch is remembered and a forged one
// is not, exactly as when the batches are checked one by one. The batches
// it gathers stop at maxCheckTogether entries, and the first batch's slice
// is never written over.
func TestDrainChecksTogether(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	entry := func(counter uint64) (*pb.Entry, []byte) {
		frame, err := crypto.Sign(id, &crypto.Envelope{Type: crypto.TypeChat, Group: crypto.GroupID{1}, Counter: counter, Payload: []byte("sealed")})
		if err != nil {
			t.Fatal(err)
		}
		return &pb.Entry{Type: pb.EntryNormal.Enum(), Index: proto.Uint64(counter), Term: proto.Uint64(1), Data: frame}, frame
	}
	c := make(chan []*pb.Message, 8)
	var frames [][]byte
	batch := func(n int, forge bool) []*pb.Message {
		m := &pb.Message{Type: pb.MsgApp.Enum()}
		for range n {
			e, frame := entry(uint64(len(frames) + 1))
			if forge {
				e.Data = bytes.Clone(frame)
				e.Data[40] ^= 1
				frame = e.Data
			}
			m.Entries = append(m.Entries, e)
			frames = append(frames, frame)
		}
		return []*pb.Message{m}
	}
	spare := append(make([]*pb.Message, 0, 2), batch(2, false)...)
	first := spare[:1] // room to append in place, which must not be used
	c <- batch(3, false)
	c <- batch(1, true)
	c <- batch(2, false)
	got := drainChecks(first, c)
	if countEntries(got) != 8 || len(c) != 0 {
		t.Fatalf("gathered %d entries, %d batches left waiting: want all 8 and none", countEntries(got), len(c))
	}
	if spare[:2][1] != nil {
		t.Fatal("gathering wrote over the first batch's array")
	}
	var v verifiedFrames
	v.check(got)
	for i, f := range frames {
		forged := i == 5
		if got := v.take(f) != nil; got == forged {
			t.Fatalf("entry %d (forged %v): remembered as checked %v", i, forged, got)
		}
	}

	// The bound: batches stop being gathered once it is reached.
	full := make([]*pb.Entry, maxCheckTogether)
	c <- []*pb.Message{{Type: pb.MsgApp.Enum(), Entries: full}}
	c <- batch(1, false)
	got = drainChecks(batch(1, false), c)
	if countEntries(got) != maxCheckTogether+1 || len(c) != 1 {
		t.Fatalf("gathered %d entries with %d batches left: want %d and 1", countEntries(got), len(c), maxCheckTogether+1)
	}
}

// Entries that never commit are never taken out: the cache stays bounded.
func TestVerifiedFramesBounded(t *testing.T) {
	var c verifiedFrames
	env := &crypto.Envelope{}
	for i := 0; i < 3*maxVerifiedFrames; i++ {
		c.add([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, env)
	}
	if n := len(c.m); n > maxVerifiedFrames {
		t.Fatalf("%d entries remembered, bound %d", n, maxVerifiedFrames)
	}
	big := make([]byte, maxVerifiedBytes/4)
	for i := 0; i < 8; i++ {
		big[0] = byte(i)
		c.add(big, env)
	}
	if c.bytes > maxVerifiedBytes {
		t.Fatalf("%d bytes remembered, bound %d", c.bytes, maxVerifiedBytes)
	}
}

// A message opened ahead is used only for exactly the inputs it was opened
// with: the same key (by value), sender, id and sealed bytes. Anything else
// (the ring resolved another key, the state machine read other bytes) is
// opened again in order.
func TestPrecheckOpenedOnlyForSameInputs(t *testing.T) {
	gid := crypto.GroupID{7}
	key := crypto.NewSenderKey(gid, [32]byte{1}, 5)
	other := key.Clone()
	other.Key[0] ^= 1
	same := key.Clone()
	c := &state.Chat{Index: 10, ID: [16]byte{2}, Sender: [32]byte{1}, Sealed: []byte("sealed")}
	done := make(chan struct{})
	close(done)
	opened := &crypto.Opened{}
	p := &precheck{
		entries: []*pb.Entry{{Index: proto.Uint64(10)}},
		slots:   []preSlot{{chat: true, sender: c.Sender, id: c.ID, sealed: []byte("sealed"), key: key, opened: opened, done: done}},
	}
	p.slots[0].claimed.Store(true) // a worker opened it
	if p.opened(10, same, c) != opened {
		t.Fatal("not used for the same inputs")
	}
	altered := *c
	altered.Sealed = []byte("sealeD")
	otherID := *c
	otherID.ID[0]++
	for what, got := range map[string]*crypto.Opened{
		"another key":     p.opened(10, other, c),
		"other bytes":     p.opened(10, key, &altered),
		"another id":      p.opened(10, key, &otherID),
		"another index":   p.opened(11, key, c),
		"an index before": p.opened(9, key, c),
		"no key":          p.opened(10, nil, c),
	} {
		if got != nil {
			t.Errorf("used for %s", what)
		}
	}
	var none *precheck
	if none.opened(10, key, c) != nil {
		t.Error("a nil precheck opened something")
	}
	// A slot no worker took yet is the caller's: it opens it at once,
	// together with the next slots no worker took (one batch), and no
	// worker opens them afterwards. These bytes open to nothing: the
	// caller then opens the message itself, and gets the error.
	p.g = &group{id: gid}
	p.entries = append(p.entries, &pb.Entry{Index: proto.Uint64(11)}, &pb.Entry{Index: proto.Uint64(12)})
	p.slots = append(p.slots, preSlot{chat: true, sender: c.Sender, id: [16]byte{3}, sealed: []byte("next"), key: key}, preSlot{chat: true})
	p.slots[0].claimed.Store(false)
	p.slots[0].opened = nil
	p.slots[0].done = make(chan struct{})
	p.slots[1].done = make(chan struct{})
	if p.opened(10, key, c) != nil {
		t.Error("bytes that open to nothing were used")
	}
	for i := range 2 {
		select {
		case <-p.slots[i].done:
		default:
			t.Errorf("slot %d, which no worker took, was left unopened", i)
		}
		if !p.slots[i].claimed.Load() {
			t.Errorf("slot %d, which no worker took, was left to the workers", i)
		}
	}
	if p.slots[2].claimed.Load() {
		t.Error("a slot not to be opened ahead was claimed")
	}
}

// Stage 2's chunks cover every message to open exactly once, in order: a
// small first one, which the group's goroutine waits for, then equations as
// large as crypto.BatchSize.
func TestOpenChunksCoverInOrder(t *testing.T) {
	for _, n := range []int{1, 15, 16, 17, 100, 272, 273, 1000} {
		at := 0
		for k := 0; ; k++ {
			lo, hi := openChunkAt(k, n)
			if lo >= hi {
				if at != n {
					t.Fatalf("n=%d: the chunks end at %d", n, at)
				}
				break
			}
			if lo != at {
				t.Fatalf("n=%d: chunk %d starts at %d, want %d", n, k, lo, at)
			}
			if k == 0 && hi-lo > openChunk || hi-lo > crypto.BatchSize {
				t.Fatalf("n=%d: chunk %d holds %d messages", n, k, hi-lo)
			}
			if k == 1 && hi-lo != min(n-openChunk, crypto.BatchSize) {
				t.Fatalf("n=%d: the second chunk holds %d messages, want as many as an equation takes", n, hi-lo)
			}
			at = hi
		}
	}
}
