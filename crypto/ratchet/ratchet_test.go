package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

var (
	testSeed    = [KeySize]byte{0x5e, 0xed}
	testContext = []byte("group 0123456789ab, sender, epoch 7, key id")
)

func pair(t testing.TB) (*Sender, *Receiver) {
	t.Helper()
	s, err := NewSender(&testSeed, testContext)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReceiver(&testSeed, testContext)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

// sealN seals n messages "m0", "m1", ... and returns them by counter.
func sealN(t testing.TB, s *Sender, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		c, sealed, err := s.Seal(fmt.Appendf(nil, "m%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c != uint64(len(out)) {
			t.Fatalf("seal %d used counter %d", len(out), c)
		}
		out = append(out, sealed)
	}
	return out
}

func mustOpen(t *testing.T, r *Receiver, c uint64, sealed []byte, want string) {
	t.Helper()
	pt, err := r.Open(c, sealed, nil)
	if err != nil {
		t.Fatalf("open %d: %v", c, err)
	}
	if string(pt) != want {
		t.Fatalf("open %d: %q, want %q", c, pt, want)
	}
}

func TestInOrder(t *testing.T) {
	s, r := pair(t)
	msgs := sealN(t, s, 5)
	for i, m := range msgs {
		mustOpen(t, r, uint64(i), m, fmt.Sprintf("m%d", i))
		if _, err := r.Open(uint64(i), m, nil); !errors.Is(err, ErrReplay) {
			t.Fatalf("second open of %d: %v", i, err)
		}
	}
	if r.Next() != 5 || s.Next() != 5 || len(r.Skipped()) != 0 {
		t.Fatalf("next %d/%d, skipped %v", s.Next(), r.Next(), r.Skipped())
	}
	// Each message has its own key: the same plaintext twice differs, and
	// a message does not open at another counter.
	if bytes.Equal(msgs[0][24:], msgs[1][24:]) {
		t.Fatal("two messages share a ciphertext")
	}
}

func TestOutOfOrder(t *testing.T) {
	s, r := pair(t)
	msgs := sealN(t, s, 6)
	mustOpen(t, r, 4, msgs[4], "m4")
	if got := r.Skipped(); fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("skipped %v after opening 4 first", got)
	}
	mustOpen(t, r, 1, msgs[1], "m1")
	if _, err := r.Open(1, msgs[1], nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a skipped counter: %v", err)
	}
	mustOpen(t, r, 5, msgs[5], "m5")
	mustOpen(t, r, 0, msgs[0], "m0")
	mustOpen(t, r, 3, msgs[3], "m3")
	mustOpen(t, r, 2, msgs[2], "m2")
	if len(r.Skipped()) != 0 {
		t.Fatalf("keys left: %v", r.Skipped())
	}
}

func TestForgedDoesNotAdvance(t *testing.T) {
	s, r := pair(t)
	msgs := sealN(t, s, 3)
	bad := bytes.Clone(msgs[2])
	bad[len(bad)-1] ^= 1
	if _, err := r.Open(2, bad, nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("forged: %v", err)
	}
	if r.Next() != 0 || len(r.Skipped()) != 0 {
		t.Fatalf("a forged message moved the chain: next %d, skipped %v", r.Next(), r.Skipped())
	}
	// The counter is in the associated data: message 2 at counter 1 fails.
	if _, err := r.Open(1, msgs[2], nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("message 2 at counter 1: %v", err)
	}
	// So are the caller's extra data and the context.
	if _, err := r.Open(2, msgs[2], []byte("x")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other associated data: %v", err)
	}
	other, _ := NewReceiver(&testSeed, []byte("another context"))
	if _, err := other.Open(2, msgs[2], nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other context: %v", err)
	}
	mustOpen(t, r, 2, msgs[2], "m2")
	// A forged skipped message does not cost its key either.
	bad = bytes.Clone(msgs[0])
	bad[30] ^= 1
	if _, err := r.Open(0, bad, nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("forged skipped: %v", err)
	}
	mustOpen(t, r, 0, msgs[0], "m0")
	if _, err := r.Open(0, msgs[0][:Overhead-1], nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: %v", err)
	}
}

