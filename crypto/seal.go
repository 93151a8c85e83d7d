package crypto

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/demes/demes/identity"
)

// messageDomain separates message-record signatures from envelope signatures
// made with the same key: a record can never pass for an envelope, nor the
// reverse.
const messageDomain = "DeMeS message v1\x00"

// Message is a chat message's plaintext record: what its author signs, and
// what every recipient reads after opening it.
type Message struct {
	Group GroupID
	// Author is the writer's identity. SealMessage sets it; the record
	// carries both keys, so the record alone says who signed it.
	Author identity.PublicID
	// ID names the message across retries, so that a message sent twice
	// is delivered once (see [NewMessageID]).
	ID [16]byte
	// Head is the transcript head ([Chain]) the author had seen when
	// writing: it places the message in the conversation it answers.
	Head [32]byte
	// Time is the author's clock, in unix nanoseconds.
	Time int64
	// Body is UTF-8 text of at most [MaxBody] bytes.
	Body []byte
}

// NewMessageID returns a fresh random message id.
func NewMessageID() [16]byte {
	var id [16]byte
	rand.Read(id[:]) // never fails; see NewGroupID
	return id
}

// recordWire is the wire form of a message record: a CBOR array of six items
// in this order, each id and key a byte string of fixed length.
type recordWire struct {
	_      struct{} `cbor:",toarray"`
	Group  []byte   // 16 bytes
	Author []byte   // 64 bytes: ed25519 key || X25519 key
	ID     []byte   // 16 bytes
	Head   []byte   // 32 bytes
	Time   int64
	Body   []byte
}

func encodeRecord(m *Message) ([]byte, error) {
	return encMode.Marshal(&recordWire{
		Group:  m.Group[:],
		Author: m.Author.Bytes(),
		ID:     m.ID[:],
		Head:   m.Head[:],
		Time:   m.Time,
		Body:   m.Body,
	})
}

// decodeRecord decodes a record without checking its signature: it is
// separate from VerifyRecord only so that fuzzing reaches it.
func decodeRecord(record []byte) (*Message, error) {
	if len(record) > MaxRecord {
		return nil, fmt.Errorf("%w: record of %d bytes, limit %d", ErrTooLarge, len(record), MaxRecord)
	}
	var w recordWire
	if err := decodeCanonical(arrayDec, record, &w); err != nil {
		return nil, fmt.Errorf("%w: record: %v", ErrMalformed, err)
	}
	m := &Message{Time: w.Time, Body: w.Body}
	switch {
	case len(w.Group) != len(m.Group):
		return nil, fmt.Errorf("%w: group id of %d bytes", ErrMalformed, len(w.Group))
	case len(w.ID) != len(m.ID):
		return nil, fmt.Errorf("%w: message id of %d bytes", ErrMalformed, len(w.ID))
	case len(w.Head) != len(m.Head):
		return nil, fmt.Errorf("%w: transcript head of %d bytes", ErrMalformed, len(w.Head))
	case len(w.Body) > MaxBody:
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", ErrTooLarge, len(w.Body), MaxBody)
	case !utf8.Valid(w.Body):
		return nil, fmt.Errorf("%w: body is not UTF-8", ErrMalformed)
	}
	var err error
	if m.Author, err = identity.PublicIDFromBytes(w.Author); err != nil {
		return nil, fmt.Errorf("%w: author: %v", ErrMalformed, err)
	}
	copy(m.Group[:], w.Group)
	copy(m.ID[:], w.ID)
	copy(m.Head[:], w.Head)
	return m, nil
}

func signedRecord(record []byte) []byte {
	return append([]byte(messageDomain), record...)
}

// VerifyRecord checks a message record and its author's signature, and
// returns the message. It needs no key: the record names its author. It is
// how a transcript is checked by someone who was never a member.
func VerifyRecord(record, sig []byte) (*Message, error) {
	m, err := decodeRecord(record)
	if err != nil {
		return nil, fmt.Errorf("verify record: %w", err)
	}
	if !VerifySignature(m.Author.Sign[:], signedRecord(record), sig) {
		return nil, fmt.Errorf("verify record: %w", ErrSignature)
	}
	return m, nil
}

// sealedWire is the wire form of a sealed message: a CBOR array of two byte
// strings. The first is the recipients' ed25519 keys, 32 bytes each,
// concatenated in ascending order; one string rather than an array of them
// keeps the decoding cost of a large group to a single allocation. The second
// is a binary age file with one X25519 stanza per recipient, in the same order.
type sealedWire struct {
	_          struct{} `cbor:",toarray"`
	Recipients []byte
	Ciphertext []byte
}

