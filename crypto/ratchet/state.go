package ratchet

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/demes/demes/internal/canon"
)

// StateVersion is the version of the exported states.
const StateVersion = 1

// Kinds of exported state: a state of one kind never restores as the other.
const (
	kindSender   = 1
	kindReceiver = 2
)

// maxState bounds an exported state before it is decoded: a receiver with
// Window skipped keys and the longest context is about 40.4 KB.
const maxState = 64 << 10

// skippedSize is the length of one skipped key in a receiver's state: the
// counter, big-endian, and the key.
const skippedSize = 8 + KeySize

// stateWire is an exported state: a CBOR array of six items. A sender's
// skipped keys are empty.
type stateWire struct {
	_       struct{} `cbor:",toarray"`
	Version uint64   // StateVersion
	Kind    uint64   // kindSender or kindReceiver
	Context []byte   // at most MaxContext bytes
	Next    uint64   // the next counter, at most MaxCounter+1
	Chain   []byte   // KeySize bytes: the chain key of Next
	Skipped []byte   // n × (uint64be(counter) || key), ascending
}

// MarshalBinary exports the sender's state, for the caller to keep
// encrypted at rest. It is as secret as the sender key: it seals every
// message from the next counter on (but none before).
func (s *Sender) MarshalBinary() ([]byte, error) {
	return canon.Marshal(&stateWire{Version: StateVersion, Kind: kindSender, Context: s.context, Next: s.next, Chain: s.ck[:]})
}

// MarshalBinary exports the receiver's state, for the caller to keep
// encrypted at rest. It opens the skipped messages it keeps keys for and
// every message from the next counter on, and none of the messages already
// opened.
func (r *Receiver) MarshalBinary() ([]byte, error) {
	skipped := make([]byte, 0, len(r.skipped)*skippedSize)
	for _, c := range r.Skipped() {
		k := r.skipped[c]
		skipped = binary.BigEndian.AppendUint64(skipped, c)
		skipped = append(skipped, k[:]...)
	}
	return canon.Marshal(&stateWire{Version: StateVersion, Kind: kindReceiver, Context: r.context, Next: r.next, Chain: r.ck[:], Skipped: skipped})
}

// decodeState decodes and checks an exported state of the given kind.
func decodeState(b []byte, kind uint64) (*stateWire, error) {
	if len(b) > maxState {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), maxState)
	}
	var w stateWire
	if err := canon.Decode(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case w.Version != StateVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, w.Version, StateVersion)
	case w.Kind != kind:
		return nil, fmt.Errorf("%w: a state of kind %d, want %d", ErrMalformed, w.Kind, kind)
	case len(w.Context) > MaxContext:
		return nil, fmt.Errorf("%w: context of %d bytes, limit %d", ErrMalformed, len(w.Context), MaxContext)
	case w.Next > MaxCounter+1:
		return nil, fmt.Errorf("%w: next counter %d past %d", ErrMalformed, w.Next, uint64(MaxCounter)+1)
	case len(w.Chain) != KeySize:
		return nil, fmt.Errorf("%w: chain key of %d bytes", ErrMalformed, len(w.Chain))
	case len(w.Skipped)%skippedSize != 0:
		return nil, fmt.Errorf("%w: skipped keys of %d bytes", ErrMalformed, len(w.Skipped))
	case len(w.Skipped)/skippedSize > Window-1:
		return nil, fmt.Errorf("%w: %d skipped keys, limit %d", ErrMalformed, len(w.Skipped)/skippedSize, Window-1)
	}
	var prev uint64
	for i := 0; i < len(w.Skipped); i += skippedSize {
		c := binary.BigEndian.Uint64(w.Skipped[i:])
		switch {
		case i > 0 && c <= prev:
			return nil, fmt.Errorf("%w: skipped counters not in ascending order", ErrMalformed)
		case c+1 >= w.Next || w.Next-c > Window:
			// The counter before next is the highest opened, never skipped.
			return nil, fmt.Errorf("%w: skipped counter %d outside the window before %d", ErrMalformed, c, w.Next)
		}
		prev = c
	}
	return &w, nil
}

// RestoreSender rebuilds a sender from [Sender.MarshalBinary]'s output.
func RestoreSender(b []byte) (*Sender, error) {
	w, err := decodeState(b, kindSender)
	if err != nil {
		return nil, fmt.Errorf("restore sender chain: %w", err)
	}
	if len(w.Skipped) != 0 {
		return nil, fmt.Errorf("restore sender chain: %w: a sender with skipped keys", ErrMalformed)
	}
	s := &Sender{context: bytes.Clone(w.Context), next: w.Next, ck: [KeySize]byte(w.Chain)}
	clear(w.Chain)
	return s, nil
}

// RestoreReceiver rebuilds a receiver from [Receiver.MarshalBinary]'s
// output.
func RestoreReceiver(b []byte) (*Receiver, error) {
	w, err := decodeState(b, kindReceiver)
	if err != nil {
		return nil, fmt.Errorf("restore receiver chain: %w", err)
	}
	r := &Receiver{context: bytes.Clone(w.Context), next: w.Next, ck: [KeySize]byte(w.Chain), skipped: map[uint64][KeySize]byte{}}
	for i := 0; i < len(w.Skipped); i += skippedSize {
		r.skipped[binary.BigEndian.Uint64(w.Skipped[i:])] = [KeySize]byte(w.Skipped[i+8:])
	}
	clear(w.Chain)
	clear(w.Skipped)
	return r, nil
}