func TestWindow(t *testing.T) {
	s, r := pair(t)
	msgs := sealN(t, s, 2*Window+2)
	// Window-1 ahead opens; Window ahead does not.
	if _, err := r.Open(Window, msgs[Window], nil); !errors.Is(err, ErrTooFar) {
		t.Fatalf("Window ahead: %v", err)
	}
	mustOpen(t, r, Window-1, msgs[Window-1], fmt.Sprintf("m%d", Window-1))
	if n := len(r.Skipped()); n != Window-1 {
		t.Fatalf("%d skipped keys, want %d", n, Window-1)
	}
	// Reach next = 2*Window: counters below Window are dropped.
	mustOpen(t, r, 2*Window-1, msgs[2*Window-1], fmt.Sprintf("m%d", 2*Window-1))
	if _, err := r.Open(Window-1, msgs[Window-1], nil); !errors.Is(err, ErrTooOld) {
		t.Fatalf("opened, then a window behind: %v", err)
	}
	if _, err := r.Open(0, msgs[0], nil); !errors.Is(err, ErrTooOld) {
		t.Fatalf("skipped, then far behind: %v", err)
	}
	if n := len(r.Skipped()); n != Window-1 {
		t.Fatalf("%d skipped keys, want %d (%d to %d)", n, Window-1, Window, 2*Window-2)
	}
	// Exactly Window behind still opens.
	mustOpen(t, r, Window, msgs[Window], fmt.Sprintf("m%d", Window))
	if _, err := r.Open(Window, msgs[Window], nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay inside the window: %v", err)
	}
}

func TestCounterLimits(t *testing.T) {
	_, r := pair(t)
	if _, err := r.Open(MaxCounter+1, make([]byte, Overhead), nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("counter past MaxCounter: %v", err)
	}
	if _, err := r.Open(1<<64-1, make([]byte, Overhead), nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("counter 2^64-1: %v", err)
	}
	s, _ := pair(t)
	s.next = MaxCounter
	if c, _, err := s.Seal(nil, nil); err != nil || c != MaxCounter {
		t.Fatalf("last counter: %d, %v", c, err)
	}
	if _, _, err := s.Seal(nil, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("past the last counter: %v", err)
	}
	if _, err := NewSender(&testSeed, make([]byte, MaxContext+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("long context: %v", err)
	}
}

// TestChain checks the derivation against its definition, written out with
// the standard library only.
func TestChain(t *testing.T) {
	s, _ := pair(t)
	ck := testSeed
	for i := range 3 {
		mk := hmacSHA256(ck[:], messageLabel)
		ck = [KeySize]byte(hmacSHA256(ck[:], chainLabel))
		_, sealed, err := s.Seal([]byte("x"), []byte("extra"))
		if err != nil {
			t.Fatal(err)
		}
		pt, err := OpenWithKey((*[KeySize]byte)(mk), testContext, uint64(i), sealed, []byte("extra"))
		if err != nil || string(pt) != "x" {
			t.Fatalf("message %d does not open with HMAC(ck, label): %q, %v", i, pt, err)
		}
		if s.ck != ck {
			t.Fatalf("chain key %d differs", i+1)
		}
	}
}

func TestDestroy(t *testing.T) {
	s, r := pair(t)
	msgs := sealN(t, s, 3)
	mustOpen(t, r, 2, msgs[2], "m2")
	s.Destroy()
	r.Destroy()
	if s.ck != ([KeySize]byte{}) || r.ck != ([KeySize]byte{}) || len(r.skipped) != 0 {
		t.Fatal("keys left after Destroy")
	}
	if _, _, err := s.Seal(nil, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("seal after Destroy: %v", err)
	}
	if _, err := r.Open(0, msgs[0], nil); err == nil {
		t.Fatal("open after Destroy")
	}
}