// SealMessage signs and encrypts m for recipients, and returns the sealed
// message (the payload of a [TypeChat] envelope).
//
// It sets m.Author to author's public id and signs the encoded record, with
// its own domain string, so that any reader can prove who wrote it. Then it
// encrypts the record and the signature with age to the X25519 key of every
// recipient. The recipients are sorted into the canonical member order
// ([identity.PublicID.Compare]) and duplicates are dropped, so the same member
// set always yields the same list; the author is not added: include it to
// read the message back.
func SealMessage(author *identity.Identity, m *Message, recipients []identity.PublicID) ([]byte, error) {
	if author == nil || m == nil {
		return nil, errors.New("seal message: nil author or message")
	}
	if len(m.Body) > MaxBody {
		return nil, fmt.Errorf("seal message: %w: body of %d bytes, limit %d", ErrTooLarge, len(m.Body), MaxBody)
	}
	if !utf8.Valid(m.Body) {
		return nil, fmt.Errorf("seal message: %w: body is not UTF-8", ErrMalformed)
	}
	rs := slices.Clone(recipients)
	slices.SortFunc(rs, identity.PublicID.Compare)
	rs = slices.Compact(rs)
	switch {
	case len(rs) == 0:
		return nil, errors.New("seal message: no recipients")
	case len(rs) > MaxRecipients:
		return nil, fmt.Errorf("seal message: %w: %d recipients, limit %d", ErrTooLarge, len(rs), MaxRecipients)
	}
	keys := make([]byte, 0, len(rs)*keySize)
	ageRs := make([]age.Recipient, len(rs))
	for i, r := range rs {
		if r.Sign == ([32]byte{}) || r.Box == ([32]byte{}) {
			return nil, fmt.Errorf("seal message: recipient #%d: zero key", i)
		}
		// Readers find their stanza by their ed25519 key, so two ids
		// sharing one cannot both be served.
		if i > 0 && rs[i-1].Sign == r.Sign {
			return nil, fmt.Errorf("seal message: recipients #%d and #%d share the signing key %x", i-1, i, r.Sign[:4])
		}
		keys = append(keys, r.Sign[:]...)
		ar, err := r.Recipient()
		if err != nil {
			return nil, fmt.Errorf("seal message: recipient #%d: %v", i, err)
		}
		ageRs[i] = ar
	}

	m.Author = author.Public()
	record, err := encodeRecord(m)
	if err != nil {
		return nil, fmt.Errorf("seal message: %v", err)
	}
	sig := author.Sign(signedRecord(record))

	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, ageRs...)
	if err != nil {
		return nil, fmt.Errorf("seal message: %v", err)
	}
	w.Write(record) // writes to a bytes.Buffer cannot fail
	w.Write(sig)
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal message: %v", err)
	}
	sealed, err := encMode.Marshal(&sealedWire{Recipients: keys, Ciphertext: ct.Bytes()})
	if err != nil {
		return nil, fmt.Errorf("seal message: %v", err)
	}
	if len(sealed) > MaxPayload {
		return nil, fmt.Errorf("seal message: %w: %d bytes, limit %d", ErrTooLarge, len(sealed), MaxPayload)
	}
	return sealed, nil
}

// decodeSealed splits a sealed message into the concatenated recipient keys
// (checked to be in strictly ascending order) and the age ciphertext.
func decodeSealed(sealed []byte) (keys, ciphertext []byte, err error) {
	if len(sealed) > MaxPayload {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(sealed), MaxPayload)
	}
	// Decode, then check the encoding is the deterministic one without
	// re-encoding (which would copy the ciphertext twice more): the decoder
	// accepts only definite lengths, an array of two byte strings and no
	// trailing data, so the input has the shortest possible length exactly
	// when every length in it is written in the shortest form.
	var w sealedWire
	if err := arrayDec.Unmarshal(sealed, &w); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(sealed) != 1+bstrLen(len(w.Recipients))+bstrLen(len(w.Ciphertext)) {
		return nil, nil, fmt.Errorf("%w: not in deterministic encoding", ErrMalformed)
	}
	n := len(w.Recipients) / keySize
	switch {
	case len(w.Recipients)%keySize != 0:
		return nil, nil, fmt.Errorf("%w: recipient list of %d bytes", ErrMalformed, len(w.Recipients))
	case n == 0:
		return nil, nil, fmt.Errorf("%w: no recipients", ErrMalformed)
	case n > MaxRecipients:
		return nil, nil, fmt.Errorf("%w: %d recipients, limit %d", ErrMalformed, n, MaxRecipients)
	case len(w.Ciphertext) == 0:
		// Also rules out a CBOR null, which decodes like an empty string
		// and has the same length.
		return nil, nil, fmt.Errorf("%w: empty ciphertext", ErrMalformed)
	}
	for i := 1; i < n; i++ {
		if bytes.Compare(w.Recipients[(i-1)*keySize:i*keySize], w.Recipients[i*keySize:(i+1)*keySize]) >= 0 {
			return nil, nil, fmt.Errorf("%w: recipients not in ascending order at #%d", ErrMalformed, i)
		}
	}
	return w.Recipients, w.Ciphertext, nil
}

