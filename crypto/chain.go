package crypto

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// chainDomain starts every transcript chain, so that a chain head cannot be
// confused with any other SHA-256 value DeMeS computes.
const chainDomain = "DeMeS transcript v1"

// Chain is the transcript hash chain over a group's committed log entries. Its
// head commits to every entry so far, to its position, and to the order: two
// members with the same head have the same history, and a transcript whose
// entries do not hash to the head it claims has been altered.
//
// The first head is SHA-256("DeMeS transcript v1" || group id); appending
// entry e at log index i gives
//
//	head' = SHA-256(head || uint64be(i) || uint64be(len(e)) || e)
//
// Indexes are the raft log's: they strictly increase but may skip, because
// not every log index carries an application entry. The length prefix keeps
// the entry boundaries unambiguous.
//
// The zero Chain is not a valid chain; start one with [NewChain].
type Chain struct {
	// Index is the log index of the last entry appended, 0 if none.
	Index uint64
	// Head is the hash over everything appended so far.
	Head [32]byte
}

// NewChain returns the empty chain of group.
func NewChain(group GroupID) Chain {
	h := sha256.New()
	h.Write([]byte(chainDomain))
	h.Write(group[:])
	var c Chain
	h.Sum(c.Head[:0])
	return c
}

// Append adds the entry at log index index. It fails, and leaves c unchanged,
// if index is not greater than the last index appended.
func (c *Chain) Append(index uint64, entry []byte) error {
	if index <= c.Index {
		return fmt.Errorf("append to transcript chain: index %d after %d", index, c.Index)
	}
	var buf [32 + 8 + 8]byte
	copy(buf[:], c.Head[:])
	binary.BigEndian.PutUint64(buf[32:], index)
	binary.BigEndian.PutUint64(buf[40:], uint64(len(entry)))
	h := sha256.New()
	h.Write(buf[:])
	h.Write(entry)
	h.Sum(c.Head[:0])
	c.Index = index
	return nil
}
