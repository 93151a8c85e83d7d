package node

import (
	"sync"
	"sync/atomic"
)

// rejectCounter counts rejected envelopes by reason, for status.
type rejectCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func newRejectCounter() *rejectCounter { return &rejectCounter{m: map[string]int64{}} }

// maxRejectReasons bounds the distinct reasons counted: a reason may name
// a key or an index, and a malicious member could otherwise grow the map by
// one key per entry it has committed.
const maxRejectReasons = 256

// otherReasons counts the rejections beyond maxRejectReasons distinct reasons.
const otherReasons = "other reasons"

func (r *rejectCounter) add(reason string) {
	r.mu.Lock()
	if _, ok := r.m[reason]; !ok && len(r.m) >= maxRejectReasons {
		reason = otherReasons
	}
	r.m[reason]++
	r.mu.Unlock()
}

func (r *rejectCounter) snapshot() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.m))
	for k, v := range r.m {
		out[k] = v
	}
	return out
}

// broadcaster fans events out to subscribers.
type broadcaster struct {
	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed atomic.Bool
}

func newBroadcaster() *broadcaster { return &broadcaster{subs: map[chan Event]struct{}{}} }

func (b *broadcaster) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	b.mu.Lock()
	if b.closed.Load() {
		close(ch)
		b.mu.Unlock()
		return ch, func() {}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			if _, ok := b.subs[ch]; ok {
				delete(b.subs, ch)
				close(ch)
			}
			b.mu.Unlock()
		})
	}
}

func (b *broadcaster) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed.Store(true)
	for ch := range b.subs {
		close(ch)
		delete(b.subs, ch)
	}
}
