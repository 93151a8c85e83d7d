package crypto

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/internal/testutil"
)

// checkedBatch collects signatures with the answer each must get, and checks
// them in one SignatureBatch.
type checkedBatch struct {
	pubs, msgs, sigs [][]byte
	want             []bool
}

func (c *checkedBatch) add(pub, msg, sig []byte, want bool) {
	c.pubs = append(c.pubs, pub)
	c.msgs = append(c.msgs, msg)
	c.sigs = append(c.sigs, sig)
	c.want = append(c.want, want)
}

// verify checks that a SignatureBatch of the signatures gives each its
// answer, and names the first invalid one.
func (c *checkedBatch) verify(tb testing.TB) {
	tb.Helper()
	var b SignatureBatch
	for i := range c.pubs {
		b.Add(c.pubs[i], c.msgs[i], c.sigs[i])
	}
	if b.Len() != len(c.pubs) {
		tb.Fatalf("Len = %d after %d entries", b.Len(), len(c.pubs))
	}
	ok, first := b.Verify()
	if !slices.Equal(ok, c.want) {
		for i := range ok {
			if ok[i] != c.want[i] {
				tb.Fatalf("entry %d of %d: the batch says %v, want %v", i, len(ok), ok[i], c.want[i])
			}
		}
		tb.Fatalf("the batch answers %d entries, want %d", len(ok), len(c.want))
	}
	if want := slices.Index(c.want, false); first != want {
		tb.Fatalf("the batch names entry %d as the first invalid one, want %d", first, want)
	}
}

// validSignatures returns n valid signatures by a few keys, for batches.
func validSignatures(tb testing.TB, n int) *checkedBatch {
	var c checkedBatch
	for i := range n {
		id := testID(tb, byte(1+i%5))
		pub := id.Public().Sign
		msg := fmt.Appendf(nil, "valid signature %d", i)
		c.add(pub[:], msg, id.Sign(msg), true)
	}
	return &c
}

// checkInBatches checks one signature alone in a batch and among valid ones
// in two sizes of equation, and returns the batches' answer (after checking
// that every batch gives the same one and accepts the valid signatures
// around it).
func checkInBatches(tb testing.TB, pub, msg, sig []byte) bool {
	tb.Helper()
	var alone SignatureBatch
	alone.Add(pub, msg, sig)
	ok, first := alone.Verify()
	got := ok[0]
	if (first == 0) == got {
		tb.Fatalf("a batch of one answers %v, and names entry %d as the first invalid one", got, first)
	}
	// Among 3 and 60 valid signatures: one small equation and one of
	// Straus's size. (A batch of more than BatchSize, whose second equation
	// the signature would start, costs seconds under -race per case;
	// TestBatchEquationAttacks and TestSignatureBatchNamesBadEntries cover
	// entries there.)
	for _, before := range []int{3, 60} {
		c := validSignatures(tb, before)
		c.add(pub, msg, sig, got)
		rest := validSignatures(tb, 6)
		for i := range rest.pubs {
			c.add(rest.pubs[i], rest.msgs[i], rest.sigs[i], true)
		}
		c.verify(tb)
	}
	return got
}

// TestTorsionSignatureSplitsOldRule is the attack a batch verifier opens
// under DeMeS's old, cofactorless rule: a member signs with a nonce point
// carrying a component of order 8 (or with a key carrying one). A node
// checking one signature at a time under the old rule rejects it; the
// batch equation, which is cofactored, accepts it among valid signatures. A
// transcript verifier or a catching-up node that batched would then accept
// an entry the group rejected, and their states would split. Under the
// cofactored rule, single and batch checks agree on it.
func TestTorsionSignatureSplitsOldRule(t *testing.T) {
	a := scalarFrom(t, "DeMeS torsion attack key")
	var A curve.EdwardsPoint
	A.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, a)
	pub := encodePoint(&A)
	msg := []byte("a message a member signs with torsion in R")
	r := scalarFrom(t, "DeMeS torsion attack nonce")
	for o := 1; o < 8; o++ {
		sig := signWith(t, a, pub, r, curve.EIGHT_TORSION[o], msg)

		if oldVerify(pub, msg, sig) {
			t.Fatalf("torsion point %d: the old rule accepts the signature; the attack needs one it rejects", o)
		}
		// The batch equation of curve25519-voi, with valid signatures
		// around the crafted one, as a batch verifier would check it.
		v := voi.NewBatchVerifier()
		c := validSignatures(t, 5)
		for i := range c.pubs {
			v.AddWithOptions(c.pubs[i], c.msgs[i], c.sigs[i], signatureRule)
		}
		v.AddWithOptions(pub, msg, sig, signatureRule)
		if !v.VerifyBatchOnly(nil) {
			t.Fatalf("torsion point %d: the batch equation rejects the signature", o)
		}
		t.Logf("torsion point %d: the old rule rejects it one at a time, a batch accepts it", o)

		// The new rule: one check and a batch agree (accept).
		if !VerifySignature(pub, msg, sig) {
			t.Fatalf("torsion point %d: VerifySignature rejects a signature the cofactored equation accepts", o)
		}
		if !checkInBatches(t, pub, msg, sig) {
			t.Fatalf("torsion point %d: a SignatureBatch rejects the signature", o)
		}
	}
}

