package crypto

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/demes/demes/identity"
)

// sameAsCBOR checks that the hand decoders accept b exactly when the
// generic decoder with the re-encoding check does, with the same fields.
func sameAsCBOR(t *testing.T, b []byte) {
	t.Helper()
	sealedSameAsCBOR(t, b)
	var eg, ew envelopeBody
	sameWire(t, "envelope body", b, parseEnvelopeBody(b, &eg), decodeCanonical(arrayDec, b, &ew), &eg, &ew, &eg.Group, &eg.To, &eg.Payload, &ew.Group, &ew.To, &ew.Payload)
	var rg, rw recordWire
	sameWire(t, "record", b, parseRecordWire(b, &rg), decodeCanonical(arrayDec, b, &rw), &rg, &rw,
		&rg.Group, &rg.Author, &rg.ID, &rg.Head, &rg.Body, &rw.Group, &rw.Author, &rw.ID, &rw.Head, &rw.Body)
}

// sameWire checks one hand decoder's answer (got, gerr) against the generic
// decoder's (want, werr), with empty byte strings (bs) taken as nil.
func sameWire(t *testing.T, what string, b []byte, gerr, werr error, got, want any, bs ...*[]byte) {
	t.Helper()
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%s %x: the hand decoder says %v, the CBOR decoder %v", what, b, gerr, werr)
	}
	if gerr != nil {
		return
	}
	for _, p := range bs {
		if len(*p) == 0 {
			*p = nil
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %x: the hand decoder reads %+v, the CBOR decoder %+v", what, b, got, want)
	}
}

// genericSealed is the generic decoder's reading of a sealed message: an
// array of six items for versions 2 and 3, of seven (with the counter, at
// most 2^32-1) for versions 4 and 5.
func genericSealed(b []byte, w *sealedWire) error {
	var r sealedWireRatchet
	if err := decodeCanonical(arrayDec, b, &r); err == nil {
		if !isRatchet(r.Version) || r.Counter > math.MaxUint32 {
			return errors.New("seven items for a version without a counter, or a counter too large")
		}
		*w = sealedWire{Version: r.Version, Epoch: r.Epoch, KeyID: r.KeyID, Header: r.Header, Counter: r.Counter,
			Nonce: r.Nonce, Ciphertext: r.Ciphertext}
		return nil
	}
	if err := decodeCanonical(arrayDec, b, w); err != nil {
		return err
	}
	if isRatchet(w.Version) {
		*w = sealedWire{}
		return errors.New("six items for a version with a counter")
	}
	return nil
}

// sealedSameAsCBOR is sameAsCBOR for parseSealedWire, copying and not.
func sealedSameAsCBOR(t *testing.T, b []byte) {
	t.Helper()
	var got, view, want sealedWire
	gerr := parseSealedWire(b, &got, true)
	verr := parseSealedWire(b, &view, false)
	werr := genericSealed(b, &want)
	if (gerr == nil) != (werr == nil) || (verr == nil) != (werr == nil) {
		t.Fatalf("sealed message %x: parseSealedWire says %v (without copying %v), the CBOR decoder %v", b, gerr, verr, werr)
	}
	if gerr != nil {
		return
	}
	if !reflect.DeepEqual(got, view) {
		t.Fatalf("sealed message %x: parseSealedWire reads %+v, without copying %+v", b, got, view)
	}
	norm := func(w *sealedWire) { // nil and empty byte strings are the same value
		for _, p := range []*[]byte{&w.KeyID, &w.Header, &w.Nonce, &w.Ciphertext} {
			if len(*p) == 0 {
				*p = nil
			}
		}
	}
	norm(&got)
	norm(&want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sealed message %x: parseSealedWire reads %+v, the CBOR decoder %+v", b, got, want)
	}
}

