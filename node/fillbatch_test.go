package node

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/demes/demes/crypto"
)

// TestFillBatchFitsTheFrame checks that the messages waiting for a peer go
// out in order, in requests the receiver accepts: appends to a member
// catching up are up to 1 MiB each, and a request with more than
// crypto.MaxPayload of them would be refused every time it was sent again.
func TestFillBatchFitsTheFrame(t *testing.T) {
	q := make(chan *outMsg, 64)
	const n = 20
	for i := range n {
		q <- &outMsg{id: uint64(i), m: bytes.Repeat([]byte{byte(i)}, maxAppendBytes+1000)}
	}
	q <- &outMsg{id: n, m: []byte("small")}
	var got []uint64
	next := &outMsg{id: 1000, m: bytes.Repeat([]byte{1}, 2*maxBatchBytes)} // larger than a batch by itself
	for next != nil || len(q) > 0 {
		var first *outMsg
		if next != nil {
			first = next
		} else {
			first = <-q
		}
		batch, rest := fillBatch(first, q)
		next = rest
		var items [][]byte
		for _, m := range batch {
			got = append(got, m.id)
			items = append(items, m.m)
		}
		if len(batch) > 1 {
			if _, err := crypto.EncodeBatch(items); err != nil {
				t.Fatalf("a batch of %d messages: %v", len(batch), err)
			}
		}
	}
	if len(got) != n+2 || got[0] != 1000 {
		t.Fatalf("messages out: %v", got)
	}
	for i, id := range got[1:] {
		if id != uint64(i) {
			t.Fatalf("messages out of order: %v", got)
		}
	}
}

// TestIdlePeerCostsLittle checks what a node pays for each member it
// sends to while nothing waits: the host of a group of 100 has 99 peers,
// and a queue that reserved room for peerQueue whole messages took 288 KB
// each, more than half of a member's heap in `demes bench scale`.
func TestIdlePeerCostsLittle(t *testing.T) {
	const n = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peers := make([]*peer, n)
	for i := range peers {
		peers[i] = newPeer(nil, fmt.Sprintf("http://127.0.0.1:%d", i+1))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(peers)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes an idle peer", per)
	if per > 48<<10 {
		t.Fatalf("an idle peer takes %d bytes of heap, want at most 48 KiB", per)
	}
}
