package prekey

import (
	"bytes"
	"testing"

	"github.com/demes/demes/internal/canon"
)

// FuzzDecode: Decode never panics, and what it accepts is the exact
// deterministic encoding of what it decoded.
func FuzzDecode(f *testing.F) {
	p, _ := prekeyOf(f, member(f, 1), 0xa1)
	f.Add(p.Bytes())
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := Decode(b)
		if err != nil {
			return
		}
		var sw signedWire
		if err := canon.Decode(b, &sw); err != nil {
			t.Fatalf("accepted a non-canonical prekey: %v", err)
		}
		again, err := canon.Marshal(&sw)
		if err != nil || !bytes.Equal(again, q.Bytes()) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// FuzzReadHeader: ReadHeader and OpenKey never panic; what ReadHeader
// accepts re-encodes to the same bytes and lists owners in ascending order.
func FuzzReadHeader(f *testing.F) {
	alice := member(f, 1)
	p, s := prekeyOf(f, alice, 0xa1)
	set := NewSecretSet()
	set.Add(s)
	ctx := ctxOf(alice, 1)
	h, err := SealKey(ctx, &[KeySize]byte{1}, []*Prekey{p}, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h)
	h2, _, err := SealKeyLinked(ctx, &[KeySize]byte{1}, []Recipient{{Prekey: p}}, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h2)
	f.Add([]byte{0x86, 1, 0x40, 0x40, 0, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ReadHeader(b)
		// OpenKey must not panic on anything, and must fail whenever
		// ReadHeader does.
		_, openErr := OpenKey(b, ctx, alice.Public().Sign, set)
		if err != nil {
			if openErr == nil {
				t.Fatalf("OpenKey accepts what ReadHeader refuses: %v", err)
			}
			return
		}
		w, err := decodeHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := w.encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		for i := 1; i < len(info.Stanzas); i++ {
			if bytes.Compare(info.Stanzas[i-1].Owner[:], info.Stanzas[i].Owner[:]) >= 0 {
				t.Fatal("owners not ascending")
			}
		}
	})
}