// sealedSamples are sealed messages with and without a key header, the
// envelope bodies and records in them and around them, and hand-made
// encodings at the edges of the head forms.
func sealedSamples(tb testing.TB) [][]byte {
	alice := testID(tb, 1)
	key := NewSenderKey(testGroup, alice.Public().Sign, 1)
	var out [][]byte
	rs := publics(alice, testID(tb, 2))
	for i, body := range []string{"", "hi", string(bytes.Repeat([]byte{'x'}, 300))} {
		m := &Message{Group: testGroup, ID: [16]byte{byte(i)}, Time: int64(i), Body: []byte(body)}
		var with []identity.PublicID
		if i == 1 {
			with = rs // with a key header
		}
		sealed, err := SealMessage(alice, m, key, with)
		if err != nil {
			tb.Fatal(err)
		}
		m.Author, m.Time = alice.Public(), -int64(i)*7919
		record, err := encodeRecord(m)
		if err != nil {
			tb.Fatal(err)
		}
		frame := mustSign(tb, alice, &Envelope{Type: TypeChat, Group: testGroup, Counter: uint64(i), Time: -int64(i) * 1000, Payload: sealed})
		out = append(out, sealed, record, frame[headerSize:])
	}
	for _, v := range []int64{0, 23, 24, -1, -24, -25, -256, -257, 1 << 40, -1 << 40, math.MaxInt64, math.MinInt64} {
		b, err := encMode.Marshal(&envelopeBody{Type: 255, Group: make([]byte, 16), To: make([]byte, 32), Counter: math.MaxUint64, Time: v})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	out = append(out,
		[]byte{0x86, 0x02, 0x00, 0x40, 0x40, 0x40, 0x40},
		[]byte{0x86, 0x18, 0x18, 0x19, 0x01, 0x00, 0x40, 0x40, 0x40, 0x40},
		[]byte{0x86, 0x1a, 0x00, 0x01, 0x00, 0x00, 0x1b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x40, 0x40, 0x40, 0x41, 0x00},
		[]byte{0x86, 0x18, 0x17, 0x00, 0x40, 0x40, 0x40, 0x40},                      // 23 not in its shortest form
		[]byte{0x86, 0x02, 0x00, 0x58, 0x01, 0x00, 0x40, 0x40, 0x40},                // a length not in its shortest form
		[]byte{0x86, 0x02, 0x00, 0xf6, 0x40, 0x40, 0x40},                            // null for a byte string
		[]byte{0x86, 0x02, 0x00, 0x5f, 0x41, 0x00, 0xff, 0x40, 0x40, 0x40},          // indefinite length
		[]byte{0x86, 0x02, 0x00, 0x40, 0x40, 0x40, 0x40, 0x00},                      // trailing byte
		[]byte{0x85, 0x02, 0x00, 0x40, 0x40, 0x40},                                  // five items
		[]byte{0x87, 0x02, 0x00, 0x40, 0x40, 0x40, 0x40, 0x40},                      // seven items
		[]byte{0x86, 0x20, 0x00, 0x40, 0x40, 0x40, 0x40},                            // a negative integer
		[]byte{0x86, 0x02, 0x00, 0x60, 0x40, 0x40, 0x40},                            // a text string
		[]byte{0x86, 0x02, 0x00, 0x40, 0x40, 0x40, 0x5a, 0xff, 0xff, 0xff, 0xff},    // a length past the end
		[]byte{0x98, 0x06, 0x02, 0x00, 0x40, 0x40, 0x40, 0x40},                      // the array head not shortest
		[]byte{0xc2, 0x86, 0x02, 0x00, 0x40, 0x40, 0x40, 0x40},                      // tagged
		[]byte{0x86, 0x19, 0x01, 0x00, 0x40, 0x40, 0x00, 0x00, 0x40},                // type 256
		[]byte{0x86, 0x01, 0x40, 0x40, 0x00, 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x40}, // time below MinInt64
		[]byte{0x86, 0x01, 0x40, 0x40, 0x00, 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x40}, // time above MaxInt64
		[]byte{0x86, 0x40, 0x40, 0x40, 0x40, 0x20, 0x40},                            // a record, time -1
		[]byte{0x86, 0x40, 0x40, 0x40, 0x40, 0x38, 0x17, 0x40},                      // time -24 not shortest
	)
	return out
}

// TestWireMatchesCBOR checks the hand decoders (sealed messages, envelope
// bodies, records) against the generic decoder on real encodings, hand-made
// edge cases, and every one-byte change, truncation and extension of them.
func TestWireMatchesCBOR(t *testing.T) {
	for _, s := range sealedSamples(t) {
		sameAsCBOR(t, s)
		for i := range s {
			sameAsCBOR(t, s[:i])
			for _, x := range []byte{0x01, 0x20, 0x40, 0x80, 0xff} {
				c := bytes.Clone(s)
				c[i] ^= x
				sameAsCBOR(t, c)
			}
		}
		sameAsCBOR(t, append(bytes.Clone(s), 0))
	}
}

// FuzzWire checks the hand decoders against the generic decoder on
// arbitrary bytes. Property: each accepts the same inputs as the generic
// decoder, with the same fields.
func FuzzWire(f *testing.F) {
	for _, s := range append(sealedSamples(f), fuzzSeeds(f)...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsCBOR(t, b) })
}
