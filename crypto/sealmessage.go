package crypto

import (
	"crypto/rand"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/identity"
)

// Sealing a message (docs/PROTOCOL.md, "Sealing"), and the wire form of a
// sealed message of every version, which every reader decodes.

// sealedWire is the wire form of a sealed message: a CBOR array of six items
// in this order.
type sealedWire struct {
	_          struct{} `cbor:",toarray"`
	Version    uint64   // SealedVersion
	Epoch      uint64
	KeyID      []byte // KeyIDSize bytes
	Header     []byte // a key header, or empty
	Nonce      []byte // chacha20poly1305.NonceSizeX bytes
	Ciphertext []byte // record || signature, sealed; at least the tag
	// Counter is the message's counter in its key's chain (versions 4
	// and 5, whose array has it after Header: sealedWireRatchet).
	Counter uint64 `cbor:"-"`
}

// sealedWireRatchet is the wire form of a sealed message of version 4 or
// 5: a CBOR array of seven items, the counter after the key header.
type sealedWireRatchet struct {
	_          struct{} `cbor:",toarray"`
	Version    uint64
	Epoch      uint64
	KeyID      []byte
	Header     []byte
	Counter    uint64
	Nonce      []byte
	Ciphertext []byte
}

// counter1 is [Opened.Counter] for w: its counter plus one, or 0 for a
// version without one.
func (w *sealedWire) counter1() uint64 {
	if !isRatchet(w.Version) {
		return 0
	}
	return w.Counter + 1
}

// marshal encodes w in the wire form of its version.
func (w *sealedWire) marshal() ([]byte, error) {
	if isRatchet(w.Version) {
		return encMode.Marshal(&sealedWireRatchet{Version: w.Version, Epoch: w.Epoch, KeyID: w.KeyID, Header: w.Header,
			Counter: w.Counter, Nonce: w.Nonce, Ciphertext: w.Ciphertext})
	}
	return encMode.Marshal(w)
}

// SealMessage signs m as author and encrypts it under the sender key key,
// and returns the sealed message (the payload of a [TypeChat] envelope's
// body).
//
// It sets m.Author to author's public id and signs the encoded record, with
// its own domain string, so that any reader can prove who wrote it. Then it
// encrypts the record and the signature with XChaCha20-Poly1305, under a key
// derived from key and m.ID, with a random nonce (a retry may seal the same
// message again under the same key).
//
// With header recipients, the message also carries key in a key header
// sealed with age to each of them: readers learn the sender key from it.
// The recipients are sorted into the canonical member order
// ([identity.PublicID.Compare]) and duplicates are dropped, so the same member
// set always yields the same list; the author is not added, include it to
// recover its own key from its messages. With no recipients (nil), the
// message has no header and its readers must know key already.
func SealMessage(author *identity.Identity, m *Message, key *SenderKey, header []identity.PublicID) ([]byte, error) {
	return sealMessageTo(author, m, key, header, SealedVersionRatchet)
}

// sealMessageTo is SealMessage as the sealed message version (2 or 4)
// given: what the test vectors of either version are made with.
func sealMessageTo(author *identity.Identity, m *Message, key *SenderKey, header []identity.PublicID, version uint64) ([]byte, error) {
	if key == nil {
		return nil, errors.New("seal message: nil author, message or key")
	}
	var hdr []byte
	if header != nil {
		if key.Floor() > 0 {
			return nil, errFloorHeader
		}
		rs, err := canonicalRecipients(header)
		if err != nil {
			return nil, fmt.Errorf("seal message: key header: %w", err)
		}
		plain := key.keyPlain()
		hdr, err = sealHeader(rs, plain)
		clear(plain) // secrets are wiped after use
		if err != nil {
			return nil, fmt.Errorf("seal message: key header: %w", err)
		}
	}
	return sealMessage(author, m, key, version, hdr)
}

// errFloorHeader: a key whose floor advanced holds a chain key, not the
// sender key its readers need from a header.
var errFloorHeader = errors.New("seal message: the sender key's floor has advanced, so it can no longer be given to anyone; seal under a new key")

// sealMessage signs m and seals it under key, with the encoded key header
// hdr (nil: none) of the given sealed-message version.
func sealMessage(author *identity.Identity, m *Message, key *SenderKey, version uint64, hdr []byte) ([]byte, error) {
	sealed, _, _, _, err := sealRecord(author, m, key, version, hdr)
	return sealed, err
}

