package crypto

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
)

// prekeyMember is a member with a prekey and the set holding its secret.
type prekeyMember struct {
	id      *identity.Identity
	prekey  *prekey.Prekey
	secrets *prekey.SecretSet
}

func newPrekeyMember(t *testing.T, n byte, now time.Time) prekeyMember {
	t.Helper()
	id := testID(t, n)
	p, s, err := prekey.Generate(id, now.Add(-time.Minute), prekey.DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	set := prekey.NewSecretSet()
	set.Add(s)
	return prekeyMember{id: id, prekey: p, secrets: set}
}

// TestSealToPrekeys: a message sealed with a version 3 key header opens for
// each recipient with its prekey secret, and for nobody once that secret is
// deleted, even with the identity key (which opens every version 2 header).
func TestSealToPrekeys(t *testing.T) {
	now := time.Now()
	alice, bob, carol := newPrekeyMember(t, 1, now), newPrekeyMember(t, 2, now), newPrekeyMember(t, 3, now)
	key := NewSenderKey(testGroup, alice.id.Public().Sign, 7)
	m := &Message{Group: testGroup, ID: NewMessageID(), Time: now.UnixNano(), Body: []byte("hello")}
	sealed, err := SealMessageToPrekeys(alice.id, m, key, []*prekey.Prekey{carol.prekey, alice.prekey, bob.prekey}, now)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadSealed(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Prekeys || len(info.Recipients) != 3 || info.Epoch != 7 || info.KeyID != key.ID {
		t.Fatalf("ReadSealed = %+v, want a prekey header to 3 members under key %x of epoch 7", info, key.ID[:4])
	}
	for i := 1; i < len(info.Recipients); i++ {
		if bytes.Compare(info.Recipients[i-1][:], info.Recipients[i][:]) >= 0 {
			t.Fatalf("recipients not in ascending order: %x", info.Recipients)
		}
	}
	for _, r := range []prekeyMember{alice, bob, carol} {
		who := r.id.Public().Sign
		k, err := OpenSenderKeyWith(r.id, r.secrets, testGroup, sealed, alice.id.Public().Sign)
		if err != nil {
			t.Fatalf("member %x: %v", who[:4], err)
		}
		if k.Key != key.Key || k.Ref() != key.Ref() {
			t.Fatalf("member %x opened another key", who[:4])
		}
		o, err := OpenMessage(k, testGroup, sealed, alice.id.Public().Sign, m.ID)
		if err != nil || string(o.Body) != "hello" {
			t.Fatalf("open message: %v", err)
		}
	}

	// The identity key alone opens nothing: the header is not sealed to it.
	if _, err := OpenSenderKey(bob.id, testGroup, sealed, alice.id.Public().Sign); !errors.Is(err, ErrKeyDeleted) {
		t.Fatalf("open with the identity only: %v, want ErrKeyDeleted", err)
	}
	// Deleting the secret is forward secrecy: the header never opens again.
	bob.secrets.Delete(bob.prekey.ID)
	if _, err := OpenSenderKeyWith(bob.id, bob.secrets, testGroup, sealed, alice.id.Public().Sign); !errors.Is(err, ErrKeyDeleted) {
		t.Fatalf("open after deleting the secret: %v, want ErrKeyDeleted", err)
	}
	// A non-recipient.
	dave := newPrekeyMember(t, 4, now)
	if _, err := OpenSenderKeyWith(dave.id, dave.secrets, testGroup, sealed, alice.id.Public().Sign); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("open as a non-recipient: %v, want ErrNotRecipient", err)
	}
	// The header names its sender and group: a member cannot pass it off
	// as its own, nor replay it into another group.
	if _, err := OpenSenderKeyWith(carol.id, carol.secrets, testGroup, sealed, bob.id.Public().Sign); !errors.Is(err, ErrAuthorMismatch) {
		t.Fatalf("open as another sender's: %v, want ErrAuthorMismatch", err)
	}
	if _, err := OpenSenderKeyWith(carol.id, carol.secrets, GroupID{1}, sealed, alice.id.Public().Sign); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("open in another group: %v, want ErrWrongGroup", err)
	}
}

