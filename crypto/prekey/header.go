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
	MaxHeader = MaxRecipients*FullStanzaSize + 256
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
	// Linked is set for a linked stanza of a version 2 header.
	Linked bool
}

// Header is what anyone can read from a key header without a secret.
type Header struct {
	Context KeyContext
	// Version is the header's version: 1, or 2 with links.
	Version uint64
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
	return stanzaInfoDomain(headerDomain, ctx, owner, id)
}

// stanzaInfoDomain is stanzaInfo under the domain string of a header
// version.
func stanzaInfoDomain(domain string, ctx *KeyContext, owner [32]byte, id [IDSize]byte) []byte {
	b := make([]byte, 0, len(domain)+16+32+8+KeyIDSize+32+IDSize+LinkIDSize+8)
	b = append(b, domain...)
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

// decodedHeader is a key header of either version, its shape checked.
type decodedHeader struct {
	ctx KeyContext
	// full are the stanzas sealed with HPKE, of fullSize bytes each
	// (StanzaSize in version 1, FullStanzaSize in version 2); linked are
	// the linked stanzas (version 2), of LinkedStanzaSize bytes. Each is
	// in strictly ascending order of owner, and no owner is in both.
	full     []byte
	fullSize int
	linked   []byte
	share    []byte
	version  uint64
}

// headerWireV2 is the wire form of version 2: version 1's six items, the
// linked stanzas and the X25519 share their keys mix in.
type headerWireV2 struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Group   []byte
	Sender  []byte
	Epoch   uint64
	KeyID   []byte
	Full    []byte // n × FullStanzaSize bytes, ascending by owner
	Linked  []byte // m × LinkedStanzaSize bytes, ascending by owner
	Share   []byte // the header's X25519 share: 32 bytes if m > 0, else empty
}

// decodeHeader decodes a key header and checks its shape: the deterministic
// encoding, the version, the sizes, and owners in strictly ascending order.
func decodeHeader(header []byte) (*decodedHeader, error) {
	if len(header) > MaxHeader {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(header), MaxHeader)
	}
	var (
		d                    decodedHeader
		group, sender, keyID []byte
		err                  error
	)
	// A CBOR array of six items is version 1, of eight version 2.
	if len(header) > 0 && header[0] == 0x88 {
		var w headerWireV2
		err = canon.Decode(header, &w)
		d = decodedHeader{full: w.Full, fullSize: FullStanzaSize, linked: w.Linked, share: w.Share, version: w.Version}
		group, sender, keyID, d.ctx.Epoch = w.Group, w.Sender, w.KeyID, w.Epoch
		switch {
		case err != nil:
		case w.Version != HeaderVersionLinked:
			return nil, fmt.Errorf("%w: version %d in a header of eight items, want %d", ErrMalformed, w.Version, HeaderVersionLinked)
		case len(w.Linked) > 0 && len(w.Share) != 32, len(w.Linked) == 0 && len(w.Share) != 0:
			return nil, fmt.Errorf("%w: an X25519 share of %d bytes for %d bytes of linked stanzas", ErrMalformed, len(w.Share), len(w.Linked))
		}
	} else {
		var w headerWire
		err = canon.Decode(header, &w)
		d = decodedHeader{full: w.Stanzas, fullSize: StanzaSize, version: w.Version}
		group, sender, keyID, d.ctx.Epoch = w.Group, w.Sender, w.KeyID, w.Epoch
		if err == nil && w.Version != Version {
			return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, w.Version, Version)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	n, m := len(d.full)/d.fullSize, len(d.linked)/LinkedStanzaSize
	switch {
	case len(group) != 16:
		return nil, fmt.Errorf("%w: group id of %d bytes", ErrMalformed, len(group))
	case len(sender) != 32:
		return nil, fmt.Errorf("%w: sender key of %d bytes", ErrMalformed, len(sender))
	case len(keyID) != KeyIDSize:
		return nil, fmt.Errorf("%w: key id of %d bytes", ErrMalformed, len(keyID))
	case len(d.full)%d.fullSize != 0:
		return nil, fmt.Errorf("%w: stanzas of %d bytes, not a multiple of %d", ErrMalformed, len(d.full), d.fullSize)
	case len(d.linked)%LinkedStanzaSize != 0:
		return nil, fmt.Errorf("%w: linked stanzas of %d bytes, not a multiple of %d", ErrMalformed, len(d.linked), LinkedStanzaSize)
	case n+m == 0:
		return nil, fmt.Errorf("%w: no recipients", ErrMalformed)
	case n+m > MaxRecipients:
		return nil, fmt.Errorf("%w: %d recipients, limit %d", ErrTooLarge, n+m, MaxRecipients)
	}
	d.ctx.Group, d.ctx.Sender, d.ctx.KeyID = [16]byte(group), [32]byte(sender), [KeyIDSize]byte(keyID)
	if err := ascending(d.full, d.fullSize, "recipients"); err != nil {
		return nil, err
	}
	if err := ascending(d.linked, LinkedStanzaSize, "linked recipients"); err != nil {
		return nil, err
	}
	for i := range m {
		st := d.linked[i*LinkedStanzaSize:][:LinkedStanzaSize]
		if step := binary.BigEndian.Uint64(st[32+IDSize+LinkIDSize:]); step >= MaxLinkSteps {
			return nil, fmt.Errorf("%w: recipient %x: link step %d, limit %d", ErrMalformed, st[:4], step, MaxLinkSteps)
		}
		if _, ok := find(d.full, d.fullSize, [32]byte(d.linked[i*LinkedStanzaSize:][:32])); ok {
			return nil, fmt.Errorf("%w: recipient %x has a full and a linked stanza", ErrMalformed, d.linked[i*LinkedStanzaSize:][:4])
		}
	}
	return &d, nil
}

