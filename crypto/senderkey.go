package crypto

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/crypto/ratchet"
	"github.com/demes/demes/identity"
)

// This file is the sealed message, version 2: the body of every message is
// encrypted once, under a key derived from the author's sender key, and the
// sender key itself travels, sealed with age to every member, in a key
// header that the author attaches to its messages until the group has
// accepted one of them. So sealing and opening a message cost the same in a
// group of two as in a group of two hundred; only the header, once per
// member and membership epoch, costs one age stanza per member.

// Domain strings of the sealed message, version 2. Each separates one use of
// a key from every other (see docs/PROTOCOL.md, "Chat messages").
const (
	// messageKeyDomain starts the HKDF info of a per-message key.
	messageKeyDomain = "DeMeS message key v2\x00"
	// sealedAADDomain starts the associated data of a message body.
	sealedAADDomain = "DeMeS sealed message v2\x00"
)

// SealedVersion is the version number at the start of a sealed message
// whose key header, if it has one, is sealed with age to the recipients'
// identity keys (or that has none).
const SealedVersion = 2

// SealedVersionPrekey is the version number of a sealed message whose key
// header is sealed with HPKE to the recipients' current prekeys (package
// prekey; docs/PROTOCOL.md, "Forward secrecy"). Everything else is as in
// version 2: only the key header differs.
const SealedVersionPrekey = 3

const (
	// KeyIDSize is the length of a sender key id.
	KeyIDSize = 16
	// SenderKeySize is the length of a sender key.
	SenderKeySize = 32
	// keyPlainSize is the length of a key header's plaintext: group,
	// sender, epoch, key id, key.
	keyPlainSize = 16 + keySize + 8 + KeyIDSize + SenderKeySize
)

// ErrWrongKey is returned by [OpenMessage] when the sender key it is given
// is not the one the message names (another sender, epoch, key id or group).
var ErrWrongKey = errors.New("wrong sender key")

// SenderKey is one member's key for sealing its chat messages in one group
// during one membership epoch. The group's state machine defines the epoch
// (the log index of the entry that last changed the member set); when it
// changes, every member starts a new sender key, sealed to the new members.
//
// A SenderKey is secret: it lets anyone read its owner's messages under it
// from its floor on. A node keeps it in its encrypted key store, and
// advances its floor as its retention policy deletes old message keys
// (chainkey.go).
type SenderKey struct {
	Group  GroupID
	Sender [32]byte // the owner's ed25519 key
	Epoch  uint64
	ID     [KeyIDSize]byte
	// Key is the sender key itself (chain key 0) as made or opened from
	// a key header, or the chain key at the key's floor once its holder
	// advanced it ([SenderKey.Advance]).
	Key [SenderKeySize]byte

	floor uint64     // the counter of Key's chain key
	chain chainState // derived keys kept in memory (chainkey.go)
}

// NewSenderKey returns a fresh random sender key, with a fresh random id, for
// sender's messages in group during epoch.
func NewSenderKey(group GroupID, sender [32]byte, epoch uint64) *SenderKey {
	k := &SenderKey{Group: group, Sender: sender, Epoch: epoch}
	rand.Read(k.ID[:]) // never fails; see NewGroupID
	rand.Read(k.Key[:])
	return k
}

// keyPlain is the plaintext of a key header: the key with everything it is
// for, so that a header cannot be moved to another group, sender, epoch or
// key id.
func (k *SenderKey) keyPlain() []byte {
	b := make([]byte, 0, keyPlainSize)
	b = append(b, k.Group[:]...)
	b = append(b, k.Sender[:]...)
	b = binary.BigEndian.AppendUint64(b, k.Epoch)
	b = append(b, k.ID[:]...)
	return append(b, k.Key[:]...)
}

// messageKey derives the key of the message id from the sender key
// (sealed message versions 2 and 3).
func (k *SenderKey) messageKey(id [16]byte) []byte {
	k.chain.mu.Lock()
	secret := k.Key
	k.chain.mu.Unlock()
	defer clear(secret[:])
	info := make([]byte, 0, len(messageKeyDomain)+16+16)
	info = append(info, messageKeyDomain...)
	info = append(info, k.Group[:]...)
	info = append(info, id[:]...)
	// HKDF-SHA-256 with a 32-byte output cannot fail.
	key, err := hkdf.Key(sha256.New, secret[:], nil, string(info), chacha20poly1305.KeySize)
	if err != nil {
		panic(fmt.Sprintf("derive message key: %v", err))
	}
	return key
}

