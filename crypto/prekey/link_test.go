package prekey

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// linkedPair seals a full header of ctx from sets' owners to ps (starting
// links), opens it as every recipient, and returns the started links by
// owner.
func linkedPair(t *testing.T, ctx KeyContext, ps []*Prekey, sets []*SecretSet, owners [][32]byte) map[[32]byte]*SendLink {
	t.Helper()
	rs := make([]Recipient, len(ps))
	for i, p := range ps {
		rs[i] = Recipient{Prekey: p}
	}
	h, started, err := SealKeyLinked(ctx, &[KeySize]byte{9}, rs, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(started) != len(ps) {
		t.Fatalf("%d links started for %d full stanzas", len(started), len(ps))
	}
	for i := range ps {
		if _, err := OpenKey(h, ctx, owners[i], sets[i]); err != nil {
			t.Fatalf("recipient %d: %v", i, err)
		}
		if sets[i].LinkCount() != 1 {
			t.Fatalf("recipient %d keeps %d links after opening a full stanza", i, sets[i].LinkCount())
		}
	}
	out := map[[32]byte]*SendLink{}
	for _, l := range started {
		out[l.Owner] = l
	}
	return out
}

// overLink seals key for ctx in a header with one stanza, to p over the
// link l, an hour after t0.
func overLink(t *testing.T, ctx KeyContext, key *[KeySize]byte, p *Prekey, l *SendLink) []byte {
	t.Helper()
	h, _, err := SealKeyLinked(ctx, key, []Recipient{{Prekey: p, Link: l, Linked: true}}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestKeyLinkRoundTrip: a full stanza teaches the recipient the link, and
// later headers reach it over the link, step after step, at 120 bytes a
// recipient.
func TestKeyLinkRoundTrip(t *testing.T) {
	ps, sets, owners := group3(t)
	links := linkedPair(t, ctxOf(member(t, 1), 1), ps, sets, owners)
	for step := range 3 {
		ctx := ctxOf(member(t, 1), uint64(2+step))
		key := [KeySize]byte{byte(step), 7}
		rs := []Recipient{{Prekey: ps[0]}, {Prekey: ps[1], Link: links[owners[1]], Linked: true}, {Prekey: ps[2], Link: links[owners[2]], Linked: true}}
		h, started, err := SealKeyLinked(ctx, &key, rs, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(started) != 1 || started[0].Owner != owners[0] {
			t.Fatalf("started %d links, want one to the full stanza's recipient", len(started))
		}
		info, err := ReadHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if info.Version != HeaderVersionLinked || len(info.Stanzas) != 3 {
			t.Fatalf("header read as %+v", info)
		}
		for _, st := range info.Stanzas {
			if st.Linked != (st.Owner != owners[0]) {
				t.Fatalf("stanza of %x read as linked %v", st.Owner[:4], st.Linked)
			}
		}
		if want := 75 + FullStanzaSize + 2*LinkedStanzaSize + 34; len(h) > want+20 {
			t.Fatalf("header of %d bytes, want about %d", len(h), want)
		}
		for i := range 3 {
			got, err := OpenKey(h, ctx, owners[i], sets[i])
			if err != nil || got != key {
				t.Fatalf("step %d, recipient %d: %v", step, i, err)
			}
		}
		if links[owners[1]].Steps() != uint64(step+1) {
			t.Fatalf("the link is at step %d after %d uses", links[owners[1]].Steps(), step+1)
		}
	}
	if LinkedStanzaSize != 120 || FullStanzaSize != 1248 {
		t.Fatalf("stanza sizes %d and %d, documented as 120 and 1248", LinkedStanzaSize, FullStanzaSize)
	}
}

// TestKeyLinkRejects: a linked stanza opens only in its context, at its
// step, for its recipient and with its link's root; one far along its
// chain is refused before any hashing.
func TestKeyLinkRejects(t *testing.T) {
	ps, sets, owners := group3(t)
	links := linkedPair(t, ctxOf(member(t, 1), 1), ps, sets, owners)
	ctx := ctxOf(member(t, 1), 2)
	h := overLink(t, ctx, &[KeySize]byte{5}, ps[1], links[owners[1]])
	mutate := func(f func(st []byte)) []byte {
		d, err := decodeHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f(d.linked)
		b, err := d.encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := ctx
	other.Epoch = 3
	moved, err := decodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	moved.ctx = other
	movedH, err := moved.encode()
	if err != nil {
		t.Fatal(err)
	}
	otherShare, err := decodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	h2 := overLink(t, other, &[KeySize]byte{5}, ps[1], links[owners[1]])
	d2, _ := decodeHeader(h2)
	otherShare.share = d2.share
	swappedShare, err := otherShare.encode()
	if err != nil {
		t.Fatal(err)
	}
	unknown := NewSecretSet()
	for _, c := range []struct {
		name string
		h    []byte
		ctx  KeyContext
		set  Secrets
		want error
	}{
		{"another context", h, other, sets[1], ErrWrongContext},
		{"moved to a header of another context", movedH, other, sets[1], ErrDecrypt},
		{"another header's X25519 share", swappedShare, ctx, sets[1], ErrDecrypt},
		{"another step", mutate(func(st []byte) { binary.BigEndian.PutUint64(st[32+IDSize+LinkIDSize:], 1) }), ctx, sets[1], ErrDecrypt},
		{"a step past the limit", mutate(func(st []byte) { binary.BigEndian.PutUint64(st[32+IDSize+LinkIDSize:], MaxLinkSteps) }), ctx, sets[1], ErrMalformed},
		{"a damaged stanza", mutate(func(st []byte) { st[len(st)-1] ^= 1 }), ctx, sets[1], ErrDecrypt},
		{"another link id", mutate(func(st []byte) { st[32+IDSize] ^= 1 }), ctx, sets[1], ErrNoLink},
		{"a member without the link", h, ctx, unknown, ErrNoSecret},
	} {
		if _, err := OpenKey(c.h, c.ctx, owners[1], c.set); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A step past the bound is malformed for anyone who reads the header,
	// so the state machine refuses it rather than commit what nobody opens.
	if _, err := ReadHeader(mutate(func(st []byte) { binary.BigEndian.PutUint64(st[32+IDSize+LinkIDSize:], MaxLinkSteps) })); !errors.Is(err, ErrMalformed) {
		t.Errorf("ReadHeader of a step past the limit: %v", err)
	}
	// The same stanza claimed for another owner (the owner is in the key's
	// info): it does not open with that owner's link either.
	hs := mutate(func(st []byte) { copy(st, owners[2][:]) })
	sets[2].KeepLink(ps[1].ID, [LinkRootSize]byte{})
	if _, err := OpenKey(hs, ctx, owners[2], sets[2]); err == nil {
		t.Error("bob's linked stanza opened as carol's")
	}
	// A full and a linked stanza for one owner is malformed.
	both, _, err := SealKeyLinked(ctx, &[KeySize]byte{5}, []Recipient{{Prekey: ps[0]}}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := decodeHeader(both)
	lh, _ := decodeHeader(h)
	st := bytes.Clone(lh.linked)
	copy(st, owners[0][:])
	d.linked = st
	b, _ := d.encode()
	if _, err := ReadHeader(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("a full and a linked stanza for one owner: %v", err)
	}
	// A used link's root is never sealed again.
	if _, _, err := SealKeyLinked(ctx, &[KeySize]byte{5}, []Recipient{{Prekey: ps[1], Link: links[owners[1]]}}, t0.Add(time.Hour)); err == nil {
		t.Error("the root of a link in use sealed again in a full stanza")
	}
}

// TestKeyLinkDeletedWithSecret: deleting a prekey's secret deletes the
// links to it, and its linked stanzas then open for nobody.
func TestKeyLinkDeletedWithSecret(t *testing.T) {
	ps, sets, owners := group3(t)
	links := linkedPair(t, ctxOf(member(t, 1), 1), ps, sets, owners)
	ctx := ctxOf(member(t, 1), 2)
	h := overLink(t, ctx, &[KeySize]byte{5}, ps[1], links[owners[1]])
	if _, err := OpenKey(h, ctx, owners[1], sets[1]); err != nil {
		t.Fatal(err)
	}
	sets[1].Expire(ps[1].Expires, 0)
	if _, err := OpenKey(h, ctx, owners[1], sets[1]); !errors.Is(err, ErrNoLink) {
		t.Fatalf("after the secret's deletion: %v", err)
	}
	if n := sets[1].LinkCount(); n != 0 {
		t.Fatalf("%d links kept after their prekey's secret was deleted", n)
	}
}

// TestX25519OfPrekey: the X25519 key a secret uses for linked stanzas is
// the X25519 half of its prekey, as X-Wing expands it from the seed.
func TestX25519OfPrekey(t *testing.T) {
	ps, sets, _ := group3(t)
	for i, p := range ps {
		pub, err := x25519Public(p)
		if err != nil {
			t.Fatal(err)
		}
		if !sets[i].Secret(p.ID).x.PublicKey().Equal(pub) {
			t.Fatalf("prekey %d: the X25519 key derived from the seed is not the prekey's", i)
		}
	}
}

// TestLinkSnapshotOpensNoLaterKey: whoever copied a sender's link (its
// chain key) at some moment, and even the link's root, cannot open the
// linked stanzas of its later headers without the recipient's prekey
// secret: each header mixes a fresh X25519 share into their keys. The
// attack computes the stanza key from the copied chain as the recipient
// would, without the Diffie-Hellman value.
func TestLinkSnapshotOpensNoLaterKey(t *testing.T) {
	ps, sets, owners := group3(t)
	links := linkedPair(t, ctxOf(member(t, 1), 1), ps, sets, owners)
	l := links[owners[1]]
	snapshot := *l // the sender's memory, copied
	ctx := ctxOf(member(t, 1), 2)
	key := [KeySize]byte{0x77}
	h := overLink(t, ctx, &key, ps[1], l)
	d, err := decodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	st := d.linked[:LinkedStanzaSize]
	// The recipient opens it.
	if got, err := OpenKey(h, ctx, owners[1], sets[1]); err != nil || got != key {
		t.Fatalf("the recipient: %v", err)
	}
	// The attacker, with the chain key of that step and no secret.
	for _, dh := range [][]byte{nil, make([]byte, 32), d.share} {
		k := stanzaKey(&snapshot.chain, linkInfo(&ctx, owners[1], ps[1].ID, snapshot.ID, snapshot.next), d.share, dh)
		a, err := chacha20poly1305.New(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Open(nil, zeroNonce[:], st[32+IDSize+LinkIDSize+8:], nil); err == nil {
			t.Fatalf("the stanza opens from a copy of the sender's chain key (Diffie-Hellman value %x)", dh)
		}
	}
	// And with the root but not the prekey secret: refused.
	thief := NewSecretSet()
	r, ok := sets[1].Link(ps[1].ID, l.ID)
	if !ok {
		t.Fatal("the recipient holds no root")
	}
	thief.KeepLink(ps[1].ID, r)
	if _, err := OpenKey(h, ctx, owners[1], thief); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("with the root and no prekey secret: %v", err)
	}
}
