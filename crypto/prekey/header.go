package prekey

import (
	"bytes"
	"crypto/hpke"
	"crypto/mlkem"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/demes/demes/internal/canon"
)

// This file is the key header, version 1: a sender key sealed with HPKE to
// each recipient's current prekey. One stanza per recipient, each a
// single-shot HPKE Seal whose info binds everything the key is for.

// headerDomain starts the HPKE info of every stanza.
const headerDomain = "DeMeS key header v1\x00"

// Sizes and limits of a key header.
const (
	// KeySize is the length of the key a header carries: a sender key,
	// which seeds its ratchet (package ratchet).
	KeySize = 32
	// KeyIDSize is the length of a sender key id.
	KeyIDSize = 16
	// EncSize is the length of an MLKEM768-X25519 encapsulation: the
	// ML-KEM-768 ciphertext followed by the ephemeral X25519 point.
	EncSize = mlkem.CiphertextSize768 + 32
	// StanzaSize is the length of one recipient's stanza: its ed25519 key,
	// its prekey id, the encapsulation and the sealed key with its tag.
	StanzaSize = 32 + IDSize + EncSize + KeySize + 16
	// MaxRecipients is the largest number of stanzas in a header, as for
	// the age key header of package crypto.
	MaxRecipients = 1024
	// MaxHeader is the largest encoded key header [ReadHeader] accepts.
	MaxHeader = MaxRecipients*StanzaSize + 256
)

var (
	// ErrNotRecipient: the header has no stanza for this member.
	ErrNotRecipient = errors.New("not a recipient")
	// ErrNoSecret: the stanza is sealed to a prekey whose secret this
	// member does not hold, or has deleted.
	ErrNoSecret = errors.New("prekey secret not held")
	// ErrWrongContext: the header is for another group, sender, epoch or
	// key id than the message that carries it.
	ErrWrongContext = errors.New("key header for another context")
	// ErrDecrypt: the stanza does not open with the prekey secret.
	ErrDecrypt = errors.New("stanza does not open")
)

// KeyContext is what a sender key is for: it is bound into every stanza of
// the header that carries the key, so that a header (or a stanza) cannot be
// moved to another group, sender, epoch or key id.
type KeyContext struct {
	Group  [16]byte
	Sender [32]byte // the ed25519 key of the key's owner
	Epoch  uint64
	KeyID  [KeyIDSize]byte
}

// Stanza names one recipient of a header: its ed25519 key and the id of the
// prekey its stanza is sealed to.
type Stanza struct {
	Owner  [32]byte
	Prekey [IDSize]byte
}

// Header is what anyone can read from a key header without a secret.
type Header struct {
	Context KeyContext
	// Stanzas are in ascending order of Owner, one per recipient.
	Stanzas []Stanza
}

// headerWire is the wire form: a CBOR array of six items. The stanzas are
// one byte string of StanzaSize-byte entries, so that a large group costs
// one allocation to decode.
type headerWire struct {
	_       struct{} `cbor:",toarray"`
	Version uint64   // Version
	Group   []byte   // 16 bytes
	Sender  []byte   // 32 bytes
	Epoch   uint64
	KeyID   []byte // KeyIDSize bytes
	Stanzas []byte // n × StanzaSize bytes, ascending by owner
}

// stanzaInfo is the HPKE info of the stanza of recipient owner, sealed to
// its prekey id.
func stanzaInfo(ctx *KeyContext, owner [32]byte, id [IDSize]byte) []byte {
	b := make([]byte, 0, len(headerDomain)+16+32+8+KeyIDSize+32+IDSize)
	b = append(b, headerDomain...)
	b = append(b, ctx.Group[:]...)
	b = append(b, ctx.Sender[:]...)
	b = binary.BigEndian.AppendUint64(b, ctx.Epoch)
	b = append(b, ctx.KeyID[:]...)
	b = append(b, owner[:]...)
	return append(b, id[:]...)
}

