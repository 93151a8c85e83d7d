package prekey

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/internal/canon"
)

// group3 is three members with a prekey each, and their secrets.
func group3(t *testing.T) (ps []*Prekey, sets []*SecretSet, owners [][32]byte) {
	t.Helper()
	for i := byte(1); i <= 3; i++ {
		m := member(t, i)
		p, s := prekeyOf(t, m, 0xa0+i)
		ss := NewSecretSet()
		ss.Add(s)
		ps, sets, owners = append(ps, p), append(sets, ss), append(owners, m.Public().Sign)
	}
	return ps, sets, owners
}

func TestSealOpenKey(t *testing.T) {
	ps, sets, owners := group3(t)
	ctx := ctxOf(member(t, 1), 7)
	key := [KeySize]byte{1, 2, 3}
	// The recipients in any order give the same stanza order.
	h, err := SealKey(ctx, &key, []*Prekey{ps[2], ps[0], ps[1]}, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if info.Context != ctx || len(info.Stanzas) != 3 {
		t.Fatalf("read header: %+v", info)
	}
	for i := 1; i < 3; i++ {
		if bytes.Compare(info.Stanzas[i-1].Owner[:], info.Stanzas[i].Owner[:]) >= 0 {
			t.Fatal("stanzas not in ascending order of owner")
		}
	}
	for i := range ps {
		got, err := OpenKey(h, ctx, owners[i], sets[i])
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if got != key {
			t.Fatalf("member %d opened %x, want %x", i, got[:4], key[:4])
		}
	}
	// Size: one stanza per recipient and a small fixed part.
	if n := len(h) - 3*StanzaSize; n < 0 || n > 100 {
		t.Fatalf("header of %d bytes for 3 stanzas of %d", len(h), StanzaSize)
	}
}

func TestOpenKeyRejects(t *testing.T) {
	ps, sets, owners := group3(t)
	alice := member(t, 1)
	ctx := ctxOf(alice, 7)
	key := [KeySize]byte{9}
	h, err := SealKey(ctx, &key, ps[:2], t0)
	if err != nil {
		t.Fatal(err)
	}
	other := ctx
	other.Epoch = 8

	// Carol (owners[2]) is not a recipient, whatever secrets she holds.
	if _, err := OpenKey(h, ctx, owners[2], sets[2]); !errors.Is(err, ErrNotRecipient) {
		t.Errorf("outsider: %v", err)
	}
	// Bob claiming Carol's secrets: a prekey of someone else does not serve.
	both := NewSecretSet()
	both.Add(sets[2].Secret(ps[2].ID))
	if _, err := OpenKey(h, ctx, owners[1], both); !errors.Is(err, ErrNoSecret) {
		t.Errorf("recipient without its secret: %v", err)
	}
	// The message names another context: refused before any decryption.
	for _, c := range []func(*KeyContext){
		func(c *KeyContext) { c.Epoch++ },
		func(c *KeyContext) { c.Group[15] ^= 1 },
		func(c *KeyContext) { c.Sender = owners[1] },
		func(c *KeyContext) { c.KeyID[0] ^= 1 },
	} {
		want := ctx
		c(&want)
		if _, err := OpenKey(h, want, owners[1], sets[1]); !errors.Is(err, ErrWrongContext) {
			t.Errorf("context %+v: %v", want, err)
		}
	}

	// A stanza moved into a header of another context does not open: the
	// context is in its HPKE info. Build the other header honestly, then
	// splice in Bob's stanza from h.
	h2, err := SealKey(other, &key, ps[:2], t0)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := decodeWire1(h)
	w2, _ := decodeWire1(h2)
	copy(w2.Stanzas[StanzaSize:2*StanzaSize], w.Stanzas[StanzaSize:2*StanzaSize])
	spliced, err := canon.Marshal(w2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKey(spliced, other, owners[1], sets[1]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("stanza moved to epoch 8: %v", err)
	}
	// The same stanza under another recipient's name (both stanzas swapped
	// between owners, order kept by swapping names only): Alice's stanza
	// claimed for Bob does not open with Bob's secret.
	w3, _ := decodeWire1(h)
	a, b := w3.Stanzas[:StanzaSize], w3.Stanzas[StanzaSize:2*StanzaSize]
	tmp := bytes.Clone(a[32:])
	copy(a[32:], b[32:])
	copy(b[32:], tmp)
	swapped, _ := canon.Marshal(w3)
	if _, err := OpenKey(swapped, ctx, owners[1], sets[1]); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Alice's stanza under Bob's name: %v", err)
	}
	// Same, but with the prekey ids kept in place: the HPKE ciphertext
	// alone moved.
	w4, _ := decodeWire1(h)
	a, b = w4.Stanzas[:StanzaSize], w4.Stanzas[StanzaSize:2*StanzaSize]
	tmp = bytes.Clone(a[32+IDSize:])
	copy(a[32+IDSize:], b[32+IDSize:])
	copy(b[32+IDSize:], tmp)
	swapped, _ = canon.Marshal(w4)
	if _, err := OpenKey(swapped, ctx, owners[1], sets[1]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Alice's ciphertext in Bob's stanza: %v", err)
	}
	// A damaged ciphertext.
	w5, _ := decodeWire1(h)
	w5.Stanzas[2*StanzaSize-1] ^= 1
	damaged, _ := canon.Marshal(w5)
	if _, err := OpenKey(damaged, ctx, owners[1], sets[1]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("damaged stanza: %v", err)
	}
	if _, err := OpenKey(h, ctx, owners[1], nil); err == nil {
		t.Error("nil secrets accepted")
	}
}

// TestDeletedSecret is forward secrecy at the prekey level: once a member
// deletes a prekey's secret, the headers sealed to that prekey open for
// nobody, and a copy of the member's secrets taken afterwards holds nothing
// that opens them.
func TestDeletedSecret(t *testing.T) {
	ps, sets, owners := group3(t)
	ctx := ctxOf(member(t, 1), 3)
	key := [KeySize]byte{0x5e, 0xc7}
	h, err := SealKey(ctx, &key, ps, t0)
	if err != nil {
		t.Fatal(err)
	}
	seed := sets[1].Secret(ps[1].ID).Seed()
	if _, err := OpenKey(h, ctx, owners[1], sets[1]); err != nil {
		t.Fatalf("before deletion: %v", err)
	}
	if !sets[1].Delete(ps[1].ID) {
		t.Fatal("delete reports the secret missing")
	}
	if sets[1].Delete(ps[1].ID) {
		t.Fatal("a second delete reports a secret")
	}
	if _, err := OpenKey(h, ctx, owners[1], sets[1]); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("after deletion: %v", err)
	}
	// What is left to steal: the seeds of every secret still held.
	for _, id := range sets[1].IDs() {
		if s := sets[1].Secret(id).Seed(); s == seed {
			t.Fatal("the deleted seed is still in the set")
		}
	}
	// The other members are unaffected.
	if _, err := OpenKey(h, ctx, owners[2], sets[2]); err != nil {
		t.Fatalf("another member: %v", err)
	}
}

