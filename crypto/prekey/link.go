package prekey

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/internal/canon"
)

// This file is the key link: a secret one sender shares with one
// recipient's prekey, so that a key header carries that recipient's copy of
// a new sender key in 120 bytes instead of a 1,248-byte X-Wing stanza.
//
// A header of version 2 ([SealKeyLinked]) has two kinds of stanza. A full
// stanza is an HPKE seal to the recipient's prekey, as in version 1, of the
// sender key followed by a random link root. A linked stanza names a link
// (by an id derived from its root) and a step, and seals the sender key
// with a key derived from the link's hash chain at that step and from an
// X25519 exchange between the header's fresh share and the recipient's
// prekey, so that a copy of the sender's chain keys opens none of its
// later headers. The recipient
// keeps each root it opened beside its prekey secret, and deletes it with
// that secret; the sender keeps only the chain key of the next step, in
// memory, and overwrites it at each use. The post-quantum key agreement is
// paid once per sender, recipient prekey and link, not once per sender key:
// the scheme of Apple's PQ3, which refreshes its post-quantum secret
// periodically rather than in every message. docs/PROTOCOL.md, "Key
// links", says what it changes for forward secrecy.

// Sizes and limits of links.
const (
	// HeaderVersionLinked is the version of a key header with links.
	HeaderVersionLinked = 2
	// LinkIDSize is the length of a link id.
	LinkIDSize = 16
	// LinkRootSize is the length of a link root.
	LinkRootSize = 32
	// FullStanzaSize is the length of a full stanza of a version 2 header:
	// the recipient's ed25519 key, its prekey id, the encapsulation, and
	// the sealed sender key and link root with their tag.
	FullStanzaSize = 32 + IDSize + EncSize + KeySize + LinkRootSize + 16
	// LinkedStanzaSize is the length of a linked stanza: the recipient's
	// ed25519 key, its prekey id, the link id, the step (uint64, big
	// endian) and the sealed sender key with its tag.
	LinkedStanzaSize = 32 + IDSize + LinkIDSize + 8 + KeySize + 16
	// MaxLinkSteps bounds the step of a linked stanza: a reader derives
	// the chain key of step n with n hashes, so a header cannot make it
	// hash more than this. A sender starts a new link before.
	MaxLinkSteps = 4096
)

// Domain strings of links.
const (
	headerDomainV2  = "DeMeS key header v2\x00"
	linkIDDomain    = "DeMeS key link id v1\x00"
	linkChainLabel  = "DeMeS key link chain v1"
	linkStanzaLabel = "DeMeS key link stanza v1\x00"
)

// ErrNoLink: a linked stanza names a link this member does not hold (it
// never opened the full stanza that started it, or deleted it with its
// prekey secret). [ErrNoSecret] wraps it, since both mean the same to a
// reader: the key is not readable here.
var ErrNoLink = fmt.Errorf("%w: link not held", ErrNoSecret)

