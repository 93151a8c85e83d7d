package crypto

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	before := uint64(time.Now().UnixNano())
	c := NewCounter()
	first := c.Next()
	if first < before {
		t.Fatalf("first counter %d is before the time the counter was made (%d)", first, before)
	}
	if next := c.Next(); next != first+1 {
		t.Fatalf("second counter %d, want %d", next, first+1)
	}
	// A counter made later (a restart) starts above everything the first
	// one handed out, as long as it handed out fewer than one per
	// nanosecond; persisting the last value covers a clock set back.
	if c2 := NewCounterAfter(first + 1e15); c2.Next() != first+1e15+1 {
		t.Fatal("NewCounterAfter does not start after its argument")
	}
	if c3 := NewCounter(); c3.Next() <= first {
		t.Fatal("a later counter starts at or below an earlier one")
	}

	// Concurrent callers never get the same value.
	const workers, each = 8, 1000
	var mu sync.Mutex
	seen := make(map[uint64]bool)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make([]uint64, each)
			for i := range local {
				local[i] = c.Next()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range local {
				seen[v] = true
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d distinct counters from %d calls", len(seen), workers*each)
	}
}

func TestReplayFilter(t *testing.T) {
	now := time.Unix(1700000000, 0)
	const skew = time.Minute
	a, b := testID(t, 1).Public().Sign, testID(t, 2).Public().Sign
	other := GroupID{1}
	const base = 1700000000000000000
	type step struct {
		group   GroupID
		sender  [32]byte
		counter uint64
		dt      time.Duration // Time - now
		want    error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"fresh then repeat", []step{
			{testGroup, a, base, 0, nil},
			{testGroup, a, base, 0, ErrReplay},
		}},
		{"increasing", []step{
			{testGroup, a, base, 0, nil},
			{testGroup, a, base + 1, 0, nil},
			{testGroup, a, base + 1000, 0, nil},
		}},
		{"out of order inside the window", []step{
			{testGroup, a, base + 10, 0, nil},
			{testGroup, a, base + 3, 0, nil},
			{testGroup, a, base + 7, 0, nil},
			{testGroup, a, base + 3, 0, ErrReplay},
			{testGroup, a, base + 7, 0, ErrReplay},
			{testGroup, a, base + 10, 0, ErrReplay},
		}},
		{"edge of the window", []step{
			{testGroup, a, base + ReplayWindow + 1, 0, nil},
			{testGroup, a, base + 1, 0, nil}, // exactly ReplayWindow behind
			{testGroup, a, base, 0, ErrReplay},
		}},
		{"jump forward forgets the old window", []step{
			{testGroup, a, base, 0, nil},
			{testGroup, a, base + 1, 0, nil},
			{testGroup, a, base + 1e6, 0, nil},
			{testGroup, a, base + 2, 0, ErrReplay},
			{testGroup, a, base + 1e6 - 1, 0, nil},
		}},
		{"senders and groups are separate", []step{
			{testGroup, a, base, 0, nil},
			{testGroup, b, base, 0, nil},
			{other, a, base, 0, nil},
			{other, b, base, 0, nil},
			{other, b, base, 0, ErrReplay},
		}},
		{"skew", []step{
			{testGroup, a, base, skew + 1, ErrSkew},
			{testGroup, a, base, -skew - 1, ErrSkew},
			{testGroup, a, base, skew, nil}, // rejected envelopes were not recorded
			{testGroup, a, base + 1, -skew, nil},
			{testGroup, a, base + 2, math.MaxInt64 / 2, ErrSkew},
		}},
		{"extreme times", []step{
			{testGroup, a, base, time.Duration(math.MinInt64), ErrSkew},
			{testGroup, a, base, time.Duration(math.MaxInt64), ErrSkew},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewReplayFilter(skew)
			for i, s := range tc.steps {
				e := &Envelope{Type: TypeBatch, Group: s.group, Sender: s.sender, Counter: s.counter, Time: now.UnixNano() + int64(s.dt)}
				if s.dt == time.Duration(math.MinInt64) || s.dt == time.Duration(math.MaxInt64) {
					e.Time = int64(s.dt)
				}
				err := f.Check(e, now)
				if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
					t.Fatalf("step %d (counter base%+d): Check = %v, want %v", i, int64(s.counter-base), err, s.want)
				}
			}
		})
	}
}