// TestSignatureBatchNamesBadEntries puts invalid entries of every kind among
// valid ones, across several equations, and checks that the batch rejects
// exactly them and names the first.
func TestSignatureBatchNamesBadEntries(t *testing.T) {
	c := validSignatures(t, 3*BatchSize+7)
	bad := map[int]func(pub, msg, sig []byte) ([]byte, []byte, []byte){
		5:               func(pub, msg, sig []byte) ([]byte, []byte, []byte) { return pub, append(msg, '!'), sig },
		BatchSize - 1:   func(pub, msg, sig []byte) ([]byte, []byte, []byte) { return pub, msg, plusL(sig) },
		BatchSize:       func(pub, msg, sig []byte) ([]byte, []byte, []byte) { return pub, msg, sig[:63] },
		BatchSize + 1:   func(pub, msg, sig []byte) ([]byte, []byte, []byte) { return notOnCurve(t), msg, sig },
		2 * BatchSize:   func(pub, msg, sig []byte) ([]byte, []byte, []byte) { return identityPoint, msg, sig },
		3*BatchSize + 6: func(pub, msg, sig []byte) ([]byte, []byte, []byte) { return nil, nil, nil },
	}
	for i, f := range bad {
		c.pubs[i], c.msgs[i], c.sigs[i] = f(c.pubs[i], c.msgs[i], bytes.Clone(c.sigs[i]))
		c.want[i] = false
	}
	c.verify(t)

	// The same with the first entry bad, and with none.
	c.sigs[0] = bytes.Clone(c.sigs[0])
	c.sigs[0][0] ^= 1
	c.want[0] = false
	c.verify(t)
	all := validSignatures(t, 2*BatchSize+1)
	all.verify(t)
	var empty SignatureBatch
	if ok, first := empty.Verify(); len(ok) != 0 || first != -1 {
		t.Fatalf("an empty batch answers %v, %d", ok, first)
	}
}

// TestVerifyFramesMatchesVerify checks that VerifyFrames answers, frame by
// frame, what Verify does: on the envelope vectors, valid and invalid, and on
// a valid frame with each of its bytes changed.
func TestVerifyFramesMatchesVerify(t *testing.T) {
	var frames [][]byte
	v := genEnvelopeVectors(t)
	for _, ev := range v.Valid {
		frames = append(frames, unhex(t, ev.Frame))
	}
	for _, iv := range v.Invalid {
		frames = append(frames, unhex(t, iv.Frame))
	}
	good := frames[0]
	for i := range good {
		f := bytes.Clone(good)
		f[i] ^= 0x40
		frames = append(frames, f)
	}
	frames = append(frames, nil, []byte{Version}, make([]byte, MaxFrame+1))
	envs, errs := VerifyFrames(frames)
	if len(envs) != len(frames) || len(errs) != len(frames) {
		t.Fatalf("%d frames, %d envelopes, %d errors", len(frames), len(envs), len(errs))
	}
	accepted := 0
	for i, f := range frames {
		env, err := Verify(f)
		if !reflect.DeepEqual(env, envs[i]) || fmt.Sprint(err) != fmt.Sprint(errs[i]) {
			t.Fatalf("frame %d: VerifyFrames gives %v, %v; Verify %v, %v", i, envs[i], errs[i], env, err)
		}
		if err == nil {
			accepted++
		}
	}
	if accepted != len(v.Valid) {
		t.Fatalf("%d frames accepted, want the %d valid vectors", accepted, len(v.Valid))
	}
}

