package crypto

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

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

func TestSealOpen(t *testing.T) {
	alice, bob, carol, dave := testID(t, 1), testID(t, 2), testID(t, 3), testID(t, 4)
	tests := []struct {
		name       string
		recipients []*identity.Identity
		outsiders  []*identity.Identity
	}{
		{"to self only", []*identity.Identity{alice}, []*identity.Identity{bob}},
		{"to one other", []*identity.Identity{bob}, []*identity.Identity{alice, carol}},
		{"group of four", []*identity.Identity{dave, alice, carol, bob}, nil},
		{"duplicates", []*identity.Identity{bob, carol, bob, carol, bob}, []*identity.Identity{alice, dave}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testMessage()
			sealed, err := SealMessage(alice, m, publics(tc.recipients...))
			if err != nil {
				t.Fatal(err)
			}
			if m.Author != alice.Public() {
				t.Fatal("SealMessage did not set the author")
			}
			// The list is the recipients, sorted and de-duplicated.
			want := publics(tc.recipients...)
			slices.SortFunc(want, identity.PublicID.Compare)
			want = slices.Compact(want)
			got, err := SealedRecipients(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("sealed to %d recipients, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i].Sign {
					t.Fatalf("recipient #%d is %x, want %x", i, got[i][:4], want[i].Sign[:4])
				}
			}
			for _, r := range tc.recipients {
				o, err := OpenMessage(r, testGroup, sealed, alice.Public().Sign)
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
			}
			for _, r := range tc.outsiders {
				if _, err := OpenMessage(r, testGroup, sealed, alice.Public().Sign); !errors.Is(err, ErrNotRecipient) {
					t.Fatalf("outsider opens: %v, want %v", err, ErrNotRecipient)
				}
			}
		})
	}
}

// TestOpenInAnotherEnvelope re-sends Alice's sealed message in an envelope
// signed by Mallory (a member, so the envelope itself verifies): the reader
// must not take it as Mallory's, nor accept it in another group.
func TestOpenInAnotherEnvelope(t *testing.T) {
	alice, bob, mallory := testID(t, 1), testID(t, 2), testID(t, 3)
	sealed, err := SealMessage(alice, testMessage(), publics(alice, bob, mallory))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		signer *identity.Identity
		group  GroupID
		want   error
	}{
		{"control: alice's envelope", alice, testGroup, nil},
		{"mallory's envelope", mallory, testGroup, ErrAuthorMismatch},
		{"another group", alice, GroupID{9}, ErrWrongGroup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := mustSign(t, tc.signer, &Envelope{Type: TypeChat, Group: tc.group, Counter: 1, Time: 1, Payload: sealed})
			e, err := Verify(frame)
			if err != nil {
				t.Fatal(err)
			}
			_, err = OpenMessage(bob, e.Group, e.Payload, e.Sender)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenMessage = %v, want %v", err, tc.want)
			}
		})
	}
}

// otherRecipient wraps the file key into a stanza of a type DeMeS never uses.
type otherRecipient struct{}

func (otherRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	return []*age.Stanza{{Type: "other", Body: []byte("x")}}, nil
}