// LinkID returns the id of the link with root root.
func LinkID(root *[LinkRootSize]byte) [LinkIDSize]byte {
	h := sha256.New()
	h.Write([]byte(linkIDDomain))
	h.Write(root[:])
	var id [LinkIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// stepChain returns the chain key after c: HMAC-SHA256(c, label).
func stepChain(c *[32]byte) [32]byte {
	m := hmac.New(sha256.New, c[:])
	m.Write([]byte(linkChainLabel))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// linkInfo is what a linked stanza's key binds: the header's context, the
// recipient, its prekey id, the link id and the step.
func linkInfo(ctx *KeyContext, owner [32]byte, prekey [IDSize]byte, link [LinkIDSize]byte, step uint64) []byte {
	b := stanzaInfoDomain(headerDomainV2, ctx, owner, prekey)
	b = append(b, link[:]...)
	return binary.BigEndian.AppendUint64(b, step)
}

// stanzaKey is the key of a linked stanza at chain key c:
// HMAC-SHA256(c, label || info || share || dh), where share is the header's
// fresh X25519 share and dh its Diffie-Hellman with the recipient's prekey.
func stanzaKey(c *[32]byte, info, share, dh []byte) []byte {
	m := hmac.New(sha256.New, c[:])
	m.Write([]byte(linkStanzaLabel))
	m.Write(info)
	m.Write(share)
	m.Write(dh)
	return m.Sum(nil)
}

// x25519Public returns the X25519 half of prekey p's public key.
func x25519Public(p *Prekey) (*ecdh.PublicKey, error) {
	return ecdh.X25519().NewPublicKey(p.public[mlkem.EncapsulationKeySize768:])
}

// zeroNonce is the nonce of every linked stanza: each stanza key seals once
// (it binds the step, which a sender never uses twice).
var zeroNonce [chacha20poly1305.NonceSize]byte

// SendLink is the sender's end of a link to one recipient prekey: the
// chain key of the next step. It is kept in memory only, and is not safe
// for concurrent use.
type SendLink struct {
	// Owner and Prekey name the recipient and the prekey the link is to.
	Owner  [32]byte
	Prekey [IDSize]byte
	// ID is the link's id.
	ID [LinkIDSize]byte
	// Born is when the link was started.
	Born time.Time

	next  uint64   // the step of the next linked stanza
	chain [32]byte // the chain key at next; the root while next is 0
}

// newSendLink starts a link to p with a random root.
func newSendLink(p *Prekey, now time.Time) *SendLink {
	l := &SendLink{Owner: p.Owner, Prekey: p.ID, Born: now}
	rand.Read(l.chain[:])
	l.ID = LinkID(&l.chain)
	return l
}

// Steps returns how many linked stanzas the link sealed so far.
func (l *SendLink) Steps() uint64 { return l.next }

// Erase overwrites the link's chain key; the link seals nothing after.
func (l *SendLink) Erase() {
	clear(l.chain[:])
	l.next = MaxLinkSteps
}

// Recipient is one prekey a version 2 key header is sealed to, and how.
type Recipient struct {
	Prekey *Prekey
	// Link is the link to Prekey to use, or nil to start a new one (a full
	// stanza, whose link [SealKeyLinked] returns).
	Link *SendLink
	// Linked seals a linked stanza over Link, at its next step. Without
	// it, a non-nil Link is carried in a full stanza: its root sealed
	// again, which a link not yet used (Steps 0) allows, so that a sender
	// that cannot tell which of its headers a recipient opened first
	// sends the same root in each.
	Linked bool
}

// sealLinked appends ctx's linked stanza of key for recipient r over l,
// with e the header's ephemeral X25519 key, and steps l.
func sealLinked(dst []byte, ctx *KeyContext, key *[KeySize]byte, r *Prekey, l *SendLink, e *ecdh.PrivateKey) ([]byte, error) {
	switch {
	case l.Owner != r.Owner || l.Prekey != r.ID:
		return nil, fmt.Errorf("link %x is to prekey %x of %x, not to %x of %x", l.ID[:4], l.Prekey[:4], l.Owner[:4], r.ID[:4], r.Owner[:4])
	case l.next >= MaxLinkSteps:
		return nil, fmt.Errorf("link %x: all its %d steps are used", l.ID[:4], MaxLinkSteps)
	}
	pub, err := x25519Public(r)
	if err != nil {
		return nil, err
	}
	dh, err := e.ECDH(pub)
	if err != nil {
		return nil, err
	}
	defer clear(dh)
	k := stanzaKey(&l.chain, linkInfo(ctx, r.Owner, r.ID, l.ID, l.next), e.PublicKey().Bytes(), dh)
	defer clear(k)
	a, err := chacha20poly1305.New(k)
	if err != nil {
		return nil, err
	}
	dst = append(dst, r.Owner[:]...)
	dst = append(dst, r.ID[:]...)
	dst = append(dst, l.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, l.next)
	dst = a.Seal(dst, zeroNonce[:], key[:], nil)
	l.chain = stepChain(&l.chain)
	l.next++
	return dst, nil
}

// openLinked opens me's linked stanza st of a header for ctx whose X25519
// share is share: with the root of its link and the secret of its prekey,
// both from secrets. The header's decoding bounded its step.
func openLinked(st []byte, ctx *KeyContext, me [32]byte, share []byte, secrets Secrets) ([KeySize]byte, error) {
	var key [KeySize]byte
	id := [IDSize]byte(st[32 : 32+IDSize])
	link := [LinkIDSize]byte(st[32+IDSize:][:LinkIDSize])
	step := binary.BigEndian.Uint64(st[32+IDSize+LinkIDSize:])
	// The link's root, and the prekey's secret for the share: a member
	// deletes its roots with the secret (SecretSet.Delete) all the same.
	root, ok := secrets.Link(id, link)
	if !ok || LinkID(&root) != link {
		return key, fmt.Errorf("%w: link %x to prekey %x", ErrNoLink, link[:4], id[:4])
	}
	defer clear(root[:])
	s := secrets.Secret(id)
	if s == nil || s.x == nil || s.Owner != me {
		return key, fmt.Errorf("%w: prekey %x of link %x", ErrNoSecret, id[:4], link[:4])
	}
	pub, err := ecdh.X25519().NewPublicKey(share)
	if err != nil {
		return key, fmt.Errorf("%w: X25519 share: %v", ErrMalformed, err)
	}
	dh, err := s.x.ECDH(pub)
	if err != nil {
		return key, fmt.Errorf("%w: X25519 share: %v", ErrMalformed, err)
	}
	defer clear(dh)
	c := root
	for range step {
		c = stepChain(&c)
	}
	k := stanzaKey(&c, linkInfo(ctx, me, id, link, step), share, dh)
	clear(c[:])
	defer clear(k)
	a, err := chacha20poly1305.New(k)
	if err != nil {
		return key, err
	}
	pt, err := a.Open(nil, zeroNonce[:], st[32+IDSize+LinkIDSize+8:], nil)
	if err != nil {
		return key, fmt.Errorf("%w: link %x step %d", ErrDecrypt, link[:4], step)
	}
	copy(key[:], pt)
	clear(pt)
	return key, nil
}

// Links is what a recipient keeps of its links: the roots of the links to
// its prekeys, each deleted with its prekey's secret. [*SecretSet]
// implements it.
type Links interface {
	// Link returns the root of link id to the prekey, if held.
	Link(prekey [IDSize]byte, id [LinkIDSize]byte) ([LinkRootSize]byte, bool)
	// KeepLink keeps root, the root of a link to the prekey, for as long
	// as the prekey's secret is kept. It is called when a full stanza
	// opens, before [OpenKey] returns the key.
	KeepLink(prekey [IDSize]byte, root [LinkRootSize]byte)
}

// SealKeyLinked seals key for ctx to each recipient, as [SealKey] does, in
// a key header of version 2: a linked stanza to each recipient whose
// Recipient says so, a full stanza to the others. It returns the header and
// the links it started (one per full stanza without a Link), which the
// caller keeps to use once it knows the recipient holds them: a recipient
// learns a link's root only by opening a full stanza that carries it. Each
// linked stanza steps its link. The rules on the prekeys are SealKey's.
func SealKeyLinked(ctx KeyContext, key *[KeySize]byte, recipients []Recipient, now time.Time) ([]byte, []*SendLink, error) {
	if key == nil {
		return nil, nil, errors.New("seal key header: nil key")
	}
	switch {
	case len(recipients) == 0:
		return nil, nil, errors.New("seal key header: no recipients")
	case len(recipients) > MaxRecipients:
		return nil, nil, fmt.Errorf("seal key header: %w: %d recipients, limit %d", ErrTooLarge, len(recipients), MaxRecipients)
	}
	for i, r := range recipients {
		if r.Prekey == nil || len(r.Prekey.public) != PublicKeySize {
			return nil, nil, fmt.Errorf("seal key header: recipient #%d: not a decoded prekey", i)
		}
		if r.Linked && r.Link == nil {
			return nil, nil, fmt.Errorf("seal key header: recipient #%d: linked without a link", i)
		}
	}
	rs := slices.Clone(recipients)
	slices.SortFunc(rs, func(a, b Recipient) int { return bytes.Compare(a.Prekey.Owner[:], b.Prekey.Owner[:]) })
	var (
		full, linked, share []byte
		started             []*SendLink
		e                   *ecdh.PrivateKey
	)
	// A fresh X25519 share for the header, mixed into every linked
	// stanza's key: a copy of the sender's chain keys alone opens none of
	// them, so a snapshot of its memory opens none of its later keys.
	if slices.ContainsFunc(recipients, func(r Recipient) bool { return r.Linked }) {
		var err error
		if e, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			return nil, nil, fmt.Errorf("seal key header: %v", err)
		}
		share = e.PublicKey().Bytes()
	}
	fail := func(err error) ([]byte, []*SendLink, error) {
		for _, l := range started {
			l.Erase()
		}
		return nil, nil, fmt.Errorf("seal key header: %w", err)
	}
	for i, r := range rs {
		p := r.Prekey
		if i > 0 && rs[i-1].Prekey.Owner == p.Owner {
			return fail(fmt.Errorf("two prekeys of %x", p.Owner[:4]))
		}
		if err := p.ValidAt(now); err != nil {
			return fail(fmt.Errorf("recipient %x: %w", p.Owner[:4], err))
		}
		if r.Linked {
			var err error
			if linked, err = sealLinked(linked, &ctx, key, p, r.Link, e); err != nil {
				return fail(fmt.Errorf("recipient %x: %w", p.Owner[:4], err))
			}
			continue
		}
		l := r.Link
		switch {
		case l == nil:
			l = newSendLink(p, now)
			started = append(started, l)
		case l.Owner != p.Owner || l.Prekey != p.ID:
			return fail(fmt.Errorf("recipient %x: link %x is to another prekey", p.Owner[:4], l.ID[:4]))
		case l.next != 0:
			return fail(fmt.Errorf("recipient %x: link %x is in use: its root cannot be sent again", p.Owner[:4], l.ID[:4]))
		}
		pk, err := kem.NewPublicKey(p.public)
		if err != nil {
			return fail(fmt.Errorf("recipient %x: %v", p.Owner[:4], err))
		}
		var pt [KeySize + LinkRootSize]byte
		copy(pt[:], key[:])
		copy(pt[KeySize:], l.chain[:])
		ct, err := hpke.Seal(pk, kdf, aead, stanzaInfoDomain(headerDomainV2, &ctx, p.Owner, p.ID), pt[:])
		clear(pt[:])
		if err != nil {
			return fail(fmt.Errorf("recipient %x: %v", p.Owner[:4], err))
		}
		full = append(full, p.Owner[:]...)
		full = append(full, p.ID[:]...)
		full = append(full, ct...)
	}
	hdr, err := canon.Marshal(&headerWireV2{
		Version: HeaderVersionLinked,
		Group:   ctx.Group[:],
		Sender:  ctx.Sender[:],
		Epoch:   ctx.Epoch,
		KeyID:   ctx.KeyID[:],
		Full:    full,
		Linked:  linked,
		Share:   share,
	})
	if err != nil {
		return fail(err)
	}
	return hdr, started, nil
}
