package ratchet

import (
	"bytes"
	"testing"
)

// FuzzRestore: the state decoders never panic, and what they accept exports
// to the same bytes.
func FuzzRestore(f *testing.F) {
	s, r := pair(f)
	msgs := sealN(f, s, 4)
	if _, err := r.Open(3, msgs[3], nil); err != nil {
		f.Fatal(err)
	}
	sb, _ := s.MarshalBinary()
	rb, _ := r.MarshalBinary()
	f.Add(sb)
	f.Add(rb)
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := RestoreSender(b); err == nil {
			again, err := s.MarshalBinary()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("sender state re-exports differently: %v", err)
			}
		}
		if r, err := RestoreReceiver(b); err == nil {
			again, err := r.MarshalBinary()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("receiver state re-exports differently: %v", err)
			}
			if len(r.Skipped()) >= Window {
				t.Fatalf("%d skipped keys restored", len(r.Skipped()))
			}
		}
	})
}

// FuzzOpen: a receiver never panics on any counter or message, and only a
// message that authenticates changes it.
func FuzzOpen(f *testing.F) {
	s, _ := pair(f)
	msgs := sealN(f, s, 3)
	f.Add(uint64(2), msgs[2])
	f.Add(uint64(1<<63), []byte{})
	f.Fuzz(func(t *testing.T, c uint64, b []byte) {
		_, r := pair(t)
		before, _ := r.MarshalBinary()
		if _, err := r.Open(c, b, nil); err != nil {
			after, _ := r.MarshalBinary()
			if !bytes.Equal(before, after) {
				t.Fatalf("a failed open changed the receiver: %v", err)
			}
		}
	})
}