// SealKey seals key for ctx to each recipient's prekey and returns the
// encoded key header. Every prekey must be valid at now (see
// [Prekey.ValidAt]), and there may be one per owner only; the recipients are
// sorted by owner, so the same set gives the same stanza order. The sender
// is not added: include its own prekey to recover its key from its
// messages.
//
// HPKE's base mode does not authenticate the sender: anyone can seal a
// header naming any ctx.Sender. The header gets its author from the signed
// envelope it travels in, as the age header of package crypto does.
func SealKey(ctx KeyContext, key *[KeySize]byte, recipients []*Prekey, now time.Time) ([]byte, error) {
	if key == nil {
		return nil, errors.New("seal key header: nil key")
	}
	switch {
	case len(recipients) == 0:
		return nil, errors.New("seal key header: no recipients")
	case len(recipients) > MaxRecipients:
		return nil, fmt.Errorf("seal key header: %w: %d recipients, limit %d", ErrTooLarge, len(recipients), MaxRecipients)
	}
	for i, p := range recipients {
		if p == nil || len(p.public) != PublicKeySize {
			return nil, fmt.Errorf("seal key header: recipient #%d: not a decoded prekey", i)
		}
	}
	rs := slices.Clone(recipients)
	slices.SortFunc(rs, func(a, b *Prekey) int { return bytes.Compare(a.Owner[:], b.Owner[:]) })
	stanzas := make([]byte, 0, len(rs)*StanzaSize)
	for i, p := range rs {
		if i > 0 && rs[i-1].Owner == p.Owner {
			return nil, fmt.Errorf("seal key header: two prekeys of %x", p.Owner[:4])
		}
		if err := p.ValidAt(now); err != nil {
			return nil, fmt.Errorf("seal key header: recipient %x: %w", p.Owner[:4], err)
		}
		pk, err := kem.NewPublicKey(p.public)
		if err != nil {
			return nil, fmt.Errorf("seal key header: recipient %x: %v", p.Owner[:4], err)
		}
		ct, err := hpke.Seal(pk, kdf, aead, stanzaInfo(&ctx, p.Owner, p.ID), key[:])
		if err != nil {
			return nil, fmt.Errorf("seal key header: recipient %x: %v", p.Owner[:4], err)
		}
		stanzas = append(stanzas, p.Owner[:]...)
		stanzas = append(stanzas, p.ID[:]...)
		stanzas = append(stanzas, ct...)
	}
	return canon.Marshal(&headerWire{
		Version: Version,
		Group:   ctx.Group[:],
		Sender:  ctx.Sender[:],
		Epoch:   ctx.Epoch,
		KeyID:   ctx.KeyID[:],
		Stanzas: stanzas,
	})
}

// decodeHeader decodes a key header and checks its shape: the deterministic
// encoding, the version, the sizes, and owners in strictly ascending order.
func decodeHeader(header []byte) (*headerWire, error) {
	if len(header) > MaxHeader {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(header), MaxHeader)
	}
	var w headerWire
	if err := canon.Decode(header, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	n := len(w.Stanzas) / StanzaSize
	switch {
	case w.Version != Version:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, w.Version, Version)
	case len(w.Group) != 16:
		return nil, fmt.Errorf("%w: group id of %d bytes", ErrMalformed, len(w.Group))
	case len(w.Sender) != 32:
		return nil, fmt.Errorf("%w: sender key of %d bytes", ErrMalformed, len(w.Sender))
	case len(w.KeyID) != KeyIDSize:
		return nil, fmt.Errorf("%w: key id of %d bytes", ErrMalformed, len(w.KeyID))
	case len(w.Stanzas)%StanzaSize != 0:
		return nil, fmt.Errorf("%w: stanzas of %d bytes, not a multiple of %d", ErrMalformed, len(w.Stanzas), StanzaSize)
	case n == 0:
		return nil, fmt.Errorf("%w: no recipients", ErrMalformed)
	case n > MaxRecipients:
		return nil, fmt.Errorf("%w: %d recipients, limit %d", ErrTooLarge, n, MaxRecipients)
	}
	for i := 1; i < n; i++ {
		if bytes.Compare(w.Stanzas[(i-1)*StanzaSize:][:32], w.Stanzas[i*StanzaSize:][:32]) >= 0 {
			return nil, fmt.Errorf("%w: recipients not in ascending order at #%d", ErrMalformed, i)
		}
	}
	return &w, nil
}

