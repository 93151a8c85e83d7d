package crypto

import (
	"encoding/binary"
	"errors"
	"math"
)

// The wire forms that a transcript or a catch-up decodes once per entry
// (sealedWire, envelopeBody, recordWire) are decoded here by hand, accepting
// exactly what decodeCanonical(arrayDec, data, &w) accepts: the deterministic
// encoding of the struct, which is the only one that decodes and encodes
// back to the same bytes. That is an array of the struct's items, each
// unsigned integer, signed integer and byte string with its head in its
// shortest form (a nil byte string written as the empty one), and nothing
// after. The generic decoder's reflection and the re-encoding that checks
// the encoding were a sixth of a transcript's verification.
// TestWireMatchesCBOR and the Fuzz*Wire tests check them against
// decodeCanonical.

// wireReader reads a deterministic CBOR encoding; the first read that fails
// sets ok to false, and the later ones do nothing.
type wireReader struct {
	b  []byte
	ok bool
}

// head reads a head of the major type major whose argument is written in
// its shortest form, and returns the argument.
func (r *wireReader) head(major byte) uint64 {
	v, rest, ok := cborHead(r.b, major)
	if !r.ok || !ok {
		r.ok = false
		return 0
	}
	r.b = rest
	return v
}

// array reads the head of an array of n items.
func (r *wireReader) array(n uint64) {
	if r.head(4) != n {
		r.ok = false
	}
}

// uint reads an unsigned integer of at most max.
func (r *wireReader) uint(max uint64) uint64 {
	v := r.head(0)
	if v > max {
		r.ok = false
		return 0
	}
	return v
}

// int reads a signed integer that fits in an int64: major type 0 (v) or 1
// (-1 - v).
func (r *wireReader) int() int64 {
	if !r.ok || len(r.b) == 0 {
		r.ok = false
		return 0
	}
	neg := r.b[0]>>5 == 1
	var v uint64
	if neg {
		v = r.head(1)
	} else {
		v = r.head(0)
	}
	if v > math.MaxInt64 {
		r.ok = false
		return 0
	}
	if neg {
		return -1 - int64(v)
	}
	return int64(v)
}

// bytes reads a byte string and returns it within r's input.
func (r *wireReader) bytes() []byte {
	n := r.head(2)
	if !r.ok || n > uint64(len(r.b)) {
		r.ok = false
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// end checks that nothing follows.
func (r *wireReader) end() error {
	if !r.ok || len(r.b) != 0 {
		return errNotDeterministic
	}
	return nil
}

var errNotDeterministic = errors.New("not the deterministic encoding of the expected array")

// copyAll points each *p at a copy of what it points at, all in one
// allocation, so that the result does not alias the input.
func copyAll(ps ...*[]byte) {
	total := 0
	for _, p := range ps {
		total += len(*p)
	}
	buf := make([]byte, total)
	for _, p := range ps {
		n := copy(buf, *p)
		*p, buf = buf[:n:n], buf[n:]
	}
}

// parseSealedWire decodes a sealed message: an array of two unsigned
// integers and four byte strings (versions 2 and 3), or of seven items with
// the counter, an unsigned integer, after the key header (versions 4 and
// 5). With copied set, like the generic decoder, it copies the byte strings
// (into one allocation), so that w does not alias sealed; without, w's byte
// strings are sealed's bytes, for a caller that keeps nothing of w and
// changes nothing in it.
func parseSealedWire(sealed []byte, w *sealedWire, copied bool) error {
	r := wireReader{b: sealed, ok: true}
	n := r.head(4)
	w.Version, w.Epoch = r.uint(math.MaxUint64), r.uint(math.MaxUint64)
	w.KeyID, w.Header = r.bytes(), r.bytes()
	w.Counter = 0
	switch {
	case n == 7 && isRatchet(w.Version):
		w.Counter = r.uint(math.MaxUint32)
	case n != 6 || isRatchet(w.Version):
		r.ok = false
	}
	w.Nonce, w.Ciphertext = r.bytes(), r.bytes()
	if err := r.end(); err != nil {
		*w = sealedWire{}
		return err
	}
	if copied {
		copyAll(&w.KeyID, &w.Header, &w.Nonce, &w.Ciphertext)
	}
	return nil
}

// parseEnvelopeBody decodes an envelope's body; the byte strings are copied.
func parseEnvelopeBody(body []byte, w *envelopeBody) error {
	r := wireReader{b: body, ok: true}
	r.array(6)
	w.Type = uint8(r.uint(math.MaxUint8))
	w.Group, w.To = r.bytes(), r.bytes()
	w.Counter, w.Time = r.uint(math.MaxUint64), r.int()
	w.Payload = r.bytes()
	if err := r.end(); err != nil {
		*w = envelopeBody{}
		return err
	}
	copyAll(&w.Group, &w.To, &w.Payload)
	return nil
}

// parseRecordWire decodes a message record; the byte strings are copied.
func parseRecordWire(record []byte, w *recordWire) error {
	r := wireReader{b: record, ok: true}
	r.array(6)
	w.Group, w.Author, w.ID, w.Head = r.bytes(), r.bytes(), r.bytes(), r.bytes()
	w.Time = r.int()
	w.Body = r.bytes()
	if err := r.end(); err != nil {
		*w = recordWire{}
		return err
	}
	copyAll(&w.Group, &w.Author, &w.ID, &w.Head, &w.Body)
	return nil
}

// cborHead reads a CBOR head of the major type major whose argument is
// written in its shortest form, and returns the argument and the rest of b.
func cborHead(b []byte, major byte) (v uint64, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != major {
		return 0, nil, false
	}
	ai := b[0] & 0x1f
	b = b[1:]
	switch {
	case ai < 24:
		return uint64(ai), b, true
	case ai == 24 && len(b) >= 1:
		v = uint64(b[0])
		return v, b[1:], v >= 24
	case ai == 25 && len(b) >= 2:
		v = uint64(binary.BigEndian.Uint16(b))
		return v, b[2:], v > 0xff
	case ai == 26 && len(b) >= 4:
		v = uint64(binary.BigEndian.Uint32(b))
		return v, b[4:], v > 0xffff
	case ai == 27 && len(b) >= 8:
		v = binary.BigEndian.Uint64(b)
		return v, b[8:], v > 0xffffffff
	}
	return 0, nil, false
}
