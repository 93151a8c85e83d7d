package ratchet

import "testing"

// BenchmarkStep is one step of the chain: two HMAC-SHA256.
func BenchmarkStep(b *testing.B) {
	ck := testSeed
	var mk [KeySize]byte
	for b.Loop() {
		step(&ck, &mk, &ck)
	}
}

// BenchmarkSealOpen seals and opens a 200-byte message in order: a step and
// an XChaCha20-Poly1305 on each side.
func BenchmarkSealOpen(b *testing.B) {
	s, r := pair(b)
	msg := make([]byte, 200)
	for b.Loop() {
		c, sealed, err := s.Seal(msg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Open(c, sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSkip opens a message Window-1 ahead: the worst case of one
// open (Window steps, and as many keys kept).
func BenchmarkOpenSkip(b *testing.B) {
	s, _ := pair(b)
	var last []byte
	for range Window {
		_, last, _ = s.Seal(nil, nil)
	}
	for b.Loop() {
		_, r := pair(b)
		if _, err := r.Open(Window-1, last, nil); err != nil {
			b.Fatal(err)
		}
	}
}