// TestKeyRingPrekeys: a ring opens version 3 headers only with the owner's
// prekey secrets, keeps what it opened, and takes back kept keys with Add.
func TestKeyRingPrekeys(t *testing.T) {
	now := time.Now()
	alice, bob := newPrekeyMember(t, 1, now), newPrekeyMember(t, 2, now)
	key := NewSenderKey(testGroup, alice.id.Public().Sign, 3)
	m := &Message{Group: testGroup, ID: NewMessageID(), Time: now.UnixNano(), Body: []byte("hi")}
	sealed, err := SealMessageToPrekeys(alice.id, m, key, []*prekey.Prekey{alice.prekey, bob.prekey}, now)
	if err != nil {
		t.Fatal(err)
	}
	ref := key.Ref()
	ring := NewKeyRing(bob.id, testGroup)
	if _, err := ring.Open(ref, sealed); !errors.Is(err, ErrKeyDeleted) {
		t.Fatalf("open without prekeys: %v, want ErrKeyDeleted", err)
	}
	ring.UsePrekeys(bob.secrets)
	k, err := ring.Open(ref, sealed)
	if err != nil || k.Key != key.Key {
		t.Fatalf("open with prekeys: %v", err)
	}
	// Kept: the secret's deletion does not take back a key already opened.
	bob.secrets.Delete(bob.prekey.ID)
	if ring.Lookup(ref) == nil {
		t.Fatal("the ring lost the key it opened")
	}
	ring.Drop(ref)
	if _, err := ring.Open(ref, sealed); !errors.Is(err, ErrKeyDeleted) {
		t.Fatalf("open after Drop and the secret's deletion: %v, want ErrKeyDeleted", err)
	}

	// A kept key, marshalled and added back, opens the message.
	b, _ := key.MarshalBinary()
	back, err := UnmarshalSenderKey(b)
	if err != nil || !back.Equal(key) {
		t.Fatalf("round trip of a sender key: %v", err)
	}
	fresh := NewKeyRing(bob.id, testGroup)
	fresh.Add(back)
	if _, err := fresh.Open(ref, sealed); err != nil {
		t.Fatalf("open with an added key: %v", err)
	}
	other := back.Clone()
	other.Group = GroupID{9}
	fresh2 := NewKeyRing(bob.id, testGroup)
	fresh2.Add(other)
	if fresh2.Lookup(other.Ref()) != nil {
		t.Fatal("a ring took a key of another group")
	}
	if _, err := UnmarshalSenderKey(b[:50]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a short sender key: %v, want ErrMalformed", err)
	}
}

// TestSealedVersion3NeedsItsHeader: a version 3 message without a prekey
// header, or with an age header, is malformed; so is one whose header names
// another key than the message.
func TestSealedVersion3NeedsItsHeader(t *testing.T) {
	now := time.Now()
	alice, bob := newPrekeyMember(t, 1, now), newPrekeyMember(t, 2, now)
	key := NewSenderKey(testGroup, alice.id.Public().Sign, 3)
	m := &Message{Group: testGroup, ID: NewMessageID(), Time: now.UnixNano(), Body: []byte("hi")}
	v2, err := SealMessage(alice.id, m, key, publics(alice.id, bob.id))
	if err != nil {
		t.Fatal(err)
	}
	w, err := decodeSealed(v2)
	if err != nil {
		t.Fatal(err)
	}
	w.Version = SealedVersionPrekey
	if _, err := ReadSealed(craftSealed(t, *w)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 3 with an age header: %v, want ErrMalformed", err)
	}
	w.Header = []byte{}
	if _, err := ReadSealed(craftSealed(t, *w)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 3 without a header: %v, want ErrMalformed", err)
	}
	v3, err := SealMessageToPrekeys(alice.id, m, key, []*prekey.Prekey{alice.prekey, bob.prekey}, now)
	if err != nil {
		t.Fatal(err)
	}
	w3, err := decodeSealed(v3)
	if err != nil {
		t.Fatal(err)
	}
	w3.KeyID = bytes.Repeat([]byte{0xee}, KeyIDSize)
	if _, err := ReadSealed(craftSealed(t, *w3)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a prekey header of another key: %v, want ErrMalformed", err)
	}
	if _, err := SealMessageToPrekeys(alice.id, m, key, nil, now); err == nil {
		t.Fatal("sealed to no prekeys")
	}
	// A prekey that has expired is refused by the sealer.
	if _, err := SealMessageToPrekeys(alice.id, m, key, []*prekey.Prekey{bob.prekey}, now.Add(prekey.DefaultLifetime+time.Hour)); err == nil {
		t.Fatal("sealed to an expired prekey")
	}
}

