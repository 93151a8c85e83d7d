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
	if err := parseRecordWire(record, &w); err != nil { // what decodeCanonical accepts (cborwire.go)
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

// headerWire is the wire form of a key header (see [SealMessage]): a CBOR
// array of two byte strings. The first is the recipients' ed25519 keys, 32
// bytes each, concatenated in ascending order; one string rather than an
// array of them keeps the decoding cost of a large group to a single
// allocation. The second is a binary age file with one X25519 stanza per
// recipient, in the same order.
type headerWire struct {
	_          struct{} `cbor:",toarray"`
	Recipients []byte
	Ciphertext []byte
}

// canonicalRecipients sorts recipients into the canonical member order
// ([identity.PublicID.Compare]), drops duplicates and checks the result, so
// that the same member set always yields the same list.
func canonicalRecipients(recipients []identity.PublicID) ([]identity.PublicID, error) {
	rs := slices.Clone(recipients)
	slices.SortFunc(rs, identity.PublicID.Compare)
	rs = slices.Compact(rs)
	switch {
	case len(rs) == 0:
		return nil, errors.New("no recipients")
	case len(rs) > MaxRecipients:
		return nil, fmt.Errorf("%w: %d recipients, limit %d", ErrTooLarge, len(rs), MaxRecipients)
	}
	for i, r := range rs {
		if r.Sign == ([32]byte{}) || r.Box == ([32]byte{}) {
			return nil, fmt.Errorf("recipient #%d: zero key", i)
		}
		// Readers find their stanza by their ed25519 key, so two ids
		// sharing one cannot both be served.
		if i > 0 && rs[i-1].Sign == r.Sign {
			return nil, fmt.Errorf("recipients #%d and #%d share the signing key %x", i-1, i, r.Sign[:4])
		}
	}
	return rs, nil
}

// sealHeader encrypts plaintext with age to rs, which must be in canonical
// order (see canonicalRecipients), one X25519 stanza each in that order, and
// returns the encoded key header.
func sealHeader(rs []identity.PublicID, plaintext []byte) ([]byte, error) {
	keys := make([]byte, 0, len(rs)*keySize)
	ageRs := make([]age.Recipient, len(rs))
	for i, r := range rs {
		keys = append(keys, r.Sign[:]...)
		ar, err := r.Recipient()
		if err != nil {
			return nil, fmt.Errorf("recipient #%d: %v", i, err)
		}
		ageRs[i] = ar
	}
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, ageRs...)
	if err != nil {
		return nil, err
	}
	w.Write(plaintext) // writes to a bytes.Buffer cannot fail
	if err := w.Close(); err != nil {
		return nil, err
	}
	return encMode.Marshal(&headerWire{Recipients: keys, Ciphertext: ct.Bytes()})
}

// decodeHeader splits a key header into the concatenated recipient keys
// (checked to be in strictly ascending order) and the age ciphertext.
func decodeHeader(header []byte) (keys, ciphertext []byte, err error) {
	if len(header) > MaxPayload {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(header), MaxPayload)
	}
	// Decode, then check the encoding is the deterministic one without
	// re-encoding (which would copy the ciphertext twice more): the decoder
	// accepts only definite lengths, an array of two byte strings and no
	// trailing data, so the input has the shortest possible length exactly
	// when every length in it is written in the shortest form.
	var w headerWire
	if err := arrayDec.Unmarshal(header, &w); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(header) != 1+bstrLen(len(w.Recipients))+bstrLen(len(w.Ciphertext)) {
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

// openHeader decrypts a key header as me and returns its plaintext, of at
// most maxPlain bytes.
//
// It finds me's place in the recipient list and unwraps only the age stanza
// at that place, so opening costs one X25519 operation whatever the size of
// the group (the rest of the header is only checked and hashed). If me is not
// listed, or its stanza does not open, it fails with [ErrNotRecipient].
func openHeader(me *identity.Identity, header []byte, maxPlain int) ([]byte, error) {
	keys, ct, err := decodeHeader(header)
	if err != nil {
		return nil, err
	}
	n := len(keys) / keySize
	self := me.Public().Sign
	i := sort.Search(n, func(i int) bool { return bytes.Compare(keys[i*keySize:(i+1)*keySize], self[:]) >= 0 })
	if i == n || !bytes.Equal(keys[i*keySize:(i+1)*keySize], self[:]) {
		return nil, ErrNotRecipient
	}
	return openAge(ct, me.AgeIdentity(), i, n, maxPlain)
}