// craftSealed builds a sealed message by hand: keys is the recipient list as
// written, to are the age recipients actually used, and plaintext is what is
// encrypted.
func craftSealed(t *testing.T, keys []byte, to []age.Recipient, plaintext []byte) []byte {
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
	b, err := encMode.Marshal(&sealedWire{Recipients: keys, Ciphertext: ct.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenRejects(t *testing.T) {
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
	m := testMessage()
	m.Author = alice.Public()
	record, err := encodeRecord(m)
	if err != nil {
		t.Fatal(err)
	}
	sig := alice.Sign(signedRecord(record))
	plain := append(bytes.Clone(record), sig...)
	good := craftSealed(t, keysOf(first, second), []age.Recipient{ageOf(first), ageOf(second)}, plain)
	if !bytes.HasPrefix(good, []byte{0x82, 0x58, 0x40}) {
		t.Fatalf("sealed message starts %x, want an array of two and a 64-byte string", good[:3])
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
	badSig := append(bytes.Clone(record), flip(sig, 0)...)
	envSig := append(bytes.Clone(record), alice.Sign(signedEnvelope(nil, record))...)

	tests := []struct {
		name   string
		sealed []byte
		reader *identity.Identity
		want   error
	}{
		{"control", good, second, nil},
		{"control, first reader", good, first, nil},
		{"not listed", good, third, ErrNotRecipient},
		{"empty", nil, first, ErrMalformed},
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
		{"unsorted list", craftSealed(t, keysOf(second, first), []age.Recipient{ageOf(second), ageOf(first)}, plain), first, ErrMalformed},
		{"duplicate in list", craftSealed(t, keysOf(first, first), []age.Recipient{ageOf(first), ageOf(first)}, plain), first, ErrMalformed},
		{"empty list", craftSealed(t, nil, []age.Recipient{ageOf(first)}, plain), first, ErrMalformed},
		{"list not whole keys", craftSealed(t, keysOf(first)[:31], []age.Recipient{ageOf(first)}, plain), first, ErrMalformed},
		{"fewer stanzas than listed", craftSealed(t, keysOf(first, second), []age.Recipient{ageOf(first)}, plain), first, ErrMalformed},
		{"more stanzas than listed", craftSealed(t, keysOf(first), []age.Recipient{ageOf(first), ageOf(second)}, plain), first, ErrMalformed},
		{"stanza of another type", craftSealed(t, keysOf(first, second), []age.Recipient{ageOf(first), otherRecipient{}}, plain), first, ErrMalformed},
		{"own stanza for another key", craftSealed(t, keysOf(first, second), []age.Recipient{ageOf(first), ageOf(third)}, plain), second, ErrNotRecipient},
		{"stanzas swapped", craftSealed(t, keysOf(first, second), []age.Recipient{ageOf(second), ageOf(first)}, plain), first, ErrNotRecipient},
		{"plaintext too short", craftSealed(t, keysOf(first), []age.Recipient{ageOf(first)}, sig[:63]), first, ErrMalformed},
		{"plaintext too long", craftSealed(t, keysOf(first), []age.Recipient{ageOf(first)}, make([]byte, MaxRecord+sigSize+1)), first, ErrTooLarge},
		{"bad signature", craftSealed(t, keysOf(first), []age.Recipient{ageOf(first)}, badSig), first, ErrSignature},
		{"envelope-domain signature", craftSealed(t, keysOf(first), []age.Recipient{ageOf(first)}, envSig), first, ErrSignature},
		{"record cut", craftSealed(t, keysOf(first), []age.Recipient{ageOf(first)}, append(bytes.Clone(record[:len(record)-1]), sig...)), first, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenMessage(tc.reader, testGroup, tc.sealed, alice.Public().Sign)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("OpenMessage = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenMessage = %v, want %v", err, tc.want)
			}
		})
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
	tests := []struct {
		name       string
		m          *Message
		recipients []identity.PublicID
		want       error
	}{
		{"control: max body", withBody(bytes.Repeat([]byte("a"), MaxBody)), publics(bob), nil},
		{"body over limit", withBody(bytes.Repeat([]byte("a"), MaxBody+1)), publics(bob), ErrTooLarge},
		{"body not UTF-8", withBody([]byte{'a', 0xff}), publics(bob), ErrMalformed},
		{"no recipients", testMessage(), nil, errAny},
		{"too many recipients", testMessage(), many, ErrTooLarge},
		{"zero recipient", testMessage(), []identity.PublicID{{}}, errAny},
		{"two ids, one signing key", testMessage(), []identity.PublicID{bob.Public(), twin}, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SealMessage(alice, tc.m, tc.recipients)
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

func TestSealedRecipientsRejects(t *testing.T) {
	key := testID(t, 1).Public().Sign
	list := append([]byte{0x82, 0x58, 0x20}, key[:]...)
	for name, in := range map[string][]byte{
		"null ciphertext":  append(bytes.Clone(list), 0xf6),
		"empty ciphertext": append(bytes.Clone(list), 0x40),
		"null list":        {0x82, 0xf6, 0x41, 0x00},
		"empty":            nil,
		"over MaxPayload":  make([]byte, MaxPayload+1),
	} {
		if _, err := SealedRecipients(in); err == nil {
			t.Errorf("%s: SealedRecipients succeeded", name)
		}
	}
	if keys, err := SealedRecipients(append(bytes.Clone(list), 0x41, 0x00)); err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("control: %v, %v", keys, err)
	}
}