// sealed3Vector is a sealed message of version 3 (testdata/crypto/sealed3.json):
// the recipients' prekeys are made from fixed seeds, so that anyone can open
// each stanza, and the message is checked as the version 2 vectors are.
type sealed3Vector struct {
	Name          string   `json:"name"`
	Group         string   `json:"group"`
	AuthorSeed    string   `json:"author_seed"`
	Epoch         uint64   `json:"epoch"`
	KeyID         string   `json:"key_id"`
	SenderKey     string   `json:"sender_key"`
	MessageID     string   `json:"message_id"`
	Time          string   `json:"time"` // the prekeys' not-before and the sealing time, RFC 3339
	PrekeySeeds   []string `json:"prekey_seeds"`
	Prekeys       []string `json:"prekeys"` // the signed prekeys, in recipient order
	RecipientSeed []string `json:"recipient_seeds"`
	Sealed        string   `json:"sealed"`
}

type sealed3Vectors struct {
	Comment string          `json:"comment"`
	Sealed  []sealed3Vector `json:"sealed"`
}

func genSealed3Vectors(t *testing.T) sealed3Vectors {
	v := sealed3Vectors{Comment: vectorComment + ". Sealed messages of version 3 (key header sealed to prekeys, docs/PROTOCOL.md Forward secrecy), " +
		"generated with crypto/rand seeded (testing/cryptotest.SetGlobalRandom, seed 1); prekey i has the secret seed of 32 bytes i+0x40."}
	at := time.Unix(1700000000, 0).UTC()
	rc := recordCases()[0]
	m := rc.m
	author := testID(t, rc.author)
	key := vecKey(author, vecEpoch)
	var pks []*prekey.Prekey
	sv := sealed3Vector{Name: "key header to three members' prekeys", Group: hx(m.Group[:]), AuthorSeed: hx(seed(rc.author)),
		Epoch: key.Epoch, KeyID: hx(key.ID[:]), SenderKey: hx(key.Key[:]), MessageID: hx(m.ID[:]), Time: at.Format(time.RFC3339)}
	for _, n := range []byte{1, 2, 3} {
		ps := [prekey.SecretSize]byte(bytes.Repeat([]byte{n + 0x40}, prekey.SecretSize))
		p, _, err := prekey.FromSeed(testID(t, n), ps, at, prekey.DefaultLifetime)
		if err != nil {
			t.Fatal(err)
		}
		pks = append(pks, p)
		sv.PrekeySeeds = append(sv.PrekeySeeds, hx(ps[:]))
		sv.Prekeys = append(sv.Prekeys, hx(p.Bytes()))
		sv.RecipientSeed = append(sv.RecipientSeed, hx(seed(n)))
	}
	hdr, err := SealKeyHeader(key, pks, at)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealMessage(author, &m, key, SealedVersionPrekey, hdr) // the version this file is of
	if err != nil {
		t.Fatal(err)
	}
	sv.Sealed = hx(sealed)
	v.Sealed = append(v.Sealed, sv)
	return v
}