// bstrLen is the length of the shortest CBOR encoding of a byte string of n
// bytes: a one-byte head for n < 24, then 1, 2, 4 or 8 more bytes of length.
func bstrLen(n int) int {
	switch {
	case n < 24:
		return 1 + n
	case n <= 0xff:
		return 2 + n
	case n <= 0xffff:
		return 3 + n
	case uint64(n) <= 0xffffffff:
		return 5 + n
	}
	return 9 + n
}

// SealedRecipients returns the ed25519 keys of the members a sealed message
// is sealed to, in order, without decrypting anything. The node uses it to
// reject a message sealed to the wrong member set.
//
// The list is what the author claims; only each recipient can check its own
// stanza, by opening the message. An author who lies about it can only hurt
// the readability of its own message.
func SealedRecipients(sealed []byte) ([][32]byte, error) {
	keys, _, err := decodeSealed(sealed)
	if err != nil {
		return nil, fmt.Errorf("read sealed recipients: %w", err)
	}
	out := make([][32]byte, len(keys)/keySize)
	for i := range out {
		copy(out[i][:], keys[i*keySize:])
	}
	return out, nil
}

// Opened is a message as its reader opened it, with the exact signed record
// and its signature, so that a transcript can carry them for anyone to check
// with [VerifyRecord].
type Opened struct {
	Message
	Record []byte
	Sig    []byte
}

// OpenMessage decrypts a sealed message as me and checks it: the author's
// signature, that it belongs to group ([ErrWrongGroup]), and that its author
// is sender, the signer of the envelope that carried it ([ErrAuthorMismatch]),
// so that nobody can pass off another member's message as their own or
// replay it into another group. If me is not a recipient, it fails with
// [ErrNotRecipient].
//
// OpenMessage finds me's place in the recipient list and unwraps only the age
// stanza at that place, so opening costs one X25519 operation whatever the
// size of the group (the rest of the header is only checked and hashed).
func OpenMessage(me *identity.Identity, group GroupID, sealed []byte, sender [32]byte) (*Opened, error) {
	if me == nil {
		return nil, errors.New("open message: nil identity")
	}
	keys, ct, err := decodeSealed(sealed)
	if err != nil {
		return nil, fmt.Errorf("open message: %w", err)
	}
	n := len(keys) / keySize
	self := me.Public().Sign
	i := sort.Search(n, func(i int) bool { return bytes.Compare(keys[i*keySize:(i+1)*keySize], self[:]) >= 0 })
	if i == n || !bytes.Equal(keys[i*keySize:(i+1)*keySize], self[:]) {
		return nil, fmt.Errorf("open message: %w", ErrNotRecipient)
	}

	const maxPlain = MaxRecord + sigSize
	pt, err := openAge(ct, me.AgeIdentity(), i, n, maxPlain)
	if err != nil {
		return nil, fmt.Errorf("open message: %w", err)
	}
	if len(pt) < sigSize {
		return nil, fmt.Errorf("open message: %w: plaintext of %d bytes", ErrMalformed, len(pt))
	}
	record, sig := pt[:len(pt)-sigSize:len(pt)-sigSize], pt[len(pt)-sigSize:]
	m, err := VerifyRecord(record, sig)
	if err != nil {
		return nil, fmt.Errorf("open message: %w", err)
	}
	if m.Group != group {
		return nil, fmt.Errorf("open message: %w: sealed for %s, received in %s", ErrWrongGroup, m.Group, group)
	}
	if m.Author.Sign != sender {
		return nil, fmt.Errorf("open message: %w: written by %x, sent by %x", ErrAuthorMismatch, m.Author.Sign[:4], sender[:4])
	}
	return &Opened{Message: *m, Record: record, Sig: sig}, nil
}