// TestVerifyRecordsMatchesVerifyRecord checks that VerifyRecords answers,
// record by record, what VerifyRecord does.
func TestVerifyRecordsMatchesVerifyRecord(t *testing.T) {
	var records, sigs [][]byte
	for i := range 2*BatchSize + 3 {
		id := testID(t, byte(1+i%3))
		m := &Message{Group: testGroup, Author: id.Public(), ID: [16]byte{byte(i)}, Time: int64(i), Body: fmt.Appendf(nil, "record %d", i)}
		record, err := encodeRecord(m)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, record)
		sigs = append(sigs, id.Sign(signedRecord(record)))
	}
	sigs[4] = bytes.Clone(sigs[4])
	sigs[4][40] ^= 1                            // a bad signature
	records[BatchSize] = records[BatchSize][1:] // a malformed record
	sigs[BatchSize+1] = nil                     // no signature
	msgs, errs := VerifyRecords(records, sigs)
	bad := 0
	for i := range records {
		m, err := VerifyRecord(records[i], sigs[i])
		if !reflect.DeepEqual(m, msgs[i]) || fmt.Sprint(err) != fmt.Sprint(errs[i]) {
			t.Fatalf("record %d: VerifyRecords gives %v, %v; VerifyRecord %v, %v", i, msgs[i], errs[i], m, err)
		}
		if err != nil {
			bad++
		}
	}
	if bad != 3 {
		t.Fatalf("%d records rejected, want 3", bad)
	}
	if m, e := VerifyRecords(records, sigs[:2]); len(m) != 2 || len(e) != 2 {
		t.Fatalf("records and signatures of different lengths: %d results", len(m))
	}
}

// TestSignatureBatchConcurrent runs batches on many goroutines at once, as
// the transcript verifier and the node's workers do (run it with -race):
// they share the expanded-key cache.
func TestSignatureBatchConcurrent(t *testing.T) {
	c := validSignatures(t, BatchSize+3)
	c.sigs[7] = plusL(c.sigs[7])
	c.want[7] = false
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.verify(t)
		}()
	}
	wg.Wait()
}

// FuzzSignatureBatch checks a fuzzed signature in a batch of valid ones,
// large enough to be checked by an equation (minBatch), against
// VerifySignature and an independent computation of the rule (voi's FIPS
// 186-5 rule, without small-order keys); one of the valid signatures is
// changed by XOR with flip, so that the fuzzer also explores signatures
// near valid ones, which random bytes never are. Property: nothing panics,
// and the batch answers for every entry what VerifySignature does.
func FuzzSignatureBatch(f *testing.F) {
	var v signatureVectors
	readVectors(f, "signature.json", &v)
	for _, sv := range v.Signatures {
		f.Add(mustHex(f, sv.PublicKey), mustHex(f, sv.Message), mustHex(f, sv.Signature), []byte{})
	}
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	f.Add([]byte{}, []byte{}, []byte{}, append(make([]byte, 63), 0x10)) // S + 2^252
	valid := validSignatures(f, minBatch)
	f.Fuzz(func(t *testing.T, pub, msg, sig, flip []byte) {
		want := fipsVerify(pub, msg, sig) && !weakKey(pub)
		if got := VerifySignature(pub, msg, sig); got != want {
			t.Fatalf("key %x, message %x, signature %x: VerifySignature = %v, the rule %v", pub, msg, sig, got, want)
		}
		var c checkedBatch
		at := len(msg) % (len(valid.pubs) + 1)
		for i := range valid.pubs {
			if i == at {
				c.add(pub, msg, sig, want)
			}
			s := valid.sigs[i]
			if i == 1 {
				s = bytes.Clone(s)
				for j := range min(len(s), len(flip)) {
					s[j] ^= flip[j]
				}
			}
			c.add(valid.pubs[i], valid.msgs[i], s, VerifySignature(valid.pubs[i], valid.msgs[i], s))
		}
		if at == len(valid.pubs) {
			c.add(pub, msg, sig, want)
		}
		c.verify(t)
	})
}

// BenchmarkSignatureBatch is the cost per signature of a batch of valid
// signatures by five keys (a group's few signers), by batch size; size 0
// is VerifySignature. The keys=distinct cases sign each message with its
// own key, the worst case for a batch (no two entries share a term).
// cpu-ns/sig is the process's CPU time per signature, which a shared
// machine's other work does not inflate as it does ns/op.
func BenchmarkSignatureBatch(b *testing.B) {
	c := validSignatures(b, 512)
	distinct := distinctSignatures(b, 128)
	run := func(b *testing.B, c *checkedBatch, n int) {
		cpu := testutil.CPUTime()
		if n == 0 {
			for range b.N {
				if !VerifySignature(c.pubs[0], c.msgs[0], c.sigs[0]) {
					b.Fatal("rejected")
				}
			}
		} else {
			for range b.N / n {
				var v SignatureBatch
				for i := range n {
					v.Add(c.pubs[i], c.msgs[i], c.sigs[i])
				}
				if _, first := v.Verify(); first != -1 {
					b.Fatal("rejected")
				}
			}
		}
		if cpu := testutil.CPUTime() - cpu; cpu > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/sig")
		}
	}
	for _, n := range []int{0, 1, 2, 4, 8, 16, 32, 64, 93, 128, 192, 256, 384, 512} {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) { run(b, c, n) })
	}
	for _, n := range []int{16, 64, 128} {
		b.Run(fmt.Sprintf("keys=distinct/size=%d", n), func(b *testing.B) { run(b, distinct, n) })
	}
}