func TestReplayFilterNoSkewCheck(t *testing.T) {
	f := NewReplayFilter(0)
	e := &Envelope{Group: testGroup, Counter: 1, Time: 1}
	if err := f.Check(e, time.Unix(1e9, 0)); err != nil {
		t.Fatalf("maxSkew 0 still checks the clock: %v", err)
	}
	if err := f.Check(e, time.Unix(1e9, 0)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay = %v, want %v", err, ErrReplay)
	}
}

// TestReplayWindowModel compares the ring-of-bits window with the simplest
// correct model (a set of every counter ever accepted, and the highest) on
// random sequences that move forward, fall back, repeat and jump.
func TestReplayWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 200 {
		var w window
		seen := map[uint64]bool{}
		var highest uint64
		pos := uint64(1<<16 + rng.IntN(1<<20))
		for i := range 2000 {
			var c uint64
			switch r := rng.IntN(100); {
			case r < 40:
				pos += uint64(rng.IntN(200))
				c = pos
			case r < 80:
				c = pos - uint64(rng.IntN(ReplayWindow+200))
			case r < 95:
				c = pos - uint64(rng.IntN(4))
			default:
				pos += uint64(rng.IntN(5 * ReplayWindow))
				c = pos
			}
			want := !seen[c] && (len(seen) == 0 || c > highest || highest-c <= ReplayWindow)
			if got := w.accept(c); got != want {
				t.Fatalf("run %d step %d: accept(%d) with highest %d = %v, want %v", run, i, c, highest, got, want)
			}
			if want {
				seen[c] = true
				highest = max(highest, c)
			}
		}
	}
}

// TestReplayFilterEviction fills the filter past its limit and checks that
// forgetting a sender does not let its old envelopes back in, while its new
// envelopes still pass.
func TestReplayFilterEviction(t *testing.T) {
	now := time.Unix(1700000000, 0)
	f := NewReplayFilter(time.Hour)
	env := func(i int, counter uint64, dt time.Duration) *Envelope {
		e := &Envelope{Group: testGroup, Counter: counter, Time: now.Add(dt).UnixNano()}
		e.Sender[0], e.Sender[1] = byte(i), byte(i>>8)
		return e
	}
	first := env(0, 100, -time.Minute)
	if err := f.Check(first, now); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= MaxReplaySenders; i++ {
		if err := f.Check(env(i, 1, time.Duration(-i)), now); err != nil {
			t.Fatalf("sender %d: %v", i, err)
		}
	}
	if len(f.pairs) != MaxReplaySenders || f.lru.Len() != MaxReplaySenders {
		t.Fatalf("filter tracks %d pairs (list %d), limit %d", len(f.pairs), f.lru.Len(), MaxReplaySenders)
	}
	if _, ok := f.pairs[replayKey{first.Group, first.Sender}]; ok {
		t.Fatal("the least recently used sender was not the one forgotten")
	}
	if err := f.Check(first, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a forgotten sender's envelope = %v, want %v", err, ErrReplay)
	}
	// A rejected envelope changes nothing: in particular it does not make
	// room for itself by forgetting another sender.
	second := env(1, 1, -1)
	if _, ok := f.pairs[replayKey{second.Group, second.Sender}]; !ok {
		t.Fatal("a rejected envelope evicted a tracked sender")
	}
	// Its old counters stay dead even once it is tracked again...
	if err := f.Check(env(0, 200, 0), now); err != nil {
		t.Fatalf("new envelope of a forgotten sender: %v", err)
	}
	if err := f.Check(env(0, 150, -time.Minute), now); !errors.Is(err, ErrReplay) {
		t.Fatalf("old envelope of a re-tracked sender = %v, want %v", err, ErrReplay)
	}
	// ...and the recently used senders were kept.
	if err := f.Check(env(MaxReplaySenders, 1, -MaxReplaySenders), now); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a tracked sender = %v, want %v", err, ErrReplay)
	}
}

// TestReplayFilterConcurrent sends every envelope from several goroutines at
// once: each must be accepted exactly once.
func TestReplayFilterConcurrent(t *testing.T) {
	now := time.Unix(1700000000, 0)
	f := NewReplayFilter(time.Minute)
	const n, copies = 500, 4
	var accepted [n]int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range copies {
		wg.Go(func() {
			for c := range n {
				e := &Envelope{Group: testGroup, Sender: [32]byte{byte(c % 3)}, Counter: uint64(c), Time: now.UnixNano()}
				if f.Check(e, now) == nil {
					mu.Lock()
					accepted[c]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for c, k := range accepted {
		if k != 1 {
			t.Fatalf("counter %d accepted %d times", c, k)
		}
	}
}
