package crypto

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/crypto/ratchet"
	"github.com/demes/demes/identity"
)

// sealN seals n messages from alice under key, without a header, and
// returns them with their ids.
func sealN(t testing.TB, alice *identity.Identity, key *SenderKey, n int) ([][]byte, [][16]byte) {
	t.Helper()
	var out [][]byte
	var ids [][16]byte
	for i := range n {
		m := testMessage()
		m.ID = [16]byte{byte(i + 1)}
		m.Body = []byte(strconv.Itoa(i))
		s, err := SealMessage(alice, m, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, ids = append(out, s), append(ids, m.ID)
	}
	return out, ids
}

// TestRatchetCounters: a key seals at counters 0, 1, 2, ...; a reader holding
// the key opens them in any order, each under its own message key only.
func TestRatchetCounters(t *testing.T) {
	alice := testID(t, 1)
	key := NewSenderKey(testGroup, alice.Public().Sign, 3)
	sealed, ids := sealN(t, alice, key, 40)
	reader, _ := UnmarshalSenderKey(must(key.MarshalBinary()))
	sender := alice.Public().Sign
	for _, i := range rand.Perm(len(sealed)) {
		info, err := ReadSealed(sealed[i])
		if err != nil || !info.Ratchet || info.Counter != uint64(i) {
			t.Fatalf("message %d: %+v, %v; want counter %d", i, info, err, i)
		}
		o, err := OpenMessage(reader, testGroup, sealed[i], sender, ids[i])
		if err != nil {
			t.Fatalf("message %d, opened out of order: %v", i, err)
		}
		if o.Counter != uint64(i)+1 || string(o.Body) != strconv.Itoa(i) {
			t.Fatalf("message %d opened as counter %d, body %q", i, o.Counter-1, o.Body)
		}
		mk, err := reader.MessageKeyOf(sealed[i], ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := OpenWithMessageKey(mk, testGroup, sealed[(i+1)%len(sealed)], sender, ids[(i+1)%len(sealed)]); err == nil {
			t.Fatalf("the key of counter %d opens another message", i)
		}
	}
}

// TestAdvanceDeletesEarlierKeys: once a holder advances its key's floor, the
// messages below it no longer open with what it keeps, in memory or in the
// stored form, while those at and after it still do; the stored form holds
// none of the earlier chain or message keys.
func TestAdvanceDeletesEarlierKeys(t *testing.T) {
	alice := testID(t, 1)
	key := NewSenderKey(testGroup, alice.Public().Sign, 3)
	sealed, ids := sealN(t, alice, key, 6)
	sender := alice.Public().Sign
	holder, _ := UnmarshalSenderKey(must(key.MarshalBinary()))
	for i := range sealed { // derives and caches every key
		if _, err := OpenMessage(holder, testGroup, sealed[i], sender, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	var old [][]byte // chain key 0 and the message keys below the floor
	old = append(old, bytes.Clone(key.Key[:]))
	for i := range 3 {
		mk, _ := key.MessageKeyOf(sealed[i], ids[i])
		old = append(old, bytes.Clone(mk[:]))
	}
	holder.Advance(3)
	stored := must(holder.MarshalBinary())
	if len(stored) != SenderKeySizeMax || holder.Floor() != 3 {
		t.Fatalf("stored form of %d bytes, floor %d", len(stored), holder.Floor())
	}
	for _, o := range old {
		if bytes.Contains(stored, o) || holder.Key == [32]byte(o) {
			t.Fatal("the advanced key still holds a key from before its floor")
		}
	}
	back, err := UnmarshalSenderKey(stored)
	if err != nil || !back.Equal(holder) {
		t.Fatalf("the stored form does not read back: %v", err)
	}
	for _, k := range []*SenderKey{holder, back} {
		for i := range sealed {
			_, err := OpenMessage(k, testGroup, sealed[i], sender, ids[i])
			switch {
			case i < 3 && !errors.Is(err, ErrMessageKeyDeleted):
				t.Fatalf("message %d below the floor: %v, want %v", i, err, ErrMessageKeyDeleted)
			case i < 3 && !errors.Is(err, ErrKeyDeleted):
				t.Fatalf("message %d: %v does not wrap ErrKeyDeleted", i, err)
			case i >= 3 && err != nil:
				t.Fatalf("message %d at or after the floor: %v", i, err)
			}
		}
	}
	// A key past its floor cannot be given to anyone in a header.
	if _, err := SealMessage(alice, testMessage(), holder, []identity.PublicID{alice.Public()}); err == nil {
		t.Fatal("sealed a header for a key whose floor advanced")
	}
	// Advancing never goes back.
	holder.Advance(1)
	if holder.Floor() != 3 {
		t.Fatalf("floor went back to %d", holder.Floor())
	}
}

// TestCounterBinding: the counter is in the associated data, so a message
// moved to another counter (re-encoded) does not open, even under that
// counter's key; a counter beyond MaxChain past the floor is refused before
// any derivation.
func TestCounterBinding(t *testing.T) {
	alice := testID(t, 1)
	key := NewSenderKey(testGroup, alice.Public().Sign, 3)
	sealed, ids := sealN(t, alice, key, 3)
	w, err := decodeSealed(sealed[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []uint64{0, 2} {
		moved := *w
		moved.Counter = c
		b, err := moved.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := OpenMessage(key, testGroup, b, alice.Public().Sign, ids[1]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("message 1 moved to counter %d: %v, want %v", c, err, ErrMalformed)
		}
	}
	far := *w
	far.Counter = MaxChain
	b, _ := far.marshal()
	if _, err := OpenMessage(key, testGroup, b, alice.Public().Sign, ids[1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("counter %d: %v, want %v", far.Counter, err, ErrMalformed)
	}
	if key.Floor() != 0 {
		t.Fatal("a refused counter moved the floor")
	}
}

// must returns b, for a call that cannot fail.
func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// sealed4Vector is one sealed message of version 4 or 5 in
// testdata/crypto/sealed4.json, with every value derived on the way.
type sealed4Vector struct {
	Name       string   `json:"name"`
	Version    uint64   `json:"version"`
	Counter    uint64   `json:"counter"`
	ChainKey   string   `json:"chain_key"` // chain key at the counter
	MessageKey string   `json:"message_key"`
	AAD        string   `json:"aad"`
	Record     string   `json:"record"`
	Signature  string   `json:"signature"`
	Recipients []string `json:"recipient_seeds,omitempty"` // of a key header to identity keys
	Prekeys    []string `json:"prekeys,omitempty"`         // of a key header to prekeys (seeds as in sealed3.json)
	Sealed     string   `json:"sealed"`
}

type sealed4Vectors struct {
	Comment    string          `json:"comment"`
	Group      string          `json:"group"`
	AuthorSeed string          `json:"author_seed"`
	Epoch      uint64          `json:"epoch"`
	KeyID      string          `json:"key_id"`
	SenderKey  string          `json:"sender_key"` // chain key 0
	Time       string          `json:"time"`
	Sealed     []sealed4Vector `json:"sealed"`
	// The key advanced to floor 2, in the form a key store keeps it.
	Floor       uint64 `json:"floor"`
	FloorStored string `json:"floor_stored"`
}

func genSealed4Vectors(t *testing.T) sealed4Vectors {
	at := time.Unix(1700000000, 0).UTC()
	rc := recordCases()[0]
	author := testID(t, rc.author)
	key := vecKey(author, vecEpoch)
	v := sealed4Vectors{Comment: vectorComment + ". Sealed messages of versions 4 and 5 (a counter in the sender key's chain, docs/PROTOCOL.md " +
		"Chat messages), generated with crypto/rand seeded (testing/cryptotest.SetGlobalRandom, seed 1); prekey i has the secret seed of 32 bytes i+0x40.",
		Group: hx(rc.m.Group[:]), AuthorSeed: hx(seed(rc.author)), Epoch: key.Epoch, KeyID: hx(key.ID[:]), SenderKey: hx(key.Key[:]),
		Time: at.Format(time.RFC3339)}
	var pks []*prekey.Prekey
	var pkSeeds []string
	for _, n := range []byte{1, 2, 3} {
		ps := [prekey.SecretSize]byte(bytes.Repeat([]byte{n + 0x40}, prekey.SecretSize))
		p, _, err := prekey.FromSeed(testID(t, n), ps, at, prekey.DefaultLifetime)
		if err != nil {
			t.Fatal(err)
		}
		pks, pkSeeds = append(pks, p), append(pkSeeds, hx(ps[:]))
	}
	ck := key.Key
	for i, c := range []string{"key header to three members' prekeys (version 5)", "no key header", "key header to two members' identity keys (version 4)"} {
		m := rc.m
		m.ID[15] = byte(i)
		var sealed []byte
		var err error
		sv := sealed4Vector{Name: c, Counter: uint64(i), ChainKey: hx(ck[:])}
		switch i {
		case 0:
			var hdr []byte
			if hdr, err = SealKeyHeader(key, pks, at); err == nil {
				sealed, _, err = SealOwn(author, &m, key, hdr)
			}
			sv.Prekeys = pkSeeds
		case 1:
			sealed, err = SealMessage(author, &m, key, nil)
		case 2:
			sealed, err = SealMessage(author, &m, key, []identity.PublicID{testID(t, 2).Public(), testID(t, 3).Public()})
			sv.Recipients = []string{hx(seed(2)), hx(seed(3))}
		}
		if err != nil {
			t.Fatal(err)
		}
		w, err := decodeSealed(sealed)
		if err != nil {
			t.Fatal(err)
		}
		o, err := OpenMessage(key, m.Group, sealed, m.Author.Sign, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var mk [32]byte
		ratchet.Step(&ck, &mk, &ck)
		sv.Version, sv.MessageKey, sv.AAD = w.Version, hx(mk[:]), hx(ratchetAAD(key.Group, key.Sender, key.Epoch, key.ID, uint64(i)))
		sv.Record, sv.Signature, sv.Sealed = hx(o.Record), hx(o.Sig), hx(sealed)
		v.Sealed = append(v.Sealed, sv)
	}
	k := key.Clone()
	k.Advance(2)
	v.Floor, v.FloorStored = 2, hx(must(k.MarshalBinary()))
	return v
}

// TestSealed4Vectors checks testdata/crypto/sealed4.json byte for byte, then
// reads it back: each message opens with its message key alone, the chain
// steps as the file says, and the key advanced to the floor opens the
// messages from it on and none before.
func TestSealed4Vectors(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	var v sealed4Vectors
	checkFile(t, "sealed4.json", genSealed4Vectors(t), &v)
	group := GroupID(unhex(t, v.Group))
	sender := testID(t, unhex(t, v.AuthorSeed)[0]).Public().Sign
	floorKey, err := UnmarshalSenderKey(unhex(t, v.FloorStored))
	if err != nil || floorKey.Floor() != v.Floor {
		t.Fatalf("floor key: %v", err)
	}
	for _, sv := range v.Sealed {
		sealed := unhex(t, sv.Sealed)
		rec, err := ReadSealed(sealed)
		if err != nil || rec.Counter != sv.Counter || !rec.Ratchet {
			t.Fatalf("%s: %+v %v", sv.Name, rec, err)
		}
		m, err := VerifyRecord(unhex(t, sv.Record), unhex(t, sv.Signature))
		if err != nil {
			t.Fatal(err)
		}
		o, err := OpenWithMessageKey([32]byte(unhex(t, sv.MessageKey)), group, sealed, sender, m.ID)
		if err != nil || !bytes.Equal(o.Record, unhex(t, sv.Record)) {
			t.Fatalf("%s: the message key does not open it: %v", sv.Name, err)
		}
		_, err = OpenMessage(floorKey, group, sealed, sender, m.ID)
		if (sv.Counter < v.Floor) != errors.Is(err, ErrMessageKeyDeleted) || (sv.Counter >= v.Floor && err != nil) {
			t.Fatalf("%s, counter %d, floor %d: %v", sv.Name, sv.Counter, v.Floor, err)
		}
	}
}

// BenchmarkOpenInOrder opens the 100 messages of one sender key in order,
// as a member applying the log does (one chain step and one message key a
// message), under a key it learnt from the header: the cost per message.
func BenchmarkOpenInOrder(b *testing.B) {
	alice := testID(b, 1)
	key := NewSenderKey(testGroup, alice.Public().Sign, 1)
	var sealed [][]byte
	var ids [][16]byte
	for i := range 100 {
		m := benchMessage()
		m.ID = [16]byte{byte(i), 1}
		s, err := SealMessage(alice, m, key, nil)
		if err != nil {
			b.Fatal(err)
		}
		sealed, ids = append(sealed, s), append(ids, m.ID)
	}
	stored := must(key.MarshalBinary())
	sender := alice.Public().Sign
	b.ReportAllocs()
	var reader *SenderKey
	i := 0
	for b.Loop() {
		if i%100 == 0 {
			reader, _ = UnmarshalSenderKey(stored)
		}
		if _, err := OpenMessage(reader, testGroup, sealed[i%100], sender, ids[i%100]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
