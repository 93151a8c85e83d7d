package canon

import (
	"bytes"
	"testing"
)

type pair struct {
	_ struct{} `cbor:",toarray"`
	N uint64
	B []byte
}

// TestDecodeRefusesOtherEncodings: the decoder takes the one deterministic
// encoding of a value and refuses another encoding of the same value, also
// when the pooled buffer of the check held a longer encoding just before.
func TestDecodeRefusesOtherEncodings(t *testing.T) {
	long, err := Marshal(&pair{N: 1, B: bytes.Repeat([]byte{7}, 4096)})
	if err != nil {
		t.Fatal(err)
	}
	good, err := Marshal(&pair{N: 5, B: []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	// The same value with N as a one-byte argument (0x18 0x05) instead of
	// the shortest form.
	other := append([]byte{good[0], 0x18, 0x05}, good[2:]...)
	for range 3 {
		var p pair
		if err := Decode(long, &p); err != nil || len(p.B) != 4096 {
			t.Fatalf("decode of a canonical encoding: %v", err)
		}
		if err := Decode(good, &p); err != nil || p.N != 5 {
			t.Fatalf("decode of a canonical encoding: %v", err)
		}
		if err := Decode(other, &p); err != ErrNotCanonical {
			t.Fatalf("decode of a non-shortest encoding: %v, want ErrNotCanonical", err)
		}
	}
}
