package crypto

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/demes/demes/crypto/ratchet"
)

// The ratchet of a sender key (sealed message versions 4 and 5; issue 19,
// docs/PROTOCOL.md "The ratchet in messages"). The sender key is chain key
// 0 of a hash chain (package ratchet): message i is sealed under message
// key i, and chain key i+1 is derived from chain key i, one way. A member
// keeps, instead of the sender key, the chain key at its key's floor: the
// oldest counter whose message it may still read. Advancing the floor
// overwrites the chain key with a later one, so the message keys before it
// cannot be derived again from anything the member keeps (forward secrecy
// within a sender key), while those after it can, for history pages and
// transcripts within the member's retention window.

// Sealed message versions with a ratchet counter.
const (
	// SealedVersionRatchet is a sealed message whose body is sealed
	// under the message key of its counter in its sender key's chain; its
	// key header, if any, is sealed with age to identity keys (as in
	// version 2).
	SealedVersionRatchet = 4
	// SealedVersionRatchetPrekey is [SealedVersionRatchet] with the key
	// header sealed to prekeys (as in version 3); it always has one.
	SealedVersionRatchetPrekey = 5
)

// MaxChain is how many counters a sender key's chain has past its floor
// that a reader derives: a sender seals at most MaxChain messages under one
// key (a node rotates after 100), and a reader refuses a counter further
// ahead than that of the key it holds, so that one message cannot make it
// step the chain four billion times. A member who sends the last counter
// makes each reader step the chain MaxChain times once (about 4 ms here;
// lower counters then cost at most checkpointEvery steps), and can do it
// again only under a new key (a key header, paid from its quota) or after
// the reader advanced the key's floor.
const MaxChain = 1 << 12

// checkpointEvery is the spacing of the chain keys a sender key keeps in
// memory, so that reading an old message of a long chain costs at most
// this many steps.
const checkpointEvery = 16

// ErrMessageKeyDeleted is returned when a message's counter is below its
// sender key's floor: the reader advanced the floor past it and its key
// cannot be derived any more (forward secrecy). It wraps [ErrKeyDeleted].
var ErrMessageKeyDeleted = fmt.Errorf("its message key was deleted: %w", ErrKeyDeleted)

// chainState is what a sender key keeps in memory to derive message keys
// fast: the next counter to seal at, the chain key of the counter last
// derived (in-order messages cost one step each), and a chain key every
// checkpointEvery counters from the floor (an old message costs at most
// checkpointEvery steps). Everything in it is derived from Key, and wiped
// when the floor advances.
type chainState struct {
	mu     sync.Mutex
	next   uint64 // the next counter this key seals at
	curN   uint64 // the counter of cur, if curOK
	cur    [ratchet.KeySize]byte
	curOK  bool
	checks [][ratchet.KeySize]byte // checks[j]: chain key at floor + j*checkpointEvery
	// base is the Key the keys above are derived from: a caller that
	// sets Key (an exported field) gets a chain derived from its value.
	base [ratchet.KeySize]byte
}

// Floor returns the counter of the chain key k holds: messages sealed
// under k at a lower counter can no longer be opened with it.
func (k *SenderKey) Floor() uint64 {
	k.chain.mu.Lock()
	defer k.chain.mu.Unlock()
	return k.floor
}

// Advance moves k's floor up to counter to, overwriting its chain key with
// chain key to: the message keys below to are then beyond reach of anyone
// who holds k. It does nothing if the floor is at or past to already, and
// moves at most [MaxChain] counters.
func (k *SenderKey) Advance(to uint64) {
	k.chain.mu.Lock()
	defer k.chain.mu.Unlock()
	if to <= k.floor {
		return
	}
	to = min(to, k.floor+MaxChain)
	ck := k.chainKeyLocked(to)
	k.Key = ck
	clear(ck[:])
	k.floor = to
	k.wipeLocked()
	k.chain.next = max(k.chain.next, to)
}

// wipeLocked clears the chain keys k keeps in memory besides Key.
func (k *SenderKey) wipeLocked() {
	c := &k.chain
	clear(c.cur[:])
	c.curOK = false
	for i := range c.checks {
		clear(c.checks[i][:])
	}
	c.checks = nil
	clear(c.base[:])
}

// chainKeyLocked returns the chain key at counter n, at least k.floor and
// less than k.floor+MaxChain+1, from the nearest key k keeps before it.
func (k *SenderKey) chainKeyLocked(n uint64) [ratchet.KeySize]byte {
	c := &k.chain
	if c.base != k.Key {
		k.wipeLocked()
		c.base = k.Key
	}
	var (
		ck [ratchet.KeySize]byte
		at uint64 // the counter of ck
	)
	if c.curOK && c.curN <= n {
		ck, at = c.cur, c.curN
	} else {
		if len(c.checks) == 0 {
			c.checks = appendWiping(c.checks, k.Key)
		}
		j := (n - k.floor) / checkpointEvery
		last := uint64(len(c.checks) - 1)
		ck, at = c.checks[min(j, last)], k.floor+min(j, last)*checkpointEvery
	}
	for ; at < n; at++ {
		ratchet.StepChain(&ck)
		if (at+1-k.floor)%checkpointEvery == 0 && uint64(len(c.checks)) == (at+1-k.floor)/checkpointEvery {
			c.checks = appendWiping(c.checks, ck)
		}
	}
	return ck
}

// appendWiping appends ck to checks, clearing the old array when it has
// to grow: append would leave a copy of the keys, chain key 0 among them,
// where nothing wipes it when the floor advances.
func appendWiping(checks [][ratchet.KeySize]byte, ck [ratchet.KeySize]byte) [][ratchet.KeySize]byte {
	if len(checks) < cap(checks) {
		return append(checks, ck)
	}
	grown := make([][ratchet.KeySize]byte, len(checks), 2*cap(checks)+1)
	copy(grown, checks)
	for i := range checks {
		clear(checks[i][:])
	}
	return append(grown, ck)
}

