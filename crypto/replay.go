package crypto

import (
	"container/list"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Counter hands out the counters of one sender's envelopes. Counters strictly
// increase: within a process because each is one more than the last, and
// across restarts because a new Counter starts at the current unix time in
// nanoseconds, which has moved on by more than the number of envelopes the
// previous process could have sent (fewer than one per nanosecond). If the
// clock may step backwards between runs, persist the last counter and use
// [NewCounterAfter]. A Counter is safe for concurrent use.
type Counter struct {
	last atomic.Uint64
}

// NewCounter returns a Counter whose first value is the current unix time in
// nanoseconds.
func NewCounter() *Counter { return NewCounterAfter(0) }

// NewCounterAfter returns a Counter whose first value is greater than last
// and not less than the current unix time in nanoseconds.
func NewCounterAfter(last uint64) *Counter {
	c := &Counter{}
	now := uint64(max(time.Now().UnixNano(), 1))
	c.last.Store(max(now-1, last))
	return c
}

// Next returns the next counter.
func (c *Counter) Next() uint64 { return c.last.Add(1) }

// Last returns the counter Next returned last: every envelope signed after
// a call to Last carries a greater one.
func (c *Counter) Last() uint64 { return c.last.Load() }

// ReplayWindow is how far behind the highest counter seen from a sender a
// counter may be and still be accepted (once). Envelopes sent concurrently
// may arrive out of order; the window lets them in without letting any of
// them in twice.
const ReplayWindow = 1024

// MaxReplaySenders bounds the number of (group, sender) pairs a
// [ReplayFilter] tracks, and so its memory (about 250 bytes per pair).
const MaxReplaySenders = 4096

// The window is a ring of 64-bit blocks, one bit per counter, as in
// wireguard-go's replay package. One block more than the window needs lets
// the ring advance a block at a time: the block being reused is always
// entirely older than the window.
const (
	blockBits  = 6
	blockMask  = 1<<blockBits - 1
	ringBlocks = ReplayWindow>>blockBits + 1
)

type window struct {
	last uint64
	ring [ringBlocks]uint64
}

// accept reports whether counter is new to the window, and records it.
func (w *window) accept(counter uint64) bool {
	block := counter >> blockBits
	if counter > w.last {
		// Clear the blocks the window moves over; after a jump of more
		// than the whole ring, that is all of them.
		current := w.last >> blockBits
		diff := min(block-current, ringBlocks)
		for i := current + 1; i <= current+diff; i++ {
			w.ring[i%ringBlocks] = 0
		}
		w.last = counter
	} else if w.last-counter > ReplayWindow {
		return false
	}
	i, bit := block%ringBlocks, uint64(1)<<(counter&blockMask)
	old := w.ring[i]
	w.ring[i] = old | bit
	return old&bit == 0
}

type replayKey struct {
	group  GroupID
	sender [32]byte
}

type replayEntry struct {
	key replayKey
	w   window
	// minTime is the filter's floor when this entry was created: nothing
	// at or before it is accepted, because this pair may have been tracked
	// and evicted before and its old envelopes must not come back.
	minTime int64
	// maxTime is the latest Time accepted from this pair; it becomes the
	// floor when the entry is evicted.
	maxTime int64
}

// ReplayFilter rejects envelopes that were seen before. It remembers, per
// group and sender, a sliding window of the counters it has accepted (see
// [ReplayWindow]), and it rejects an envelope whose counter is in the window
// already or older than the window ([ErrReplay]), or whose time is further
// than the maximum skew from the receiver's clock ([ErrSkew]).
//
// Memory is bounded: when more than [MaxReplaySenders] pairs are tracked, the
// least recently used is forgotten. Forgetting must not reopen the door to
// replays, so the filter keeps a floor, the latest time accepted from any
// forgotten pair, and accepts nothing from a pair it does not track (nor from
// one it started tracking since) unless its time is after that floor. An
// honest sender can only be hurt by this after the filter has tracked more
// pairs than its limit, so check that a sender is a member before calling
// [ReplayFilter.Check] to keep strangers from filling it.
//
// The skew check is what bounds replays across a receiver's restart, when the
// windows are empty: an old envelope is stale by then. A ReplayFilter is safe
// for concurrent use.
type ReplayFilter struct {
	maxSkew time.Duration

	mu    sync.Mutex
	pairs map[replayKey]*list.Element // of *replayEntry
	lru   list.List                   // front: most recently used
	floor int64
}

// NewReplayFilter returns an empty filter that rejects envelopes whose time
// is more than maxSkew away from the receiver's clock. A maxSkew of zero or
// less turns the clock check off (for simulations with virtual clocks); the
// counter windows still apply.
func NewReplayFilter(maxSkew time.Duration) *ReplayFilter {
	return &ReplayFilter{maxSkew: maxSkew, pairs: make(map[replayKey]*list.Element)}
}

// Check decides whether e, an envelope that [Verify] returned, is fresh at
// time now. If it is, Check records its counter, so that the same envelope
// is rejected the next time: call it once per received envelope, after the
// checks that do not depend on state.
func (f *ReplayFilter) Check(e *Envelope, now time.Time) error {
	if f.maxSkew > 0 {
		// Compare with saturating bounds: e.Time is the peer's and may be
		// anything, so e.Time-now could overflow.
		n, s := now.UnixNano(), int64(f.maxSkew)
		lo, hi := n-s, n+s
		if n < math.MinInt64+s {
			lo = math.MinInt64
		}
		if n > math.MaxInt64-s {
			hi = math.MaxInt64
		}
		if e.Time < lo || e.Time > hi {
			return fmt.Errorf("check envelope %d from %x: %w: sent at %s, now %s", e.Counter, e.Sender[:4], ErrSkew,
				time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
		}
	}
	key := replayKey{e.Group, e.Sender}

	f.mu.Lock()
	defer f.mu.Unlock()
	var ent *replayEntry
	if el, ok := f.pairs[key]; ok {
		ent = el.Value.(*replayEntry)
		f.lru.MoveToFront(el)
	} else {
		// A new pair needs room; the floor it must beat includes the pair
		// about to be forgotten to make that room.
		floor, victim := f.floor, (*list.Element)(nil)
		if f.lru.Len() >= MaxReplaySenders {
			victim = f.lru.Back()
			floor = max(floor, victim.Value.(*replayEntry).maxTime)
		}
		if e.Time <= floor {
			return fmt.Errorf("check envelope %d from %x: %w: sender not tracked and envelope older than the forgotten ones", e.Counter, e.Sender[:4], ErrReplay)
		}
		if victim != nil {
			delete(f.pairs, victim.Value.(*replayEntry).key)
			f.lru.Remove(victim)
		}
		f.floor = floor
		ent = &replayEntry{key: key, minTime: floor, maxTime: e.Time}
		f.pairs[key] = f.lru.PushFront(ent)
	}
	if e.Time <= ent.minTime {
		return fmt.Errorf("check envelope %d from %x: %w: envelope older than the forgotten ones", e.Counter, e.Sender[:4], ErrReplay)
	}
	if !ent.w.accept(e.Counter) {
		return fmt.Errorf("check envelope %d from %x: %w", e.Counter, e.Sender[:4], ErrReplay)
	}
	ent.maxTime = max(ent.maxTime, e.Time)
	return nil
}