// ascending checks that the owners of the size-byte stanzas are in
// strictly ascending order.
func ascending(stanzas []byte, size int, what string) error {
	for i := 1; i < len(stanzas)/size; i++ {
		if bytes.Compare(stanzas[(i-1)*size:][:32], stanzas[i*size:][:32]) >= 0 {
			return fmt.Errorf("%w: %s not in ascending order at #%d", ErrMalformed, what, i)
		}
	}
	return nil
}

// find returns the stanza of owner among the size-byte stanzas, by binary
// search.
func find(stanzas []byte, size int, owner [32]byte) ([]byte, bool) {
	n := len(stanzas) / size
	i := sort.Search(n, func(i int) bool { return bytes.Compare(stanzas[i*size:][:32], owner[:]) >= 0 })
	if i == n || !bytes.Equal(stanzas[i*size:][:32], owner[:]) {
		return nil, false
	}
	return stanzas[i*size:][:size], true
}

// ReadHeader returns what a key header says without opening it: its context
// and its recipients with their prekey ids. A group's state machine uses it
// to check that a header is sealed to the current members' current
// prekeys.
func ReadHeader(header []byte) (*Header, error) {
	d, err := decodeHeader(header)
	if err != nil {
		return nil, fmt.Errorf("read key header: %w", err)
	}
	n, m := len(d.full)/d.fullSize, len(d.linked)/LinkedStanzaSize
	h := &Header{Context: d.ctx, Version: d.version, Stanzas: make([]Stanza, 0, n+m)}
	for i := range n {
		s := d.full[i*d.fullSize:]
		h.Stanzas = append(h.Stanzas, Stanza{Owner: [32]byte(s[:32]), Prekey: [IDSize]byte(s[32 : 32+IDSize])})
	}
	for i := range m {
		s := d.linked[i*LinkedStanzaSize:]
		h.Stanzas = append(h.Stanzas, Stanza{Owner: [32]byte(s[:32]), Prekey: [IDSize]byte(s[32 : 32+IDSize]), Linked: true})
	}
	slices.SortFunc(h.Stanzas, func(a, b Stanza) int { return bytes.Compare(a.Owner[:], b.Owner[:]) })
	return h, nil
}

