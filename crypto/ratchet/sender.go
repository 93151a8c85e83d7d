package ratchet

import (
	"bytes"
	"fmt"
)

// Sender is the author's end of a chain: it seals each message under the
// next message key and deletes the key. It is not safe for concurrent use.
type Sender struct {
	context []byte
	next    uint64        // the counter of the next message
	ck      [KeySize]byte // chain key number next
}

// NewSender starts the chain of the sender key seed, bound to context (at
// most [MaxContext] bytes), at counter 0. The caller should clear its own
// copy of seed once every chain it starts from it exists.
func NewSender(seed *[KeySize]byte, context []byte) (*Sender, error) {
	if err := checkContext(context); err != nil {
		return nil, fmt.Errorf("new sender chain: %w", err)
	}
	return &Sender{context: bytes.Clone(context), ck: *seed}, nil
}

// Next returns the counter the next [Sender.Seal] will use.
func (s *Sender) Next() uint64 { return s.next }

// Seal seals plaintext, with the caller's extra associated data (which the
// reader must give again), under the next message key, and returns the
// counter it used and nonce || ciphertext. The message key and the chain
// key it came from are overwritten before Seal returns: a sender cannot
// open what it sealed, and a retry is sealed anew, at a new counter. Persist
// the state ([Sender.MarshalBinary]) before sending, or a crash can make
// the sender reuse a counter, which readers refuse as a replay.
func (s *Sender) Seal(plaintext, extra []byte) (uint64, []byte, error) {
	if s.next > MaxCounter {
		return 0, nil, fmt.Errorf("seal message: %w at %d messages", ErrExhausted, s.next)
	}
	var mk [KeySize]byte
	step(&s.ck, &mk, &s.ck)
	counter := s.next
	s.next++
	sealed := seal(&mk, s.context, counter, plaintext, extra)
	clear(mk[:])
	return counter, sealed, nil
}

// Destroy overwrites the chain key. The Sender cannot seal any more.
func (s *Sender) Destroy() {
	clear(s.ck[:])
	s.next = MaxCounter + 1
}
