package crypto

import (
	"encoding/binary"
	"errors"
)

// parseSealedWire decodes a sealed message's CBOR as decodeCanonical(arrayDec,
// sealed, &w) does, accepting exactly the same inputs: the deterministic
// encoding of a sealedWire, which is the only one that decodes and encodes
// back to the same bytes. That is an array of six items, two unsigned
// integers and four byte strings (a nil one is written as the empty
// string), each head in its shortest form, and nothing after.
//
// It exists because a transcript or a catch-up decodes a sealed message per
// chat entry, and the generic decoder's reflection and the re-encoding that
// checks the encoding were a tenth of a transcript's verification. With
// copied set, like the generic decoder, it copies the byte strings (into
// one allocation), so that w does not alias sealed; without, w's byte
// strings are sealed's bytes, for a caller that keeps nothing of w and
// changes nothing in it. FuzzParseSealedWire checks it against
// decodeCanonical.
func parseSealedWire(sealed []byte, w *sealedWire, copied bool) error {
	b := sealed
	if len(b) == 0 || b[0] != 0x86 { // array of 6
		return errors.New("not an array of six items in deterministic encoding")
	}
	b = b[1:]
	var ok bool
	if w.Version, b, ok = cborHead(b, 0); !ok {
		return errors.New("version: not an unsigned integer in deterministic encoding")
	}
	if w.Epoch, b, ok = cborHead(b, 0); !ok {
		return errors.New("epoch: not an unsigned integer in deterministic encoding")
	}
	var parts [4][]byte
	total := 0
	for i := range parts {
		n, rest, ok := cborHead(b, 2)
		if !ok || n > uint64(len(rest)) {
			return errors.New("not a byte string in deterministic encoding")
		}
		parts[i], b = rest[:n], rest[n:]
		total += int(n)
	}
	if len(b) != 0 {
		return errors.New("data after the sealed message")
	}
	out := [4]*[]byte{&w.KeyID, &w.Header, &w.Nonce, &w.Ciphertext}
	if !copied {
		for i, p := range parts {
			*out[i] = p[:len(p):len(p)]
		}
		return nil
	}
	buf := make([]byte, total)
	for i, p := range parts {
		n := copy(buf, p)
		*out[i], buf = buf[:n:n], buf[n:]
	}
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