func (w *headerWire) context() KeyContext {
	return KeyContext{Group: [16]byte(w.Group), Sender: [32]byte(w.Sender), Epoch: w.Epoch, KeyID: [KeyIDSize]byte(w.KeyID)}
}

// ReadHeader returns what a key header says without opening it: its context
// and its recipients with their prekey ids. A group's state machine uses it
// to check that a header is sealed to the current members' current
// prekeys.
func ReadHeader(header []byte) (*Header, error) {
	w, err := decodeHeader(header)
	if err != nil {
		return nil, fmt.Errorf("read key header: %w", err)
	}
	h := &Header{Context: w.context(), Stanzas: make([]Stanza, len(w.Stanzas)/StanzaSize)}
	for i := range h.Stanzas {
		s := w.Stanzas[i*StanzaSize:]
		h.Stanzas[i] = Stanza{Owner: [32]byte(s[:32]), Prekey: [IDSize]byte(s[32 : 32+IDSize])}
	}
	return h, nil
}

// OpenKey opens the stanza of me (an ed25519 key) in a key header with the
// secret of the prekey it is sealed to, looked up in secrets, and returns the
// key. The header must be for want, the context of the message that carries
// it ([ErrWrongContext]); the stanza's HPKE info binds that context, me and
// the prekey id, so a stanza moved from another header does not open
// ([ErrDecrypt]).
//
// It fails with [ErrNotRecipient] if the header has no stanza for me, and
// with [ErrNoSecret] if me no longer holds the prekey's secret: once a
// member has deleted it, nobody can open the headers sealed to that prekey.
// It costs one HPKE decapsulation whatever the size of the group, plus
// decoding the header (about 1.2 KB per recipient).
func OpenKey(header []byte, want KeyContext, me [32]byte, secrets Secrets) ([KeySize]byte, error) {
	var key [KeySize]byte
	if secrets == nil {
		return key, errors.New("open key header: nil secrets")
	}
	w, err := decodeHeader(header)
	if err != nil {
		return key, fmt.Errorf("open key header: %w", err)
	}
	if got := w.context(); got != want {
		return key, fmt.Errorf("open key header: %w: header for epoch %d key %x of %x, message for epoch %d key %x of %x",
			ErrWrongContext, got.Epoch, got.KeyID[:4], got.Sender[:4], want.Epoch, want.KeyID[:4], want.Sender[:4])
	}
	n := len(w.Stanzas) / StanzaSize
	i := sort.Search(n, func(i int) bool { return bytes.Compare(w.Stanzas[i*StanzaSize:][:32], me[:]) >= 0 })
	if i == n || !bytes.Equal(w.Stanzas[i*StanzaSize:][:32], me[:]) {
		return key, fmt.Errorf("open key header: %w", ErrNotRecipient)
	}
	st := w.Stanzas[i*StanzaSize:][:StanzaSize]
	id := [IDSize]byte(st[32 : 32+IDSize])
	s := secrets.Secret(id)
	if s == nil || s.sk == nil {
		return key, fmt.Errorf("open key header: %w: prekey %x", ErrNoSecret, id[:4])
	}
	if s.Owner != me {
		return key, fmt.Errorf("open key header: %w: prekey %x is not %x's", ErrNoSecret, id[:4], me[:4])
	}
	pt, err := hpke.Open(s.sk, kdf, aead, stanzaInfo(&want, me, id), st[32+IDSize:])
	if err != nil {
		return key, fmt.Errorf("open key header: %w: prekey %x", ErrDecrypt, id[:4])
	}
	defer clear(pt)
	if len(pt) != KeySize {
		return key, fmt.Errorf("open key header: %w: key of %d bytes", ErrMalformed, len(pt))
	}
	copy(key[:], pt)
	return key, nil
}
