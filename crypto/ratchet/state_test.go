package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/demes/demes/internal/canon"
)

func TestStateRoundTrip(t *testing.T) {
	s, r := pair(t)
	msgs := sealN(t, s, 10)
	mustOpen(t, r, 3, msgs[3], "m3")
	mustOpen(t, r, 7, msgs[7], "m7")

	sb, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := RestoreSender(sb)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := RestoreReceiver(rb)
	if err != nil {
		t.Fatal(err)
	}
	// What restores exports to the same bytes.
	if again, _ := r2.MarshalBinary(); !bytes.Equal(again, rb) {
		t.Fatal("a restored receiver exports other bytes")
	}
	if again, _ := s2.MarshalBinary(); !bytes.Equal(again, sb) {
		t.Fatal("a restored sender exports other bytes")
	}
	// The restored ends go on where the others stopped.
	c, m10, err := s2.Seal([]byte("m10"), nil)
	if err != nil || c != 10 {
		t.Fatalf("restored sender: %d, %v", c, err)
	}
	mustOpen(t, r2, 10, m10, "m10")
	mustOpen(t, r2, 5, msgs[5], "m5")
	if _, err := r2.Open(7, msgs[7], nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("restored receiver reopens 7: %v", err)
	}
	if _, err := RestoreSender(rb); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a receiver state restores as a sender: %v", err)
	}
	if _, err := RestoreReceiver(sb); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a sender state restores as a receiver: %v", err)
	}
}

func TestStateRejects(t *testing.T) {
	good := func() *stateWire {
		return &stateWire{Version: StateVersion, Kind: kindReceiver, Context: testContext, Next: 11, Chain: make([]byte, KeySize),
			Skipped: append(append([]byte{0, 0, 0, 0, 0, 0, 0, 2}, make([]byte, KeySize)...), append([]byte{0, 0, 0, 0, 0, 0, 0, 9}, make([]byte, KeySize)...)...)}
	}
	enc := func(f func(*stateWire)) []byte {
		w := good()
		f(w)
		b, err := canon.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := RestoreReceiver(enc(func(*stateWire) {})); err != nil {
		t.Fatalf("the base case does not restore: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"oversized":        make([]byte, maxState+1),
		"version 2":        enc(func(w *stateWire) { w.Version = 2 }),
		"long context":     enc(func(w *stateWire) { w.Context = make([]byte, MaxContext+1) }),
		"next past max":    enc(func(w *stateWire) { w.Next = MaxCounter + 2 }),
		"short chain key":  enc(func(w *stateWire) { w.Chain = w.Chain[:31] }),
		"partial skipped":  enc(func(w *stateWire) { w.Skipped = w.Skipped[:39] }),
		"skipped at next":  enc(func(w *stateWire) { w.Next = 9 }),
		"skipped highest":  enc(func(w *stateWire) { w.Next = 10 }),
		"skipped too old":  enc(func(w *stateWire) { w.Next = Window + 3 }),
		"skipped unsorted": enc(func(w *stateWire) { w.Skipped = append(w.Skipped[40:], w.Skipped[:40]...) }),
		"skipped twice":    enc(func(w *stateWire) { w.Skipped = append(w.Skipped[:40], w.Skipped[:40]...) }),
		"too many skipped": enc(func(w *stateWire) {
			w.Next = 2 * Window
			w.Skipped = nil
			for c := Window - 1; c < 2*Window; c++ {
				w.Skipped = append(append(w.Skipped, 0, 0, 0, 0, 0, 0, byte(c>>8), byte(c)), make([]byte, KeySize)...)
			}
		}),
		"trailing byte": append(enc(func(*stateWire) {}), 0),
	} {
		if _, err := RestoreReceiver(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	sender := enc(func(w *stateWire) { w.Kind = kindSender })
	if _, err := RestoreSender(sender); !errors.Is(err, ErrMalformed) {
		t.Errorf("a sender with skipped keys: %v", err)
	}
}

// TestStateHoldsNoUsedKey: the exported states, which a key store keeps and
// a thief may copy, hold no key of a message already opened (nor sealed),
// nor any chain key before the current one; they do hold the keys of the
// messages skipped and not yet opened.
func TestStateHoldsNoUsedKey(t *testing.T) {
	s, r := pair(t)
	msgs := sealN(t, s, 8)
	for _, c := range []uint64{0, 1, 2, 4, 6, 7} {
		mustOpen(t, r, c, msgs[c], fmt.Sprintf("m%d", c))
	}
	sb, _ := s.MarshalBinary()
	rb, _ := r.MarshalBinary()
	ck := testSeed[:]
	for c := uint64(0); c < 8; c++ {
		mk := hmacSHA256(ck, messageLabel)
		skipped := c == 3 || c == 5
		if bytes.Contains(sb, mk) || bytes.Contains(sb, ck) {
			t.Errorf("sender state holds key %d", c)
		}
		if bytes.Contains(rb, ck) {
			t.Errorf("receiver state holds chain key %d", c)
		}
		if got := bytes.Contains(rb, mk); got != skipped {
			t.Errorf("receiver state holds message key %d: %v, want %v", c, got, skipped)
		}
		ck = hmacSHA256(ck, chainLabel)
	}
	if !bytes.Contains(sb, ck) || !bytes.Contains(rb, ck) {
		t.Error("the states do not hold the current chain key (the test derives the wrong chain)")
	}
}