func TestSecretSetExpire(t *testing.T) {
	m := member(t, 1)
	ss := NewSecretSet()
	var ids [][IDSize]byte
	for i := range 3 {
		p, s, err := FromSeed(m, [SecretSize]byte{byte(i)}, t0.Add(time.Duration(i)*7*24*time.Hour), DefaultLifetime)
		if err != nil {
			t.Fatal(err)
		}
		ss.Add(s)
		ids = append(ids, p.ID)
	}
	grace := 24 * time.Hour
	// The first expires at t0+14d; with a day's grace it goes at t0+15d.
	if gone := ss.Expire(t0.Add(15*24*time.Hour-time.Nanosecond), grace); len(gone) != 0 {
		t.Fatalf("expired early: %x", gone)
	}
	gone := ss.Expire(t0.Add(15*24*time.Hour), grace)
	if len(gone) != 1 || gone[0] != ids[0] || ss.Secret(ids[0]) != nil {
		t.Fatalf("expire at t0+15d deleted %x, want %x", gone, ids[0])
	}
	if ss.Secret(ids[1]) == nil || ss.Secret(ids[2]) == nil {
		t.Fatal("later secrets deleted")
	}
}

func TestSealKeyRejects(t *testing.T) {
	ps, _, _ := group3(t)
	alice := member(t, 1)
	ctx := ctxOf(alice, 1)
	key := [KeySize]byte{}
	again, _ := prekeyOf(t, alice, 0x77) // Alice's second prekey
	for _, c := range []struct {
		name string
		rs   []*Prekey
		at   time.Time
	}{
		{"no recipients", nil, t0},
		{"expired prekey", ps, t0.Add(DefaultLifetime)},
		{"prekey not yet valid", ps, t0.Add(-time.Second)},
		{"two prekeys of one owner", []*Prekey{ps[0], ps[1], again}, t0},
		{"nil prekey", []*Prekey{ps[0], nil}, t0},
		{"zero prekey", []*Prekey{ps[0], {}}, t0},
		{"too many", make([]*Prekey, MaxRecipients+1), t0},
	} {
		if _, err := SealKey(ctx, &key, c.rs, c.at); err == nil {
			t.Errorf("%s: sealed", c.name)
		}
	}
	if _, err := SealKey(ctx, nil, ps, t0); err == nil {
		t.Error("nil key sealed")
	}
}

func TestReadHeaderRejects(t *testing.T) {
	ps, _, _ := group3(t)
	ctx := ctxOf(member(t, 1), 1)
	h, err := SealKey(ctx, &[KeySize]byte{}, ps, t0)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(w *headerWire)) []byte {
		w, err := decodeWire1(h)
		if err != nil {
			t.Fatal(err)
		}
		f(w)
		b, err := canon.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"oversized", make([]byte, MaxHeader+1), ErrTooLarge},
		{"trailing byte", append(bytes.Clone(h), 0), ErrMalformed},
		{"version 0", mutate(func(w *headerWire) { w.Version = 0 }), ErrMalformed},
		{"short group", mutate(func(w *headerWire) { w.Group = w.Group[:15] }), ErrMalformed},
		{"short sender", mutate(func(w *headerWire) { w.Sender = w.Sender[:31] }), ErrMalformed},
		{"short key id", mutate(func(w *headerWire) { w.KeyID = nil }), ErrMalformed},
		{"no stanzas", mutate(func(w *headerWire) { w.Stanzas = nil }), ErrMalformed},
		{"partial stanza", mutate(func(w *headerWire) { w.Stanzas = w.Stanzas[:len(w.Stanzas)-1] }), ErrMalformed},
		{"duplicate owner", mutate(func(w *headerWire) { copy(w.Stanzas[StanzaSize:], w.Stanzas[:32]) }), ErrMalformed},
		{"descending owners", mutate(func(w *headerWire) {
			a := bytes.Clone(w.Stanzas[:StanzaSize])
			copy(w.Stanzas, w.Stanzas[StanzaSize:2*StanzaSize])
			copy(w.Stanzas[StanzaSize:], a)
		}), ErrMalformed},
	} {
		if _, err := ReadHeader(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}
