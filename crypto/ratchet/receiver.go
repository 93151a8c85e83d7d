package ratchet

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
)

// Receiver is a reader's end of a chain: it opens each counter once, in any
// order within [Window], and deletes each message key once its message is
// open. It is not safe for concurrent use.
type Receiver struct {
	context []byte
	next    uint64        // the counter after the highest opened
	ck      [KeySize]byte // chain key number next
	// skipped holds the message keys of the counters below next that were
	// passed over and not opened yet: none below next-Window and not
	// next-1 (the highest opened), so at most Window-1 of them.
	skipped map[uint64][KeySize]byte
}

// NewReceiver starts the reading end of the chain of the sender key seed,
// bound to context (at most [MaxContext] bytes), at counter 0.
func NewReceiver(seed *[KeySize]byte, context []byte) (*Receiver, error) {
	if err := checkContext(context); err != nil {
		return nil, fmt.Errorf("new receiver chain: %w", err)
	}
	return &Receiver{context: bytes.Clone(context), ck: *seed, skipped: map[uint64][KeySize]byte{}}, nil
}

// Next returns the counter after the highest one opened so far.
func (r *Receiver) Next() uint64 { return r.next }

// Skipped returns the counters whose keys the receiver keeps, in ascending
// order: the messages it passed over and may still open.
func (r *Receiver) Skipped() []uint64 { return slices.Sorted(maps.Keys(r.skipped)) }

// Open opens the message sealed at counter, with the caller's extra
// associated data. A counter below the next one opens only if its key was
// skipped and kept; a counter at or past the next one derives the keys up to
// it, keeps those passed over, and advances the chain, overwriting the
// old chain key.
//
// The receiver changes only when the message authenticates: a forged or
// damaged message fails with [ErrDecrypt] and costs no key. A counter
// opened before fails with [ErrReplay], one more than [Window] behind the
// next with [ErrTooOld], and one Window or more ahead with [ErrTooFar].
func (r *Receiver) Open(counter uint64, sealed, extra []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("open message %d: %w: %d bytes, at least %d", counter, ErrMalformed, len(sealed), Overhead)
	}
	if counter > MaxCounter {
		return nil, fmt.Errorf("open message %d: %w: counter past %d", counter, ErrMalformed, uint64(MaxCounter))
	}
	if counter < r.next {
		mk, ok := r.skipped[counter]
		if !ok {
			if r.next-counter > Window {
				return nil, fmt.Errorf("open message %d: %w: the next is %d, the window %d", counter, ErrTooOld, r.next, Window)
			}
			return nil, fmt.Errorf("open message %d: %w", counter, ErrReplay)
		}
		pt, err := OpenWithKey(&mk, r.context, counter, sealed, extra)
		clear(mk[:])
		if err != nil {
			return nil, err
		}
		r.deleteSkipped(counter)
		return pt, nil
	}
	if counter-r.next >= Window {
		return nil, fmt.Errorf("open message %d: %w: the next is %d, the window %d", counter, ErrTooFar, r.next, Window)
	}

	// Derive the keys from next to counter on copies, and commit them only
	// once the message authenticates.
	n := counter - r.next
	keys := make([][KeySize]byte, n)
	ck := r.ck
	var mk [KeySize]byte
	for i := range keys {
		step(&ck, &keys[i], &ck)
	}
	step(&ck, &mk, &ck)
	pt, err := OpenWithKey(&mk, r.context, counter, sealed, extra)
	clear(mk[:])
	if err != nil {
		clear(ck[:])
		for i := range keys {
			clear(keys[i][:])
		}
		return nil, err
	}
	for i, k := range keys {
		r.skipped[r.next+uint64(i)] = k
		clear(keys[i][:])
	}
	clear(r.ck[:])
	r.ck = ck
	clear(ck[:])
	r.next = counter + 1
	r.prune()
	return pt, nil
}

// prune deletes the skipped keys more than a window behind next.
func (r *Receiver) prune() {
	if r.next <= Window {
		return
	}
	for c := range r.skipped {
		if c < r.next-Window {
			r.deleteSkipped(c)
		}
	}
}

func (r *Receiver) deleteSkipped(c uint64) {
	// The map's value is a copy; overwriting it before the delete clears
	// the bytes the map held.
	r.skipped[c] = [KeySize]byte{}
	delete(r.skipped, c)
}

// Destroy overwrites the chain key and every skipped key. The Receiver
// cannot open anything any more.
func (r *Receiver) Destroy() {
	clear(r.ck[:])
	for c := range r.skipped {
		r.deleteSkipped(c)
	}
	r.next = MaxCounter + 1
}