// OpenKey opens the stanza of me (an ed25519 key) in a key header with the
// secret of the prekey it is sealed to, looked up in secrets, and returns the
// key. The header must be for want, the context of the message that carries
// it ([ErrWrongContext]); the stanza's HPKE info binds that context, me and
// the prekey id, so a stanza moved from another header does not open
// ([ErrDecrypt]).
//
// In a version 2 header, a full stanza also holds a link root, which OpenKey
// gives to secrets.KeepLink before it returns; a linked stanza opens with
// the root of the link it names, from secrets.Link (its prekey's secret is
// not needed).
//
// It fails with [ErrNotRecipient] if the header has no stanza for me, and
// with [ErrNoSecret] if me no longer holds the prekey's secret (or the
// link's root: [ErrNoLink]): once a member has deleted it, nobody can open
// the headers sealed to that prekey. It costs one HPKE decapsulation
// whatever the size of the group (a linked stanza: a hash per step of its
// link instead), plus decoding the header.
func OpenKey(header []byte, want KeyContext, me [32]byte, secrets Secrets) ([KeySize]byte, error) {
	var key [KeySize]byte
	if secrets == nil {
		return key, errors.New("open key header: nil secrets")
	}
	d, err := decodeHeader(header)
	if err != nil {
		return key, fmt.Errorf("open key header: %w", err)
	}
	if got := d.ctx; got != want {
		return key, fmt.Errorf("open key header: %w: header for epoch %d key %x of %x, message for epoch %d key %x of %x",
			ErrWrongContext, got.Epoch, got.KeyID[:4], got.Sender[:4], want.Epoch, want.KeyID[:4], want.Sender[:4])
	}
	st, ok := find(d.full, d.fullSize, me)
	linked := false
	if !ok {
		if st, ok = find(d.linked, LinkedStanzaSize, me); !ok {
			return key, fmt.Errorf("open key header: %w", ErrNotRecipient)
		}
		linked = true
	}
	if linked {
		if key, err = openLinked(st, &want, me, d.share, secrets); err != nil {
			return key, fmt.Errorf("open key header: %w", err)
		}
		return key, nil
	}
	id := [IDSize]byte(st[32 : 32+IDSize])
	s := secrets.Secret(id)
	if s == nil || s.sk == nil {
		return key, fmt.Errorf("open key header: %w: prekey %x", ErrNoSecret, id[:4])
	}
	if s.Owner != me {
		return key, fmt.Errorf("open key header: %w: prekey %x is not %x's", ErrNoSecret, id[:4], me[:4])
	}
	// Version 2 seals the key and a link root under its own domain.
	domain, ptSize := headerDomain, KeySize
	if d.version == HeaderVersionLinked {
		domain, ptSize = headerDomainV2, KeySize+LinkRootSize
	}
	pt, err := hpke.Open(s.sk, kdf, aead, stanzaInfoDomain(domain, &want, me, id), st[32+IDSize:])
	if err != nil {
		return key, fmt.Errorf("open key header: %w: prekey %x", ErrDecrypt, id[:4])
	}
	defer clear(pt)
	if len(pt) != ptSize {
		return key, fmt.Errorf("open key header: %w: key of %d bytes", ErrMalformed, len(pt))
	}
	copy(key[:], pt)
	if len(pt) > KeySize {
		root := [LinkRootSize]byte(pt[KeySize:])
		secrets.KeepLink(id, root)
		clear(root[:])
	}
	return key, nil
}

// encode is the header's wire form again: decodeHeader then encode gives
// back the same bytes (the encoding is deterministic).
func (d *decodedHeader) encode() ([]byte, error) {
	if d.version == HeaderVersionLinked {
		return canon.Marshal(&headerWireV2{Version: d.version, Group: d.ctx.Group[:], Sender: d.ctx.Sender[:],
			Epoch: d.ctx.Epoch, KeyID: d.ctx.KeyID[:], Full: d.full, Linked: d.linked, Share: d.share})
	}
	return canon.Marshal(&headerWire{Version: d.version, Group: d.ctx.Group[:], Sender: d.ctx.Sender[:],
		Epoch: d.ctx.Epoch, KeyID: d.ctx.KeyID[:], Stanzas: d.full})
}
