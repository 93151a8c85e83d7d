package keystore

import (
	"encoding/binary"
	"fmt"
)

// This file reads the records of a file at Open and decides what a crash
// left behind, without writing anything; repair (file.go) then fixes it.

// span is where one record lies in the file.
type span struct {
	off, size int64
}

// found is a live record that opened.
type found struct {
	span
	opened
}

// scanned is what scan learned about the records of a file.
type scanned struct {
	live     []found // live records in file order, later duplicates included
	finish   []span  // erased records whose body is not all zeros yet
	erased   int64   // bytes of erased records
	tornAt   int64   // where an interrupted last write starts, or -1
	fileSize int64
}

// zeroRun is how many zero bytes in a row mark a region a crash left
// unwritten: ciphertext never holds 16 zero bytes in a row (a chance of
// about 2^-128 for each place), and flipped bits do not make them.
const zeroRun = tagSize

// scan walks the records from offset start to the end of b. Damage is an
// error naming its offset, except at the very end, where what a crash in
// the middle of an append leaves is recognised as torn (see doc.go).
func scan(b []byte, start int, aead aeadCipher) (*scanned, error) {
	sc := &scanned{tornAt: -1, fileSize: int64(len(b))}
	for o := start; o < len(b); {
		rest := b[o:]
		if len(rest) < recHeaderSize || allZero(rest) {
			sc.tornAt = int64(o)
			break
		}
		n := int(binary.BigEndian.Uint32(rest))
		flag := rest[4]
		if n < minBody || n > maxBody || (flag != flagLive && flag != flagErased) {
			return nil, fmt.Errorf("%w: record at offset %d has a bad header", ErrCorrupt, o)
		}
		if len(rest) < recHeaderSize+n {
			sc.tornAt = int64(o) // the write, or the file size, did not reach its end
			break
		}
		body := rest[recHeaderSize : recHeaderSize+n]
		sp := span{off: int64(o), size: int64(recHeaderSize + n)}
		o += recHeaderSize + n
		if flag == flagErased {
			sc.erased += sp.size
			if !allZero(body) {
				sc.finish = append(sc.finish, sp)
			}
			continue
		}
		op, ok := openRecord(aead, sp.off, body)
		if ok {
			sc.live = append(sc.live, found{sp, op})
			continue
		}
		if o == len(b) && hasZeroRun(body, zeroRun) {
			sc.tornAt = sp.off // the last write reached the end, but not every block of it did
			break
		}
		for _, f := range sc.live {
			clear(f.secret)
		}
		return nil, fmt.Errorf("%w: record at offset %d does not authenticate (damaged or tampered with)", ErrCorrupt, sp.off)
	}
	return sc, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// hasZeroRun reports whether b holds n zero bytes in a row.
func hasZeroRun(b []byte, n int) bool {
	run := 0
	for _, c := range b {
		if c != 0 {
			run = 0
			continue
		}
		if run++; run >= n {
			return true
		}
	}
	return false
}
