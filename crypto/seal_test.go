package crypto

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/identity"
)

func testMessage() *Message {
	return &Message{
		Group: testGroup,
		ID:    [16]byte{0xaa, 1, 2, 3},
		Head:  [32]byte{0xbb, 4, 5, 6},
		Time:  1700000000123456789,
		Body:  []byte("hello, group ✓"),
	}
}

// testKey returns a fixed sender key of id's for the test group.
func testKey(id *identity.Identity, epoch uint64) *SenderKey {
	k := &SenderKey{Group: testGroup, Sender: id.Public().Sign, Epoch: epoch}
	for i := range k.ID {
		k.ID[i] = byte(0x40 + i)
	}
	for i := range k.Key {
		k.Key[i] = byte(0x80 + i)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	alice, bob, carol, dave := testID(t, 1), testID(t, 2), testID(t, 3), testID(t, 4)
	tests := []struct {
		name       string
		recipients []*identity.Identity // of the key header; nil for none
		outsiders  []*identity.Identity
	}{
		{"no header", nil, nil},
		{"to self only", []*identity.Identity{alice}, []*identity.Identity{bob}},
		{"to one other", []*identity.Identity{bob}, []*identity.Identity{alice, carol}},
		{"group of four", []*identity.Identity{dave, alice, carol, bob}, nil},
		{"duplicates", []*identity.Identity{bob, carol, bob, carol, bob}, []*identity.Identity{alice, dave}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testMessage()
			key := NewSenderKey(testGroup, alice.Public().Sign, 7)
			var header []identity.PublicID
			if tc.recipients != nil {
				header = publics(tc.recipients...)
			}
			sealed, err := SealMessage(alice, m, key, header)
			if err != nil {
				t.Fatal(err)
			}
			if m.Author != alice.Public() {
				t.Fatal("SealMessage did not set the author")
			}
			info, err := ReadSealed(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if info.Epoch != 7 || info.KeyID != key.ID || info.HasHeader() != (tc.recipients != nil) {
				t.Fatalf("ReadSealed = %+v, want epoch 7, key %x, header %v", info, key.ID[:4], tc.recipients != nil)
			}
			// The list is the recipients, sorted and de-duplicated.
			want := slices.Clone(header)
			slices.SortFunc(want, identity.PublicID.Compare)
			want = slices.Compact(want)
			if len(info.Recipients) != len(want) {
				t.Fatalf("sealed to %d recipients, want %d", len(info.Recipients), len(want))
			}
			for i := range want {
				if info.Recipients[i] != want[i].Sign {
					t.Fatalf("recipient #%d is %x, want %x", i, info.Recipients[i][:4], want[i].Sign[:4])
				}
			}
			for _, r := range tc.recipients {
				k, err := OpenSenderKey(r, testGroup, sealed, alice.Public().Sign)
				if err != nil {
					t.Fatal(err)
				}
				if !k.Equal(key) {
					t.Fatal("the header holds another key")
				}
			}
			if tc.recipients == nil {
				if _, err := OpenSenderKey(alice, testGroup, sealed, alice.Public().Sign); !errors.Is(err, ErrNoHeader) {
					t.Fatalf("OpenSenderKey without a header = %v, want %v", err, ErrNoHeader)
				}
			}
			o, err := OpenMessage(key, testGroup, sealed, alice.Public().Sign, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.Group != m.Group || o.Author != m.Author || o.ID != m.ID || o.Head != m.Head || o.Time != m.Time || !bytes.Equal(o.Body, m.Body) {
				t.Fatalf("opened %+v, sealed %+v", o.Message, *m)
			}
			v, err := VerifyRecord(o.Record, o.Sig)
			if err != nil {
				t.Fatalf("opened record does not verify: %v", err)
			}
			if v.ID != m.ID || !bytes.Equal(v.Body, m.Body) {
				t.Fatal("verified record differs from the opened message")
			}
			for _, r := range tc.outsiders {
				if _, err := OpenSenderKey(r, testGroup, sealed, alice.Public().Sign); !errors.Is(err, ErrNotRecipient) {
					t.Fatalf("outsider opens: %v, want %v", err, ErrNotRecipient)
				}
			}
		})
	}
}

// TestSealTwice seals one message twice under one key, as a retry does: the
// random nonces differ, so the two ciphertexts share no keystream.
func TestSealTwice(t *testing.T) {
	alice := testID(t, 1)
	key := testKey(alice, 1)
	a, err := SealMessage(alice, testMessage(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SealMessage(alice, testMessage(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	wa, _ := decodeSealed(a)
	wb, _ := decodeSealed(b)
	if bytes.Equal(wa.Nonce, wb.Nonce) || bytes.Equal(wa.Ciphertext, wb.Ciphertext) {
		t.Fatal("two sealings of one message share a nonce or a ciphertext")
	}
}

// TestOpenInAnotherEnvelope re-sends Alice's sealed message in an envelope
// signed by Mallory (a member, so the envelope itself verifies): the reader
// must not take it, or its key, as Mallory's, nor accept it in another group.
func TestOpenInAnotherEnvelope(t *testing.T) {
	alice, bob, mallory := testID(t, 1), testID(t, 2), testID(t, 3)
	m := testMessage()
	key := testKey(alice, 1)
	sealed, err := SealMessage(alice, m, key, publics(alice, bob, mallory))
	if err != nil {
		t.Fatal(err)
	}
	// Mallory, a recipient, knows alice's key and registers it as hers.
	mallorys := key.Clone()
	mallorys.Sender = mallory.Public().Sign
	for _, tc := range []struct {
		name    string
		signer  *identity.Identity
		group   GroupID
		key     *SenderKey
		wantKey error // from OpenSenderKey
		wantMsg error // from OpenMessage
	}{
		{"control: alice's envelope", alice, testGroup, key, nil, nil},
		{"mallory's envelope", mallory, testGroup, key, ErrAuthorMismatch, ErrWrongKey},
		{"mallory's envelope, alice's key registered as mallory's", mallory, testGroup, mallorys, ErrAuthorMismatch, ErrMalformed},
		{"another group", alice, GroupID{9}, key, ErrWrongGroup, ErrWrongKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := mustSign(t, tc.signer, &Envelope{Type: TypeChat, Group: tc.group, Counter: 1, Time: 1, Payload: sealed})
			e, err := Verify(frame)
			if err != nil {
				t.Fatal(err)
			}
			_, kerr := OpenSenderKey(bob, e.Group, e.Payload, e.Sender)
			_, merr := OpenMessage(tc.key, e.Group, e.Payload, e.Sender, m.ID)
			for _, c := range []struct {
				what      string
				got, want error
			}{{"OpenSenderKey", kerr, tc.wantKey}, {"OpenMessage", merr, tc.wantMsg}} {
				if c.want == nil && c.got != nil || c.want != nil && !errors.Is(c.got, c.want) {
					t.Fatalf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

// otherRecipient wraps the file key into a stanza of a type DeMeS never uses.
type otherRecipient struct{}

func (otherRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	return []*age.Stanza{{Type: "other", Body: []byte("x")}}, nil
}

// craftHeader builds a key header by hand: keys is the recipient list as
// written, to are the age recipients actually used, and plaintext is what is
// encrypted.
func craftHeader(t *testing.T, keys []byte, to []age.Recipient, plaintext []byte) []byte {
	t.Helper()
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, to...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plaintext)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := encMode.Marshal(&headerWire{Recipients: keys, Ciphertext: ct.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// craftSealed builds a sealed message by hand around fields.
func craftSealed(t *testing.T, w sealedWire) []byte {
	t.Helper()
	b, err := w.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withHeader returns a sealed message of key, with a valid body, that carries
// header as its key header.
func withHeader(t *testing.T, key *SenderKey, header []byte) []byte {
	t.Helper()
	return craftSealed(t, sealedWire{Version: SealedVersion, Epoch: key.Epoch, KeyID: key.ID[:], Header: header,
		Nonce: make([]byte, chacha20poly1305.NonceSizeX), Ciphertext: make([]byte, 100)})
}

// TestOpenSenderKeyRejects breaks the key header in every way the age layer
// and the header's plaintext can be broken.
func TestOpenSenderKeyRejects(t *testing.T) {
	alice, bob, carol := testID(t, 1), testID(t, 2), testID(t, 3)
	// In canonical order: check the test's assumption about it.
	ids := []*identity.Identity{alice, bob, carol}
	slices.SortFunc(ids, func(a, b *identity.Identity) int { return a.Public().Compare(b.Public()) })
	first, second, third := ids[0], ids[1], ids[2]
	ageOf := func(id *identity.Identity) age.Recipient {
		r, err := id.Public().Recipient()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	keysOf := func(ids ...*identity.Identity) []byte {
		var b []byte
		for _, id := range ids {
			k := id.Public().Sign
			b = append(b, k[:]...)
		}
		return b
	}
	key := testKey(alice, 3)
	plain := key.keyPlain()
	otherPlain := func(edit func(k *SenderKey)) []byte { k := key.Clone(); edit(k); return k.keyPlain() }
	good := craftHeader(t, keysOf(first, second), []age.Recipient{ageOf(first), ageOf(second)}, plain)
	if !bytes.HasPrefix(good, []byte{0x82, 0x58, 0x40}) {
		t.Fatalf("key header starts %x, want an array of two and a 64-byte string", good[:3])
	}

	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	// b64change replaces a base64 character of the age header with another
	// valid one, so that the header still parses.
	b64change := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return b
	}
	one := func(p []byte) []byte { return craftHeader(t, keysOf(first), []age.Recipient{ageOf(first)}, p) }

	tests := []struct {
		name   string
		header []byte
		reader *identity.Identity
		want   error
	}{
		{"control", good, second, nil},
		{"control, first reader", good, first, nil},
		{"not listed", good, third, ErrNotRecipient},
		{"truncated", good[:len(good)-1], first, ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), first, ErrMalformed},
		{"non-shortest array head", append([]byte{0x98, 0x02}, good[1:]...), first, ErrMalformed},
		{"non-shortest list length", append([]byte{0x82, 0x59, 0x00, 0x40}, good[3:]...), first, ErrMalformed},
		{"indefinite array", append(append([]byte{0x9f}, good[1:]...), 0xff), first, ErrMalformed},
		{"null ciphertext", append(good[:3+2*keySize:3+2*keySize], 0xf6), first, ErrMalformed},
		{"null list", append([]byte{0x82, 0xf6}, good[3+2*keySize:]...), first, ErrMalformed},
		{"array of three", append(append([]byte{0x83}, good[1:]...), 0x40), first, ErrMalformed},
		{"ciphertext byte flipped", flip(good, len(good)-5), first, ErrMalformed},
		{"header MAC changed", b64change(good, bytes.Index(good, []byte("\n--- "))+10), first, ErrMalformed},
		{"own stanza changed", b64change(good, bytes.Index(good, []byte("-> X25519 "))+12), first, ErrNotRecipient},
		{"unsorted list", craftHeader(t, keysOf(second, first), []age.Recipient{ageOf(second), ageOf(first)}, plain), first, ErrMalformed},
		{"duplicate in list", craftHeader(t, keysOf(first, first), []age.Recipient{ageOf(first), ageOf(first)}, plain), first, ErrMalformed},
		{"empty list", craftHeader(t, nil, []age.Recipient{ageOf(first)}, plain), first, ErrMalformed},
		{"list not whole keys", craftHeader(t, keysOf(first)[:31], []age.Recipient{ageOf(first)}, plain), first, ErrMalformed},
		{"fewer stanzas than listed", craftHeader(t, keysOf(first, second), []age.Recipient{ageOf(first)}, plain), first, ErrMalformed},
		{"more stanzas than listed", craftHeader(t, keysOf(first), []age.Recipient{ageOf(first), ageOf(second)}, plain), first, ErrMalformed},
		{"stanza of another type", craftHeader(t, keysOf(first, second), []age.Recipient{ageOf(first), otherRecipient{}}, plain), first, ErrMalformed},
		{"own stanza for another key", craftHeader(t, keysOf(first, second), []age.Recipient{ageOf(first), ageOf(third)}, plain), second, ErrNotRecipient},
		{"stanzas swapped", craftHeader(t, keysOf(first, second), []age.Recipient{ageOf(second), ageOf(first)}, plain), first, ErrNotRecipient},
		{"plaintext too short", one(plain[:len(plain)-1]), first, ErrMalformed},
		{"plaintext too long", one(append(bytes.Clone(plain), 0)), first, ErrTooLarge},
		{"key of another group", one(otherPlain(func(k *SenderKey) { k.Group[0] ^= 1 })), first, ErrWrongGroup},
		{"key of another sender", one(otherPlain(func(k *SenderKey) { k.Sender = bob.Public().Sign })), first, ErrAuthorMismatch},
		{"key of another epoch", one(otherPlain(func(k *SenderKey) { k.Epoch++ })), first, ErrMalformed},
		{"key under another id", one(otherPlain(func(k *SenderKey) { k.ID[0] ^= 1 })), first, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := OpenSenderKey(tc.reader, testGroup, withHeader(t, key, tc.header), alice.Public().Sign)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("OpenSenderKey = %v, want success", err)
				}
				if !k.Equal(key) {
					t.Fatal("opened another key")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenSenderKey = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestOpenMessageRejects tampers with a sealed message and opens it with the
// key it names, or opens it with another key.
func TestOpenMessageRejects(t *testing.T) {
	alice, bob := testID(t, 1), testID(t, 2)
	m := testMessage()
	key := testKey(alice, 5)
	sealed, err := SealMessage(alice, m, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sender := alice.Public().Sign
	// Every byte flipped: nothing opens (the id, epoch and nonce are
	// bound by the key derivation and the AAD, the rest by the tag).
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		if _, err := OpenMessage(key, testGroup, b, sender, m.ID); err == nil {
			t.Fatalf("opens with byte %d flipped", i)
		}
	}
	// sealRaw seals plain under key as SealMessage does, for plaintexts
	// SealMessage would not write.
	sealRaw := func(key *SenderKey, id [16]byte, plain []byte) []byte {
		aead, err := chacha20poly1305.NewX(key.messageKey(id))
		if err != nil {
			t.Fatal(err)
		}
		nonce := make([]byte, chacha20poly1305.NonceSizeX)
		return craftSealed(t, sealedWire{Version: SealedVersion, Epoch: key.Epoch, KeyID: key.ID[:], Header: []byte{},
			Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plain, key.aad())})
	}
	m.Author = alice.Public()
	record, err := encodeRecord(m)
	if err != nil {
		t.Fatal(err)
	}
	sig := alice.Sign(signedRecord(record))
	with := func(r, s []byte) []byte { return append(bytes.Clone(r), s...) }
	otherID := m.ID
	otherID[0] ^= 1
	bobsRecord := func() []byte {
		mm := *m
		mm.Author = bob.Public()
		r, _ := encodeRecord(&mm)
		return with(r, bob.Sign(signedRecord(r)))
	}
	otherGroup := func() []byte {
		mm := *m
		mm.Group = GroupID{9}
		r, _ := encodeRecord(&mm)
		return with(r, alice.Sign(signedRecord(r)))
	}
	edit := func(f func(k *SenderKey)) *SenderKey { k := key.Clone(); f(k); return k }
	swapped := edit(func(k *SenderKey) { k.ID[3] ^= 1 })

	tests := []struct {
		name   string
		key    *SenderKey
		sealed []byte
		id     [16]byte
		want   error
	}{
		{"control", key, sealed, m.ID, nil},
		{"crafted control", key, sealRaw(key, m.ID, with(record, sig)), m.ID, nil},
		{"another message id", key, sealed, otherID, ErrMalformed},
		{"key of another sender", edit(func(k *SenderKey) { k.Sender = bob.Public().Sign }), sealed, m.ID, ErrWrongKey},
		{"key of another group", edit(func(k *SenderKey) { k.Group[0] ^= 1 }), sealed, m.ID, ErrWrongKey},
		{"key of another epoch", edit(func(k *SenderKey) { k.Epoch++ }), sealed, m.ID, ErrWrongKey},
		{"key with another id", swapped, sealed, m.ID, ErrWrongKey},
		{"another key under the named id", edit(func(k *SenderKey) { k.Key[0] ^= 1 }), sealed, m.ID, ErrMalformed},
		{"sealed under another key id, key swapped to match", swapped, sealRaw(swapped, m.ID, with(record, sig)), m.ID, nil},
		{"bad signature", key, sealRaw(key, m.ID, with(record, append(bytes.Clone(sig[:63]), sig[63]^1))), m.ID, ErrSignature},
		{"envelope-domain signature", key, sealRaw(key, m.ID, with(record, alice.Sign(signedEnvelope(nil, record)))), m.ID, ErrSignature},
		{"record cut", key, sealRaw(key, m.ID, with(record[:len(record)-1], sig)), m.ID, ErrMalformed},
		{"record of another author", key, sealRaw(key, m.ID, bobsRecord()), m.ID, ErrAuthorMismatch},
		{"record of another group", key, sealRaw(key, m.ID, otherGroup()), m.ID, ErrWrongGroup},
		{"record under another id", key, sealRaw(key, otherID, with(record, sig)), otherID, ErrMalformed},
		{"empty plaintext", key, sealRaw(key, m.ID, sig[:0]), m.ID, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenMessage(tc.key, testGroup, tc.sealed, sender, tc.id)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("OpenMessage = %v, want success", err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("OpenMessage = %v, want %v", err, tc.want)
			}
		})
	}
	// Every byte flipped: OpenMessage opens nothing.
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		if _, err := OpenMessage(key, testGroup, b, sender, m.ID); err == nil {
			t.Fatalf("OpenMessage opens with byte %d flipped", i)
		}
	}
}

func TestSealRejects(t *testing.T) {
	alice, bob := testID(t, 1), testID(t, 2)
	many := make([]identity.PublicID, MaxRecipients+1)
	for i := range many {
		many[i] = identity.PublicID{Sign: [32]byte{byte(i), byte(i >> 8), 1}, Box: bob.Public().Box}
	}
	twin := bob.Public()
	twin.Box = alice.Public().Box
	withBody := func(b []byte) *Message { m := testMessage(); m.Body = b; return m }
	key := testKey(alice, 1)
	tests := []struct {
		name       string
		m          *Message
		key        *SenderKey
		recipients []identity.PublicID
		want       error
	}{
		{"control: max body", withBody(bytes.Repeat([]byte("a"), MaxBody)), key, publics(bob), nil},
		{"control: no header", testMessage(), key, nil, nil},
		{"body over limit", withBody(bytes.Repeat([]byte("a"), MaxBody+1)), key, publics(bob), ErrTooLarge},
		{"body not UTF-8", withBody([]byte{'a', 0xff}), key, publics(bob), ErrMalformed},
		{"empty header list", testMessage(), key, []identity.PublicID{}, errAny},
		{"too many recipients", testMessage(), key, many, ErrTooLarge},
		{"zero recipient", testMessage(), key, []identity.PublicID{{}}, errAny},
		{"two ids, one signing key", testMessage(), key, []identity.PublicID{bob.Public(), twin}, errAny},
		{"no key", testMessage(), nil, nil, errAny},
		{"another member's key", testMessage(), testKey(bob, 1), nil, errAny},
		{"another group's key", testMessage(), func() *SenderKey { k := testKey(alice, 1); k.Group[0] ^= 1; return k }(), nil, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SealMessage(alice, tc.m, tc.key, tc.recipients)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("SealMessage = %v, want success", err)
			case tc.want == nil:
			case tc.want == errAny && err == nil:
				t.Fatal("SealMessage succeeded, want an error")
			case tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("SealMessage = %v, want %v", err, tc.want)
			}
		})
	}
}

// errAny stands for "any error" in tables.
var errAny = errors.New("any error")

func TestVerifyRecord(t *testing.T) {
	alice := testID(t, 1)
	m := testMessage()
	m.Author = alice.Public()
	record, err := encodeRecord(m)
	if err != nil {
		t.Fatal(err)
	}
	sig := alice.Sign(signedRecord(record))
	if _, err := VerifyRecord(record, sig); err != nil {
		t.Fatal(err)
	}
	for i := range record {
		r := bytes.Clone(record)
		r[i] ^= 0x01
		if _, err := VerifyRecord(r, sig); err == nil {
			t.Fatalf("record with byte %d flipped verifies", i)
		}
	}
	for i := range sig {
		s := bytes.Clone(sig)
		s[i] ^= 0x01
		if _, err := VerifyRecord(record, s); !errors.Is(err, ErrSignature) {
			t.Fatalf("signature with byte %d flipped: %v, want %v", i, err, ErrSignature)
		}
	}
	// Another key's signature, and alice's signature without the domain.
	bobSig := testID(t, 2).Sign(signedRecord(record))
	for name, s := range map[string][]byte{"other key": bobSig, "no domain": alice.Sign(record), "short": sig[:63], "none": nil} {
		if _, err := VerifyRecord(record, s); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: VerifyRecord = %v, want %v", name, err, ErrSignature)
		}
	}
	if _, err := VerifyRecord(make([]byte, MaxRecord+1), sig); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized record: %v, want %v", err, ErrTooLarge)
	}
	if _, err := VerifyRecord(nil, sig); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty record: %v, want %v", err, ErrMalformed)
	}
	if !strings.HasPrefix(messageDomain, "DeMeS message v1") || messageDomain == envelopeDomain {
		t.Fatal("domain strings are not distinct")
	}
}

// TestVerifyRecordRejects signs records that break the format, so that only
// the decoder can reject them.
func TestVerifyRecordRejects(t *testing.T) {
	alice := testID(t, 1)
	pub := alice.Public()
	good := func() recordWire {
		m := testMessage()
		return recordWire{Group: m.Group[:], Author: pub.Bytes(), ID: m.ID[:], Head: m.Head[:], Time: m.Time, Body: m.Body}
	}
	zeroBox := append(bytes.Clone(pub.Sign[:]), make([]byte, 32)...)
	tests := []struct {
		name string
		edit func(w *recordWire)
		raw  func(b []byte) []byte
		want error
	}{
		{"control", func(w *recordWire) {}, nil, nil},
		{"body not UTF-8", func(w *recordWire) { w.Body = []byte{'a', 0xc3} }, nil, ErrMalformed},
		{"body over MaxBody", func(w *recordWire) { w.Body = bytes.Repeat([]byte("a"), MaxBody+1) }, nil, ErrTooLarge},
		{"group of 15", func(w *recordWire) { w.Group = w.Group[:15] }, nil, ErrMalformed},
		{"id of 17", func(w *recordWire) { w.ID = append(w.ID, 0) }, nil, ErrMalformed},
		{"head of 31", func(w *recordWire) { w.Head = w.Head[:31] }, nil, ErrMalformed},
		{"author of 32", func(w *recordWire) { w.Author = w.Author[:32] }, nil, ErrMalformed},
		{"author with zero X25519 key", func(w *recordWire) { w.Author = zeroBox }, nil, ErrMalformed},
		{"non-shortest array head", func(w *recordWire) {}, func(b []byte) []byte { return append([]byte{0x98, 0x06}, b[1:]...) }, ErrMalformed},
		{"trailing byte", func(w *recordWire) {}, func(b []byte) []byte { return append(b, 0) }, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := good()
			tc.edit(&w)
			record, err := encMode.Marshal(&w)
			if err != nil {
				t.Fatal(err)
			}
			if tc.raw != nil {
				record = tc.raw(record)
			}
			_, err = VerifyRecord(record, alice.Sign(signedRecord(record)))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("VerifyRecord = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyRecord = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReadSealedRejects(t *testing.T) {
	alice := testID(t, 1)
	key := testKey(alice, 300)
	good, err := SealMessage(alice, testMessage(), key, publics(alice))
	if err != nil {
		t.Fatal(err)
	}
	w, err := decodeSealed(good)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(w *sealedWire)) []byte { c := *w; f(&c); return craftSealed(t, c) }
	k := alice.Public().Sign
	list := append([]byte{0x82, 0x58, 0x20}, k[:]...)
	for name, in := range map[string][]byte{
		"version 1":                edit(func(w *sealedWire) { w.Version = 1 }),
		"key id of 15":             edit(func(w *sealedWire) { w.KeyID = w.KeyID[:15] }),
		"nonce of 12":              edit(func(w *sealedWire) { w.Nonce = w.Nonce[:12] }),
		"ciphertext under the tag": edit(func(w *sealedWire) { w.Ciphertext = w.Ciphertext[:15] }),
		"ciphertext over the limit": edit(func(w *sealedWire) {
			w.Ciphertext = make([]byte, MaxRecord+sigSize+chacha20poly1305.Overhead+1)
		}),
		"header with a null ciphertext": edit(func(w *sealedWire) { w.Header = append(bytes.Clone(list), 0xf6) }),
		"header with no ciphertext":     edit(func(w *sealedWire) { w.Header = append(bytes.Clone(list), 0x40) }),
		"header not CBOR":               edit(func(w *sealedWire) { w.Header = []byte{0xff} }),
		"non-shortest epoch":            append([]byte{0x86, 0x02, 0x1a, 0x00, 0x00, 0x01, 0x2c}, good[4:]...),
		"trailing byte":                 append(bytes.Clone(good), 0),
		"empty":                         nil,
		"over MaxPayload":               make([]byte, MaxPayload+1),
	} {
		if _, err := ReadSealed(in); err == nil {
			t.Errorf("%s: ReadSealed succeeded", name)
		}
	}
	// A null in place of the empty header: the only other encoding of
	// "no header" a lax decoder would take.
	noHeader, err := SealMessage(alice, testMessage(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(noHeader, append([]byte{0x50}, key.ID[:]...)) + 1 + KeyIDSize
	if noHeader[at] != 0x40 {
		t.Fatalf("no empty header at %d: %x", at, noHeader[at])
	}
	null := bytes.Clone(noHeader)
	null[at] = 0xf6
	if _, err := ReadSealed(null); !errors.Is(err, ErrMalformed) {
		t.Errorf("null header: %v, want %v", err, ErrMalformed)
	}
	if info, err := ReadSealed(good); err != nil || len(info.Recipients) != 1 || info.Recipients[0] != k || info.Epoch != 300 {
		t.Fatalf("control: %+v, %v", info, err)
	}
}