// distinctSignatures returns n valid signatures, each by its own key.
func distinctSignatures(tb testing.TB, n int) *checkedBatch {
	var c checkedBatch
	for i := range n {
		id := testID(tb, byte(100+i))
		pub := id.Public().Sign
		msg := fmt.Appendf(nil, "signature by key %d", i)
		c.add(pub[:], msg, id.Sign(msg), true)
	}
	return &c
}

// resealed decrypts sealed under key, lets change alter the plaintext
// (record || signature), and seals it again: a message whose ciphertext
// authenticates but whose content is whatever change makes it.
func resealed(t *testing.T, key *SenderKey, sealed []byte, id [16]byte, change func(pt []byte)) []byte {
	w, err := decodeSealed(sealed)
	if err != nil {
		t.Fatal(err)
	}
	mk, aad, err := key.keysFor(w, id)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(mk)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := aead.Open(nil, w.Nonce, w.Ciphertext, aad)
	if err != nil {
		t.Fatal(err)
	}
	change(pt)
	w.Ciphertext = aead.Seal(nil, w.Nonce, pt, aad)
	out, err := w.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenMessagesMatchesOpenMessage checks that OpenMessages answers,
// message by message, what OpenMessage does: valid messages by two authors
// across several equations, and messages that fail before, at and after
// the signature check.
func TestOpenMessagesMatchesOpenMessage(t *testing.T) {
	alice, bob := testID(t, 1), testID(t, 2)
	ka, kb := NewSenderKey(testGroup, alice.Public().Sign, 1), NewSenderKey(testGroup, bob.Public().Sign, 1)
	var msgs []ToOpen
	for i := range 2*BatchSize + 5 {
		author, key := alice, ka
		if i%3 == 0 {
			author, key = bob, kb
		}
		m := &Message{Group: testGroup, ID: [16]byte{byte(i), 1}, Time: int64(i), Body: fmt.Appendf(nil, "message %d", i)}
		sealed, err := SealMessage(author, m, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, ToOpen{Key: key, Group: testGroup, Sealed: sealed, Sender: key.Sender, ID: m.ID})
	}
	bad := map[int]string{}
	// A bad signature in a ciphertext that authenticates.
	msgs[5].Sealed = resealed(t, msgs[5].Key, msgs[5].Sealed, msgs[5].ID, func(pt []byte) { pt[len(pt)-1] ^= 1 })
	bad[5] = "signature"
	msgs[BatchSize+2].Sealed = resealed(t, msgs[BatchSize+2].Key, msgs[BatchSize+2].Sealed, msgs[BatchSize+2].ID, func(pt []byte) { pt[len(pt)-40] ^= 1 })
	bad[BatchSize+2] = "signature"
	// A record that does not decode.
	msgs[7].Sealed = resealed(t, msgs[7].Key, msgs[7].Sealed, msgs[7].ID, func(pt []byte) { pt[0] = 0xff })
	bad[7] = "malformed"
	msgs[8].Key = nil
	bad[8] = "nil key"
	msgs[11].Sender = bob.Public().Sign // the key is alice's
	bad[11] = "wrong key"
	msgs[10].Sealed = msgs[10].Sealed[:20]
	bad[10] = "malformed"
	msgs[BatchSize].Group = GroupID{1}
	bad[BatchSize] = "wrong key"
	msgs[BatchSize+1].Sealed = bytes.Clone(msgs[BatchSize+1].Sealed)
	msgs[BatchSize+1].Sealed[len(msgs[BatchSize+1].Sealed)-1] ^= 1
	bad[BatchSize+1] = "does not authenticate"

	opened, errs := OpenMessages(msgs)
	for i, o := range msgs {
		want, err := OpenMessage(o.Key, o.Group, o.Sealed, o.Sender, o.ID)
		if !reflect.DeepEqual(want, opened[i]) || fmt.Sprint(err) != fmt.Sprint(errs[i]) {
			t.Fatalf("message %d: OpenMessages gives %v, %v; OpenMessage %v, %v", i, opened[i], errs[i], want, err)
		}
		if (err != nil) != (bad[i] != "") {
			t.Fatalf("message %d: error %v, but it is %q", i, err, bad[i])
		}
	}
	if o, e := OpenMessages(nil); len(o) != 0 || len(e) != 0 {
		t.Fatal("results for no messages")
	}
}
