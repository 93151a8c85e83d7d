package state

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestMessageIDsAcrossMerges: every id added is found at its index, before
// and after the merges that move ids from the map into the sorted slice; an
// id never added is not; and each walks all of them in ascending order.
func TestMessageIDsAcrossMerges(t *testing.T) {
	var m MessageIDs
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[[16]byte]uint64{}
	var probe [16]byte
	for i := range 20000 {
		var id [16]byte
		binary.LittleEndian.PutUint64(id[:], rng.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
		if _, dup := want[id]; dup {
			continue
		}
		want[id] = uint64(i + 1)
		m.add(id, uint64(i+1))
		if i == 5000 {
			probe = id
		}
		if at, ok := m.Lookup(probe); i >= 5000 && (!ok || at != 5001) {
			t.Fatalf("after %d ids, the 5001st is found at %d, %v", i+1, at, ok)
		}
	}
	if len(m.sorted) == 0 || m.Len() != len(want) {
		t.Fatalf("%d ids (%d sorted), want %d with merges done", m.Len(), len(m.sorted), len(want))
	}
	for id, at := range want {
		if got, ok := m.Lookup(id); !ok || got != at {
			t.Fatalf("id %x found at %d, %v; want %d", id[:4], got, ok, at)
		}
	}
	var never [16]byte
	never[0] = 1
	if _, ok := want[never]; !ok && m.Has(never) {
		t.Fatal("an id never added is found")
	}
	var prev []byte
	n := 0
	for _, e := range m.inOrder() {
		id, at := e.id(), e.index
		if prev != nil && string(prev) >= string(id[:]) {
			t.Fatalf("ids out of order at %d", n)
		}
		if want[id] != at {
			t.Fatalf("id %x walked at %d, want %d", id[:4], at, want[id])
		}
		prev = append(prev[:0], id[:]...)
		n++
	}
	if n != len(want) {
		t.Fatalf("each walked %d ids, want %d", n, len(want))
	}
}

// BenchmarkMessageIDs adds a million ids and reports the heap they hold
// (B/id, after a collection) and the time an add and a lookup take: what
// the accepted ids of a history of 1,000,000 messages cost a node.
func BenchmarkMessageIDs(b *testing.B) {
	const n = 1_000_000
	ids := make([][16]byte, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range ids {
		binary.LittleEndian.PutUint64(ids[i][:], rng.Uint64())
		binary.LittleEndian.PutUint64(ids[i][8:], rng.Uint64())
	}
	var held, lookups float64
	for b.Loop() {
		before := heapInUse()
		var m MessageIDs
		for i, id := range ids {
			m.add(id, uint64(i+1))
		}
		held = float64(heapInUse()-before) / n
		b.StopTimer()
		t0 := time.Now()
		for _, id := range ids[:100000] {
			if !m.Has(id) {
				b.Fatal("an id added is not found")
			}
		}
		lookups = float64(time.Since(t0).Nanoseconds()) / 100000
		runtime.KeepAlive(&m)
		b.StartTimer()
	}
	b.ReportMetric(held, "B/id")
	b.ReportMetric(lookups, "ns/lookup")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/add")
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestMessageIDsRestoredLayout: ids taken back in order (a snapshot's
// restore) are laid out exactly as adding them one at a time left them,
// around and between merges, so that a restored state equals, field for
// field, the state that wrote the snapshot.
func TestMessageIDsRestoredLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var m MessageIDs
	for n := 1; n <= 12000; n++ {
		var id [16]byte
		binary.LittleEndian.PutUint64(id[:], rng.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
		m.add(id, uint64(3*n)) // indexes with gaps, as other entries make
		if n > 1100 && n%97 != 0 && n != 1024 && n != 1025 && n != 10240 {
			continue
		}
		var back MessageIDs
		if err := back.restore(slices.Clone(m.inOrder())); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("after %d ids: restored with %d sorted and %d recent, the original has %d and %d",
				n, len(back.sorted), len(back.recent), len(m.sorted), len(m.recent))
		}
	}
}

// TestMessageIDsRestoreRefusesOneIndexTwice: ids at one index cannot come
// from applying a log (one message an entry), so restore refuses them
// rather than lay them out unlike any applied state (helper-44: 5,000 ids at
// one index were all put in the map).
func TestMessageIDsRestoreRefusesOneIndexTwice(t *testing.T) {
	ids := make([]idAt, 5000)
	for i := range ids {
		ids[i] = idAt{hi: uint64(i), lo: 1, index: 7}
	}
	var m MessageIDs
	if err := m.restore(ids); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("restore of 5,000 ids at one index: %v, want ErrBadSnapshot", err)
	}
}