// ratchetKey returns the message key of counter n, and keeps the chain key
// of n as the place to step from next.
func (k *SenderKey) ratchetKey(n uint64) ([]byte, error) {
	k.chain.mu.Lock()
	defer k.chain.mu.Unlock()
	switch {
	case n < k.floor:
		return nil, fmt.Errorf("counter %d, below the key's floor %d: %w", n, k.floor, ErrMessageKeyDeleted)
	case n-k.floor >= MaxChain:
		return nil, fmt.Errorf("%w: counter %d, more than %d past the key's floor %d", ErrMalformed, n, MaxChain, k.floor)
	}
	ck := k.chainKeyLocked(n)
	c := &k.chain
	c.cur, c.curN, c.curOK = ck, n, true
	var mk [ratchet.KeySize]byte
	ratchet.MessageKey(&ck, &mk)
	clear(ck[:])
	return mk[:], nil
}

// nextCounter hands out the counter to seal the next message under k at.
func (k *SenderKey) nextCounter() (uint64, error) {
	k.chain.mu.Lock()
	defer k.chain.mu.Unlock()
	n := max(k.chain.next, k.floor)
	if n-k.floor >= MaxChain || n > ratchet.MaxCounter {
		return 0, errors.New("seal message: the sender key's chain is used up; seal under a new key")
	}
	k.chain.next = n + 1
	return n, nil
}

// ratchetAAD is the associated data of a message at counter under the key
// (group, sender, epoch, key id): the version 2 associated data is the
// chain's context.
func ratchetAAD(group GroupID, sender [32]byte, epoch uint64, id [KeyIDSize]byte, counter uint64) []byte {
	return ratchet.AAD(sealedAAD(group, sender, epoch, id), counter, nil)
}

// isRatchet reports whether a sealed message of version v has a counter.
func isRatchet(v uint64) bool { return v == SealedVersionRatchet || v == SealedVersionRatchetPrekey }

// keysFor returns the message key and the associated data of the sealed
// message w of id under k: by id for versions 2 and 3, by counter for 4
// and 5.
func (k *SenderKey) keysFor(w *sealedWire, id [16]byte) (mk, aad []byte, err error) {
	if !isRatchet(w.Version) {
		if k.Floor() > 0 {
			// Versions 2 and 3 derive from chain key 0, which k no
			// longer holds.
			return nil, nil, fmt.Errorf("open message: %w: a message without a counter under a key whose floor advanced", ErrMessageKeyDeleted)
		}
		return k.messageKey(id), k.aad(), nil
	}
	mk, err = k.ratchetKey(w.Counter)
	if err != nil {
		return nil, nil, fmt.Errorf("open message: %w", err)
	}
	return mk, ratchetAAD(k.Group, k.Sender, k.Epoch, k.ID, w.Counter), nil
}

// messageAAD is the associated data of the sealed message w, sent by
// sender in group, whatever its version: what a reader with the message key
// alone (a transcript's verifier) checks it with.
func messageAAD(w *sealedWire, group GroupID, sender [32]byte) []byte {
	if isRatchet(w.Version) {
		return ratchetAAD(group, sender, w.Epoch, [KeyIDSize]byte(w.KeyID), w.Counter)
	}
	return sealedAAD(group, sender, w.Epoch, [KeyIDSize]byte(w.KeyID))
}

// MessageKeyOf returns the key that opens sealed, the message with id id
// sealed under k, as a transcript reveals it: derived one way from k and
// the id (versions 2 and 3) or the chain at the message's counter (4 and
// 5), so it opens that message and no other, and reveals nothing of k. It
// fails with [ErrMessageKeyDeleted] for a counter below k's floor.
func (k *SenderKey) MessageKeyOf(sealed []byte, id [16]byte) ([32]byte, error) {
	w, err := decodeSealedView(sealed)
	if err != nil {
		return [32]byte{}, fmt.Errorf("message key: %w", err)
	}
	mk, _, err := k.keysFor(w, id)
	if err != nil {
		return [32]byte{}, err
	}
	defer clear(mk)
	return [32]byte(mk), nil
}

// hasPrekeyHeader reports whether a sealed message of version v always
// carries a key header sealed to prekeys.
func hasPrekeyHeader(v uint64) bool {
	return v == SealedVersionPrekey || v == SealedVersionRatchetPrekey
}

// SealedCounter returns [Opened.Counter] for sealed without opening it:
// the message's counter plus one, or 0 for a version without one or a
// message that does not decode.
func SealedCounter(sealed []byte) uint64 {
	w, err := decodeSealedView(sealed)
	if err != nil {
		return 0
	}
	return w.counter1()
}

// Equal reports whether k and o are the same key at the same floor.
func (k *SenderKey) Equal(o *SenderKey) bool {
	if k == o {
		return true
	}
	if k == nil || o == nil {
		return false
	}
	kb, _ := k.MarshalBinary()
	ob, _ := o.MarshalBinary()
	defer clear(kb)
	defer clear(ob)
	return subtle.ConstantTimeCompare(kb, ob) == 1
}

// Clone returns a copy of k: the same key at the same floor, with nothing
// derived from it yet.
func (k *SenderKey) Clone() *SenderKey {
	k.chain.mu.Lock()
	defer k.chain.mu.Unlock()
	return &SenderKey{Group: k.Group, Sender: k.Sender, Epoch: k.Epoch, ID: k.ID, Key: k.Key, floor: k.floor}
}