// sealRecord is sealMessage that also returns the signed record and its
// signature that the sealed message holds, and its counter plus one
// ([Opened.Counter]).
func sealRecord(author *identity.Identity, m *Message, key *SenderKey, version uint64, hdr []byte) (sealed, record, sig []byte, counter1 uint64, err error) {
	if author == nil || m == nil || key == nil {
		return nil, nil, nil, 0, errors.New("seal message: nil author, message or key")
	}
	if len(m.Body) > MaxBody {
		return nil, nil, nil, 0, fmt.Errorf("seal message: %w: body of %d bytes, limit %d", ErrTooLarge, len(m.Body), MaxBody)
	}
	if !utf8.Valid(m.Body) {
		return nil, nil, nil, 0, fmt.Errorf("seal message: %w: body is not UTF-8", ErrMalformed)
	}
	m.Author = author.Public()
	if key.Group != m.Group || key.Sender != m.Author.Sign {
		return nil, nil, nil, 0, errors.New("seal message: the sender key is not the author's key for the message's group")
	}
	if hdr == nil {
		// No header: version 2 or 4, whatever the header would have been.
		hdr = []byte{}
		if isRatchet(version) {
			version = SealedVersionRatchet
		} else {
			version = SealedVersion
		}
	}
	if len(hdr) > 0 && key.Floor() > 0 {
		return nil, nil, nil, 0, errFloorHeader
	}
	w := sealedWire{Version: version, Epoch: key.Epoch, KeyID: key.ID[:], Header: hdr}

	record, err = encodeRecord(m)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("seal message: %v", err)
	}
	record = record[:len(record):len(record)] // the append below must not write into it
	sig = author.Sign(signedRecord(record))
	var mk, aad []byte
	if isRatchet(version) {
		if w.Counter, err = key.nextCounter(); err != nil {
			return nil, nil, nil, 0, err
		}
	}
	if mk, aad, err = key.keysFor(&w, m.ID); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("seal message: %w", err)
	}
	aead, err := chacha20poly1305.NewX(mk)
	clear(mk) // the AEAD keeps its own copy
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("seal message: %v", err)
	}
	w.Nonce = make([]byte, chacha20poly1305.NonceSizeX)
	rand.Read(w.Nonce) // never fails; see NewGroupID
	plain := append(record, sig...)
	w.Ciphertext = aead.Seal(nil, w.Nonce, plain, aad)

	sealed, err = w.marshal()
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("seal message: %v", err)
	}
	if len(sealed) > MaxPayload {
		return nil, nil, nil, 0, fmt.Errorf("seal message: %w: %d bytes, limit %d", ErrTooLarge, len(sealed), MaxPayload)
	}
	return sealed, record, sig, w.counter1(), nil
}

// decodeSealed decodes a sealed message and checks the shapes of its fields;
// the key header, if any, is left encoded (see decodeHeader).
func decodeSealed(sealed []byte) (*sealedWire, error) {
	return decodeSealedCopy(sealed, true)
}

// decodeSealedView is decodeSealed without copying: the result's byte
// strings are sealed's bytes. It is for the callers that keep nothing of the
// result and change nothing in it (ReadSealed, UnsealWithMessageKey), which
// a transcript's verification calls for every chat entry.
func decodeSealedView(sealed []byte) (*sealedWire, error) {
	return decodeSealedCopy(sealed, false)
}

func decodeSealedCopy(sealed []byte, copied bool) (*sealedWire, error) {
	if len(sealed) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(sealed), MaxPayload)
	}
	// Decoded by hand, accepting exactly what decodeCanonical would (the
	// deterministic encoding), at a fraction of its cost (sealedwire.go).
	var w sealedWire
	if err := parseSealedWire(sealed, &w, copied); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case w.Version < SealedVersion || w.Version > SealedVersionRatchetPrekey:
		return nil, fmt.Errorf("%w: sealed message version %d, want %d to %d", ErrMalformed, w.Version, SealedVersion, SealedVersionRatchetPrekey)
	case hasPrekeyHeader(w.Version) && len(w.Header) == 0:
		return nil, fmt.Errorf("%w: sealed message version %d without its prekey key header", ErrMalformed, w.Version)
	case len(w.KeyID) != KeyIDSize:
		return nil, fmt.Errorf("%w: key id of %d bytes", ErrMalformed, len(w.KeyID))
	case len(w.Nonce) != chacha20poly1305.NonceSizeX:
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrMalformed, len(w.Nonce))
	case len(w.Ciphertext) < chacha20poly1305.Overhead+sigSize:
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrMalformed, len(w.Ciphertext))
	case len(w.Ciphertext) > MaxRecord+sigSize+chacha20poly1305.Overhead:
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrTooLarge, len(w.Ciphertext))
	}
	return &w, nil
}