// TestSealed3Vectors checks testdata/crypto/sealed3.json byte for byte, and
// that each recipient opens the message from the file with its prekey's
// secret rebuilt from the stored seed.
func TestSealed3Vectors(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	var v sealed3Vectors
	checkFile(t, "sealed3.json", genSealed3Vectors(t), &v)
	for _, sv := range v.Sealed {
		sealed := unhex(t, sv.Sealed)
		group := GroupID(unhex(t, sv.Group))
		author := testID(t, unhex(t, sv.AuthorSeed)[0])
		for i, ps := range sv.PrekeySeeds {
			p, err := prekey.Decode(unhex(t, sv.Prekeys[i]))
			if err != nil {
				t.Fatal(err)
			}
			s, err := prekey.RestoreSecret(p, [prekey.SecretSize]byte(unhex(t, ps)))
			if err != nil {
				t.Fatal(err)
			}
			set := prekey.NewSecretSet()
			set.Add(s)
			me := testID(t, unhex(t, sv.RecipientSeed[i])[0])
			k, err := OpenSenderKeyWith(me, set, group, sealed, author.Public().Sign)
			if err != nil {
				t.Fatalf("%s: recipient %d: %v", sv.Name, i, err)
			}
			if hx(k.Key[:]) != sv.SenderKey {
				t.Fatalf("%s: recipient %d opened another key", sv.Name, i)
			}
			if _, err := OpenMessage(k, group, sealed, author.Public().Sign, [16]byte(unhex(t, sv.MessageID))); err != nil {
				t.Fatalf("%s: %v", sv.Name, err)
			}
		}
	}
}

// TestSealWithHeader: messages sealed with one header that SealKeyHeader
// made for their key each open for every recipient, and a header made for
// another key is refused at sealing rather than sent for every reader to
// refuse.
func TestSealWithHeader(t *testing.T) {
	now := time.Now()
	alice, bob := newPrekeyMember(t, 1, now), newPrekeyMember(t, 2, now)
	to := []*prekey.Prekey{alice.prekey, bob.prekey}
	key := NewSenderKey(testGroup, alice.id.Public().Sign, 3)
	hdr, err := SealKeyHeader(key, to, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two"} {
		m := &Message{Group: testGroup, ID: NewMessageID(), Time: now.UnixNano(), Body: []byte(text)}
		sealed, err := SealMessageWithHeader(alice.id, m, key, hdr)
		if err != nil {
			t.Fatal(err)
		}
		k, err := OpenSenderKeyWith(bob.id, bob.secrets, testGroup, sealed, alice.id.Public().Sign)
		if err != nil || k.Key != key.Key {
			t.Fatalf("%s: bob opens the header: %v", text, err)
		}
		o, err := OpenMessage(k, testGroup, sealed, alice.id.Public().Sign, m.ID)
		if err != nil || string(o.Body) != text {
			t.Fatalf("%s: open message: %v", text, err)
		}
	}
	other := NewSenderKey(testGroup, alice.id.Public().Sign, 3)
	m := &Message{Group: testGroup, ID: NewMessageID(), Time: now.UnixNano(), Body: []byte("three")}
	if _, err := SealMessageWithHeader(alice.id, m, other, hdr); err == nil {
		t.Fatal("sealed under one key with the header of another")
	}
	if _, err := SealMessageWithHeader(alice.id, m, key, []byte("not a header")); err == nil {
		t.Fatal("sealed with a header that does not decode")
	}
}

// TestSealOwnOpened: what SealOwn returns beside the sealed bytes is what
// opening them gives, with and without a key header, so that an author's
// node that shows its own message from it shows what every reader shows.
func TestSealOwnOpened(t *testing.T) {
	now := time.Now()
	alice, bob := newPrekeyMember(t, 1, now), newPrekeyMember(t, 2, now)
	key := NewSenderKey(testGroup, alice.id.Public().Sign, 4)
	hdr, err := SealKeyHeader(key, []*prekey.Prekey{alice.prekey, bob.prekey}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]byte{nil, hdr} {
		m := &Message{Group: testGroup, ID: NewMessageID(), Head: [32]byte{9}, Time: now.UnixNano(), Body: []byte("mine")}
		sealed, own, err := SealOwn(alice.id, m, key, h)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := OpenMessage(key, testGroup, sealed, alice.id.Public().Sign, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(own, opened) {
			t.Fatalf("header %v: SealOwn gave %+v, opening gives %+v", h != nil, own, opened)
		}
		if _, err := VerifyRecord(own.Record, own.Sig); err != nil {
			t.Fatalf("the record SealOwn returns does not verify: %v", err)
		}
	}
	m := &Message{Group: testGroup, ID: NewMessageID(), Time: now.UnixNano(), Body: []byte("x")}
	if _, _, err := SealOwn(alice.id, m, NewSenderKey(testGroup, alice.id.Public().Sign, 4), hdr); err == nil {
		t.Fatal("SealOwn sealed with the header of another key")
	}
}