// MessageKey returns the key that seals the message with the given id under
// k. A transcript reveals it for each message it shows, so that anyone can
// check that the text is what the ciphertext holds ([OpenWithMessageKey]):
// it is derived one way from k and the id, so it opens that message and no
// other, and reveals nothing of k.
func (k *SenderKey) MessageKey(id [16]byte) [32]byte {
	return [32]byte(k.messageKey(id))
}

// aad is the associated data of a message body sealed under k.
func (k *SenderKey) aad() []byte { return sealedAAD(k.Group, k.Sender, k.Epoch, k.ID) }

func sealedAAD(group GroupID, sender [32]byte, epoch uint64, id [KeyIDSize]byte) []byte {
	b := make([]byte, 0, len(sealedAADDomain)+16+keySize+8+KeyIDSize)
	b = append(b, sealedAADDomain...)
	b = append(b, group[:]...)
	b = append(b, sender[:]...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	return append(b, id[:]...)
}

// SealedInfo is what anyone can read from a sealed message without a key:
// which sender key it is sealed under, and the members its key header (if
// any) is sealed to.
type SealedInfo struct {
	Epoch uint64
	KeyID [KeyIDSize]byte
	// Ratchet reports a message of version 4 or 5, sealed under the
	// message key of Counter in its sender key's chain.
	Ratchet bool
	Counter uint64
	// Recipients are the ed25519 keys of the key header's recipients, in
	// canonical order; nil when the message carries no key header.
	Recipients [][32]byte
	// Prekeys reports that the key header is sealed to the recipients'
	// prekeys (sealed message version 3), not to their identity keys.
	Prekeys bool
	// PrekeyIDs are, for a version 3 header, the ids of the prekeys the
	// stanzas of Recipients name, in the same order: what the author
	// claims, as Recipients.
	PrekeyIDs [][prekey.IDSize]byte
	// Linked counts the linked stanzas of a key header of version 2
	// (prekey.SealKeyLinked): recipients reached over a key link.
	Linked int
}

// HasHeader reports whether the message carries a key header.
func (i *SealedInfo) HasHeader() bool { return i.Recipients != nil }

// ReadSealed returns what a sealed message says about its sender key and
// key header, without decrypting anything. The group's state machine uses it
// to accept or reject a chat message (see docs/PROTOCOL.md).
//
// The recipient list is what the author claims; only each recipient can
// check its own stanza, by opening the header. An author who lies about it
// can only hurt the readability of its own messages.
func ReadSealed(sealed []byte) (*SealedInfo, error) {
	w, err := decodeSealedView(sealed) // info copies what it keeps
	if err != nil {
		return nil, fmt.Errorf("read sealed message: %w", err)
	}
	info := &SealedInfo{Epoch: w.Epoch, KeyID: [KeyIDSize]byte(w.KeyID), Ratchet: isRatchet(w.Version), Counter: w.Counter}
	if len(w.Header) == 0 {
		return info, nil
	}
	if hasPrekeyHeader(w.Version) {
		h, err := readPrekeyHeader(w)
		if err != nil {
			return nil, fmt.Errorf("read sealed message: %w", err)
		}
		info.Prekeys = true
		info.Recipients = make([][32]byte, len(h.Stanzas))
		info.PrekeyIDs = make([][prekey.IDSize]byte, len(h.Stanzas))
		for i, st := range h.Stanzas {
			info.Recipients[i] = st.Owner
			info.PrekeyIDs[i] = st.Prekey
			if st.Linked {
				info.Linked++
			}
		}
		return info, nil
	}
	keys, _, err := decodeHeader(w.Header)
	if err != nil {
		return nil, fmt.Errorf("read sealed message: key header: %w", err)
	}
	info.Recipients = make([][32]byte, len(keys)/keySize)
	for i := range info.Recipients {
		copy(info.Recipients[i][:], keys[i*keySize:])
	}
	return info, nil
}

// ErrNoHeader is returned by [OpenSenderKey] for a message without a key
// header.
var ErrNoHeader = errors.New("no key header")

// ErrKeyDeleted is returned when a message's key header is sealed to a
// prekey of the reader whose secret the reader no longer holds: it deleted
// it, as forward secrecy requires, so the message cannot be read here any
// more (unless the sender key itself was kept). It wraps
// [prekey.ErrNoSecret].
var ErrKeyDeleted = fmt.Errorf("the key that opened it was deleted: %w", prekey.ErrNoSecret)

// OpenSenderKey opens the key header of a sealed message as me and returns
// the sender key in it, after checking that it is the key the message names
// and that it is sender's key for group (the envelope's signer and group), so
// that a header cannot be moved into another member's or group's message.
// It fails with [ErrNoHeader] if the message has none, and with
// [ErrNotRecipient] if me is not among the header's recipients.
//
// It costs one X25519 operation whatever the size of the group (see
// openHeader). A version 3 header (sealed to prekeys) needs the prekey
// secrets: see [OpenSenderKeyWith].
func OpenSenderKey(me *identity.Identity, group GroupID, sealed []byte, sender [32]byte) (*SenderKey, error) {
	return OpenSenderKeyWith(me, nil, group, sealed, sender)
}

// OpenSenderKeyWith is [OpenSenderKey] for either kind of key header: one
// sealed with age to me's identity key (version 2), or one sealed to me's
// prekeys (version 3), which opens with the secret in secrets of the prekey
// its stanza names. A version 3 header whose secret me no longer holds (nil
// secrets: none) fails with [ErrKeyDeleted].
func OpenSenderKeyWith(me *identity.Identity, secrets prekey.Secrets, group GroupID, sealed []byte, sender [32]byte) (*SenderKey, error) {
	if me == nil {
		return nil, errors.New("open sender key: nil identity")
	}
	w, err := decodeSealed(sealed)
	if err != nil {
		return nil, fmt.Errorf("open sender key: %w", err)
	}
	if len(w.Header) == 0 {
		return nil, fmt.Errorf("open sender key: %w", ErrNoHeader)
	}
	if hasPrekeyHeader(w.Version) {
		return openPrekeyHeader(me, secrets, group, w, sender)
	}
	pt, err := openHeader(me, w.Header, keyPlainSize)
	if err != nil {
		return nil, fmt.Errorf("open sender key: %w", err)
	}
	defer clear(pt) // the key is copied out below
	k, err := UnmarshalSenderKey(pt)
	if err != nil {
		return nil, fmt.Errorf("open sender key: %w", err)
	}
	switch {
	case k.Group != group:
		return nil, fmt.Errorf("open sender key: %w: key for group %s, received in %s", ErrWrongGroup, k.Group, group)
	case k.Sender != sender:
		return nil, fmt.Errorf("open sender key: %w: key of %x, sent by %x", ErrAuthorMismatch, k.Sender[:4], sender[:4])
	case k.Epoch != w.Epoch || k.ID != [KeyIDSize]byte(w.KeyID):
		return nil, fmt.Errorf("open sender key: %w: the header holds key %x of epoch %d, the message names %x of epoch %d",
			ErrMalformed, k.ID[:4], k.Epoch, w.KeyID[:4], w.Epoch)
	}
	return k, nil
}

// MarshalBinary returns k in the form a key store keeps it in: the
// 104-byte plaintext of an age key header (group, sender, epoch, key id,
// key) while its floor is 0, followed by the floor (uint64be) once it is
// past 0, so that the key is then the chain key at the floor. It is secret.
func (k *SenderKey) MarshalBinary() ([]byte, error) {
	k.chain.mu.Lock()
	defer k.chain.mu.Unlock()
	b := k.keyPlain()
	if k.floor > 0 {
		b = binary.BigEndian.AppendUint64(b, k.floor)
	}
	return b, nil
}

// SenderKeySizeMax is the longest form of [SenderKey.MarshalBinary].
const SenderKeySizeMax = keyPlainSize + 8

// UnmarshalSenderKey reads a sender key from [SenderKey.MarshalBinary]'s
// form.
func UnmarshalSenderKey(b []byte) (*SenderKey, error) {
	if len(b) != keyPlainSize && len(b) != SenderKeySizeMax {
		return nil, fmt.Errorf("%w: sender key of %d bytes, want %d or %d", ErrMalformed, len(b), keyPlainSize, SenderKeySizeMax)
	}
	k := &SenderKey{
		Group:  GroupID(b[0:16]),
		Sender: [32]byte(b[16:48]),
		Epoch:  binary.BigEndian.Uint64(b[48:56]),
		ID:     [KeyIDSize]byte(b[56:72]),
		Key:    [SenderKeySize]byte(b[72:104]),
	}
	if len(b) == SenderKeySizeMax {
		k.floor = binary.BigEndian.Uint64(b[104:])
		if k.floor == 0 || k.floor > ratchet.MaxCounter {
			return nil, fmt.Errorf("%w: sender key floor %d", ErrMalformed, k.floor)
		}
	}
	return k, nil
}

// Opened is a message as its reader opened it, with the exact signed record
// and its signature, so that a transcript can carry them for anyone to check
// with [VerifyRecord].
type Opened struct {
	Message
	Record []byte
	Sig    []byte
	// Counter is the message's counter in its sender key's chain, plus
	// one (sealed message versions 4 and 5); 0 for a message of version 2
	// or 3, which has none.
	Counter uint64
}

// OpenMessage decrypts a sealed message with the sender key it names and
// checks it: the author's signature, that it belongs to group
// ([ErrWrongGroup]), that its author is sender, the signer of the envelope
// that carried it ([ErrAuthorMismatch]), and that its id is id, the message
// id the envelope's body states. So nobody can pass off another member's
// message as their own, replay it into another group or under another id.
// key must be the key the message names ([ReadSealed]); otherwise it fails
// with [ErrWrongKey].
//
// Opening costs one HKDF, one XChaCha20-Poly1305 decryption and one
// signature check, whatever the size of the group.
func OpenMessage(key *SenderKey, group GroupID, sealed []byte, sender [32]byte, id [16]byte) (*Opened, error) {
	return openMessage(key, group, sealed, sender, id)
}

func openMessage(key *SenderKey, group GroupID, sealed []byte, sender [32]byte, id [16]byte) (*Opened, error) {
	if key == nil {
		return nil, errors.New("open message: nil key")
	}
	w, err := decodeSealed(sealed)
	if err != nil {
		return nil, fmt.Errorf("open message: %w", err)
	}
	if key.Group != group || key.Sender != sender || key.Epoch != w.Epoch || key.ID != [KeyIDSize]byte(w.KeyID) {
		return nil, fmt.Errorf("open message: %w", ErrWrongKey)
	}
	mk, aad, err := key.keysFor(w, id)
	if err != nil {
		return nil, err
	}
	defer clear(mk)
	return openSealed(mk, aad, w, group, sender, id)
}

// PeekRecord decrypts a sealed message under key and returns the record it
// holds, without checking the record's signature: for a node reading its
// own stored log again, whose messages were checked when they were applied
// (to find the few it must open in full again with [OpenMessage], or to
// search them). It costs a decryption, not a signature check.
func PeekRecord(key *SenderKey, group GroupID, sealed []byte, sender [32]byte, id [16]byte) (*Message, error) {
	if key == nil || key.Group != group || key.Sender != sender {
		return nil, fmt.Errorf("peek body: %w", ErrWrongKey)
	}
	mk, err := key.MessageKeyOf(sealed, id)
	if err != nil {
		return nil, fmt.Errorf("peek body: %w", err)
	}
	defer clear(mk[:])
	pt, err := UnsealWithMessageKey(mk, group, sealed, sender)
	if err != nil {
		return nil, err
	}
	if len(pt) < sigSize {
		return nil, fmt.Errorf("peek body: %w: plaintext of %d bytes", ErrMalformed, len(pt))
	}
	m, err := decodeRecord(pt[:len(pt)-sigSize])
	if err != nil {
		return nil, fmt.Errorf("peek body: %w", err)
	}
	if m.ID != id || m.Author.Sign != sender || m.Group != group {
		return nil, fmt.Errorf("peek body: %w: not the record of this message", ErrMalformed)
	}
	return m, nil
}

// OpenWithMessageKey opens a sealed message with its message key alone (see
// [SenderKey.MessageKey]), as a transcript's verifier does, and checks it as
// [OpenMessage] does. It needs no secret but that one key.
func OpenWithMessageKey(mk [32]byte, group GroupID, sealed []byte, sender [32]byte, id [16]byte) (*Opened, error) {
	w, err := decodeSealed(sealed)
	if err != nil {
		return nil, fmt.Errorf("open message: %w", err)
	}
	return openSealed(mk[:], messageAAD(w, group, sender), w, group, sender, id)
}

// UnsealWithMessageKey decrypts a sealed message with its message key and
// returns what it holds, the record and its signature (record || 64-byte
// signature), unchecked: for a transcript's verifier, which has checked the
// record it shows already and only needs to know that the ciphertext holds
// exactly those bytes.
func UnsealWithMessageKey(mk [32]byte, group GroupID, sealed []byte, sender [32]byte) ([]byte, error) {
	w, err := decodeSealedView(sealed) // the plaintext is a new slice
	if err != nil {
		return nil, fmt.Errorf("unseal message: %w", err)
	}
	aead, err := chacha20poly1305.NewX(mk[:])
	if err != nil {
		return nil, fmt.Errorf("unseal message: %v", err)
	}
	pt, err := aead.Open(nil, w.Nonce, w.Ciphertext, messageAAD(w, group, sender))
	if err != nil {
		return nil, fmt.Errorf("unseal message: %w: the key does not open it", ErrMalformed)
	}
	return pt, nil
}

// openSealed decrypts w with message key mk and associated data aad, and
// checks the record inside.
func openSealed(mk, aad []byte, w *sealedWire, group GroupID, sender [32]byte, id [16]byte) (*Opened, error) {
	record, sig, m, err := unsealRecord(mk, aad, w)
	if err != nil {
		return nil, err
	}
	if !VerifySignature(m.Author.Sign[:], signedRecord(record), sig) {
		return nil, fmt.Errorf("open message: verify record: %w", ErrSignature)
	}
	o, err := checkOpened(m, record, sig, group, sender, id)
	if err == nil {
		o.Counter = w.counter1()
	}
	return o, err
}

// unsealRecord decrypts a sealed message and decodes its record: what
// openSealed does before the record's signature is checked.
func unsealRecord(mk, aad []byte, w *sealedWire) (record, sig []byte, m *Message, err error) {
	aead, err := chacha20poly1305.NewX(mk)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open message: %v", err)
	}
	pt, err := aead.Open(nil, w.Nonce, w.Ciphertext, aad)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open message: %w: the body does not authenticate", ErrMalformed)
	}
	if len(pt) < sigSize {
		return nil, nil, nil, fmt.Errorf("open message: %w: plaintext of %d bytes", ErrMalformed, len(pt))
	}
	record, sig = pt[:len(pt)-sigSize:len(pt)-sigSize], pt[len(pt)-sigSize:]
	if m, err = decodeRecord(record); err != nil {
		return nil, nil, nil, fmt.Errorf("open message: verify record: %w", err)
	}
	return record, sig, m, nil
}

// checkOpened is what openSealed checks after the record's signature.
func checkOpened(m *Message, record, sig []byte, group GroupID, sender [32]byte, id [16]byte) (*Opened, error) {
	switch {
	case m.Group != group:
		return nil, fmt.Errorf("open message: %w: sealed for %s, received in %s", ErrWrongGroup, m.Group, group)
	case m.Author.Sign != sender:
		return nil, fmt.Errorf("open message: %w: written by %x, sent by %x", ErrAuthorMismatch, m.Author.Sign[:4], sender[:4])
	case m.ID != id:
		return nil, fmt.Errorf("open message: %w: record of message %x under id %x", ErrMalformed, m.ID[:4], id[:4])
	}
	return &Opened{Message: *m, Record: record, Sig: sig}, nil
}
