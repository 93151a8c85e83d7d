package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"strconv"
	"testing"
	"time"

	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/demes/demes/identity"
)

// benchEnvelope is a typical small envelope: a raft message's worth of payload.
func benchEnvelope() *Envelope {
	p := make([]byte, 200)
	rand.Read(p)
	return &Envelope{Type: TypeBatch, Group: testGroup, Counter: vecCounter, Time: vecTime, Payload: p}
}

func BenchmarkSignEnvelope(b *testing.B) {
	id := testID(b, 1)
	e := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(id, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyEnvelope(b *testing.B) {
	frame := mustSign(b, testID(b, 1), benchEnvelope())
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// batch50 returns 50 inner messages of 200 bytes each, the size of a small
// raft message.
func batch50(b *testing.B) [][]byte {
	items := make([][]byte, 50)
	for i := range items {
		items[i] = make([]byte, 200)
		rand.Read(items[i])
	}
	return items
}

// BenchmarkSignBatch50 is the sender's cost of a peer-transport batch of 50
// inner messages: encode the batch, sign one envelope.
func BenchmarkSignBatch50(b *testing.B) {
	id := testID(b, 1)
	items := batch50(b)
	b.ReportAllocs()
	for b.Loop() {
		p, err := EncodeBatch(items)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Sign(id, &Envelope{Type: TypeBatch, Counter: 1, Time: 1, Payload: p}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignBatchMiB is BenchmarkSignBatch50 for a megabyte, the most
// one raft append carries (16 messages of 64 KiB): a frame's copies are
// counted in bytes allocated.
func BenchmarkSignBatchMiB(b *testing.B) {
	id := testID(b, 1)
	items := make([][]byte, 16)
	for i := range items {
		items[i] = make([]byte, 64<<10-64)
		rand.Read(items[i])
	}
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		p, err := EncodeBatch(items)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Sign(id, &Envelope{Type: TypeBatch, Counter: 1, Time: 1, Payload: p}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyBatch50 is the receiver's cost: verify one envelope, decode
// the batch.
func BenchmarkVerifyBatch50(b *testing.B) {
	p, err := EncodeBatch(batch50(b))
	if err != nil {
		b.Fatal(err)
	}
	frame := mustSign(b, testID(b, 1), &Envelope{Type: TypeBatch, Counter: 1, Time: 1, Payload: p})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := Verify(frame)
		if err != nil {
			b.Fatal(err)
		}
		items, err := DecodeBatch(e.Payload)
		if err != nil || len(items) != 50 {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify compares ways to check one Ed25519 signature of a
// 300-byte message, the size of a small envelope: crypto/ed25519; voi with
// the same rule (VerifyOptionsStdLib), from the key's bytes and from its
// expanded form; VerifySignature, which is voi with expanded keys kept in a
// cache; and, for reference, voi's batch verification of 64 signatures by
// one key, which needs the cofactored rule (ZIP-215) that DeMeS does not use
// (see VerifySignature). Every figure is per signature.
func BenchmarkEd25519Verify(b *testing.B) {
	id := testID(b, 1)
	pub := id.Public().Sign
	msgs, sigs := make([][]byte, 64), make([][]byte, 64)
	for i := range msgs {
		msgs[i] = make([]byte, 300)
		rand.Read(msgs[i])
		sigs[i] = id.Sign(msgs[i])
	}
	stdlib := &voied25519.Options{Verify: voied25519.VerifyOptionsStdLib}
	zip215 := &voied25519.Options{Verify: voied25519.VerifyOptionsZIP_215}
	expanded, err := voied25519.NewExpandedPublicKey(pub[:])
	if err != nil {
		b.Fatal(err)
	}
	one := func(name string, verify func(msg, sig []byte) bool) {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if !verify(msgs[i%64], sigs[i%64]) {
					b.Fatal("valid signature rejected")
				}
				i++
			}
		})
	}
	one("stdlib", func(msg, sig []byte) bool { return ed25519.Verify(pub[:], msg, sig) })
	one("voi-stdlib-rule", func(msg, sig []byte) bool { return voied25519.VerifyWithOptions(pub[:], msg, sig, stdlib) })
	one("voi-stdlib-rule-expanded", func(msg, sig []byte) bool {
		return voied25519.VerifyExpandedWithOptions(expanded, msg, sig, stdlib)
	})
	one("VerifySignature", func(msg, sig []byte) bool { return VerifySignature(pub[:], msg, sig) })
	b.Run("voi-expand-key", func(b *testing.B) {
		for b.Loop() {
			if _, err := voied25519.NewExpandedPublicKey(pub[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("voi-zip215-batch64-expanded", func(b *testing.B) {
		for b.Loop() {
			v := voied25519.NewBatchVerifierWithCapacity(64)
			for i := range msgs {
				v.AddExpandedWithOptions(expanded, msgs[i], sigs[i], zip215)
			}
			if !v.VerifyBatchOnly(nil) {
				b.Fatal("valid batch rejected")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(64*b.N), "ns/sig")
	})
}

var benchSizes = []int{2, 10, 50, 200}

// benchGroup returns n identities, sorted in canonical order.
func benchGroup(b *testing.B, n int) []*identity.Identity {
	ids := make([]*identity.Identity, n)
	for i := range ids {
		s := make([]byte, 32)
		s[0], s[1] = byte(i), byte(i>>8)
		id, err := identity.FromSeed(s)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	slices.SortFunc(ids, func(x, y *identity.Identity) int { return x.Public().Compare(y.Public()) })
	return ids
}

func benchMessage() *Message {
	m := testMessage()
	m.Body = []byte("a chat message of an ordinary length, about a hundred bytes long, give or take a few words.")
	return m
}

// BenchmarkSeal seals a message with a key header to n members: what the
// first message of each member in each membership epoch costs, O(n).
func BenchmarkSeal(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ids := benchGroup(b, n)
			rs := make([]identity.PublicID, n)
			for i, id := range ids {
				rs[i] = id.Public()
			}
			var key *SenderKey
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%100 == 0 { // a node's rotation
					key = NewSenderKey(testGroup, ids[0].Public().Sign, 1)
				}
				i++
				if _, err := SealMessage(ids[0], benchMessage(), key, rs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealNoHeader seals a message under a registered sender key: what
// every other message costs, whatever the size of the group.
func BenchmarkSealNoHeader(b *testing.B) {
	alice := testID(b, 1)
	var key *SenderKey
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%100 == 0 { // a node's rotation: 100 messages a key
			key = NewSenderKey(testGroup, alice.Public().Sign, 1)
		}
		i++
		if _, err := SealMessage(alice, benchMessage(), key, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen opens a message with a key header to n members: the sender
// key from the header, then the message, as the last recipient in canonical
// order, the worst place for a reader that tried the stanzas in turn. It is
// the cost of the first message of each sender in each epoch, and should
// not grow with the group.
func BenchmarkOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ids := benchGroup(b, n)
			rs := make([]identity.PublicID, n)
			for i, id := range ids {
				rs[i] = id.Public()
			}
			m := benchMessage()
			key := NewSenderKey(testGroup, ids[0].Public().Sign, 1)
			sealed, err := SealMessage(ids[0], m, key, rs)
			if err != nil {
				b.Fatal(err)
			}
			me, sender := ids[n-1], ids[0].Public().Sign
			b.SetBytes(int64(len(sealed)))
			b.ReportAllocs()
			for b.Loop() {
				k, err := OpenSenderKey(me, testGroup, sealed, sender)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := OpenMessage(k, testGroup, sealed, sender, m.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenNoHeader opens a message under a sender key the reader has:
// one key derivation, one AEAD decryption, one signature check.
func BenchmarkOpenNoHeader(b *testing.B) {
	alice := testID(b, 1)
	m := benchMessage()
	key := NewSenderKey(testGroup, alice.Public().Sign, 1)
	sealed, err := SealMessage(alice, m, key, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(sealed)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenMessage(key, testGroup, sealed, alice.Public().Sign, m.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChainAppend is the cost per committed entry of keeping the
// transcript head.
func BenchmarkChainAppend(b *testing.B) {
	c := NewChain(testGroup)
	entry := make([]byte, 1024)
	b.SetBytes(int64(len(entry)))
	i := uint64(0)
	for b.Loop() {
		i++
		if err := c.Append(i, entry); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplayCheck is the receiver's per-envelope cost of the replay
// filter.
func BenchmarkReplayCheck(b *testing.B) {
	f := NewReplayFilter(0)
	e := &Envelope{Group: testGroup, Counter: vecCounter, Time: vecTime}
	for b.Loop() {
		e.Counter++
		if err := f.Check(e, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}
