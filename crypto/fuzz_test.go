package crypto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/demes/demes/identity"
)

// readVectors decodes a vector file for use as fuzz seeds; a missing file
// only means fewer seeds.
func readVectors(f *testing.F, name string, v any) {
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		f.Fatal(err)
	}
}

func mustHex(f *testing.F, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzVerify feeds arbitrary bytes to Verify, and to the body decoder alone
// (random bytes almost never carry a valid signature, so this is how the
// decoder gets explored). Property: nothing panics, and whatever is accepted
// re-encodes to exactly the bytes it came from.
func FuzzVerify(f *testing.F) {
	var v envelopeVectors
	readVectors(f, "envelope.json", &v)
	for _, ev := range v.Valid {
		frame := mustHex(f, ev.Frame)
		f.Add(frame)
		f.Add(frame[headerSize:])
	}
	for _, iv := range v.Invalid {
		frame := mustHex(f, iv.Frame)
		f.Add(frame)
		if len(frame) > headerSize {
			f.Add(frame[headerSize:])
		}
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeBody(b); err == nil {
			again, err := encodeBody(e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("body %x decodes and re-encodes to %x", b, again)
			}
		}
		// ParseTrusted is Verify without the signature check: it accepts
		// what Verify accepts, with the same envelope, and never panics.
		pe, perr := ParseTrusted(b)
		e, err := Verify(b)
		// VerifyFrames answers what Verify does, for each frame.
		envs, errs := VerifyFrames([][]byte{b, b})
		for i := range envs {
			if !reflect.DeepEqual(envs[i], e) || fmt.Sprint(errs[i]) != fmt.Sprint(err) {
				t.Fatalf("VerifyFrames gives %v, %v; Verify %v, %v", envs[i], errs[i], e, err)
			}
		}
		if err == nil && (perr != nil || !reflect.DeepEqual(pe, e)) {
			t.Fatalf("Verify accepts %x, ParseTrusted gives %v, %v", b, pe, perr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		body, err := encodeBody(e)
		if err != nil {
			t.Fatal(err)
		}
		again := append(append([]byte{Version}, e.Sender[:]...), b[1+keySize:headerSize]...)
		if again = append(again, body...); !bytes.Equal(again, b) {
			t.Fatalf("frame %x verifies and re-encodes to %x", b, again)
		}
	})
}

// FuzzDecodeBatch: nothing panics, and whatever decodes re-encodes to the
// same bytes.
func FuzzDecodeBatch(f *testing.F) {
	var v envelopeVectors
	readVectors(f, "envelope.json", &v)
	for _, bv := range v.Batches {
		f.Add(mustHex(f, bv.Encoded))
	}
	f.Add([]byte{0x9f, 0x40, 0xff})
	f.Add([]byte{0x99, 0x10, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := DecodeBatch(b)
		if err != nil {
			return
		}
		if len(items) > MaxBatchItems {
			t.Fatalf("decoded %d items, limit %d", len(items), MaxBatchItems)
		}
		again, err := EncodeBatch(items)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("batch %x decodes and re-encodes to %x", b, again)
		}
	})
}

// fuzzKey is the sender key of the fuzz seeds: identity 1's key of the
// test vectors (see genSealedVectors).
func fuzzKey(tb testing.TB) *SenderKey { return vecKey(testID(tb, 1), vecEpoch) }

// fuzzSeeds adds the sealed vectors and fresh sealed messages of identity 1,
// with and without a key header.
func fuzzSeeds(f *testing.F) [][]byte {
	var v sealedVectors
	readVectors(f, "sealed.json", &v)
	var out [][]byte
	for _, sv := range v.Sealed {
		out = append(out, mustHex(f, sv.Sealed))
	}
	// Seeds sealed now, in case the file is missing.
	alice := testID(f, 1)
	for _, header := range [][]identity.PublicID{nil, publics(alice, testID(f, 2))} {
		sealed, err := SealMessage(alice, testMessage(), fuzzKey(f), header)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, sealed)
	}
	return out
}

// FuzzReadSealed reads arbitrary bytes as a sealed message, and opens its key
// header as identity 1. Property: nothing panics; whatever decodes re-encodes
// to the same bytes; the age layer opens nothing that age.Decrypt does not;
// and a key opens only for a listed reader, as the key the message names.
func FuzzReadSealed(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte{0x86, 0x02, 0x00, 0x40, 0x40, 0x40, 0x40})
	me, sender := testID(f, 1), testID(f, 1).Public().Sign
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeSealed(b)
		if err != nil {
			if _, err := ReadSealed(b); err == nil {
				t.Fatal("ReadSealed reads what does not decode")
			}
			return
		}
		again, err := w.marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("sealed message %x decodes and re-encodes to %x (%v)", b, again, err)
		}
		// The age layer alone, against age.Decrypt: whatever openAge
		// opens, age opens to the same plaintext.
		if keys, ct, err := decodeHeader(w.Header); err == nil {
			n, self := len(keys)/keySize, me.Public().Sign
			for i := range n {
				if bytes.Equal(keys[i*keySize:(i+1)*keySize], self[:]) {
					got, gerr := openAge(ct, me.AgeIdentity(), i, n, keyPlainSize)
					want, werr := refOpenAge(ct, me.AgeIdentity(), i, n, keyPlainSize)
					if gerr == nil && (werr != nil || !bytes.Equal(got, want)) {
						t.Fatalf("openAge opens what age.Decrypt does not (%v)", werr)
					}
				}
			}
		}
		info, ierr := ReadSealed(b)
		k, err := OpenSenderKey(me, testGroup, b, sender)
		if err != nil {
			return
		}
		if ierr != nil || !slices.Contains(info.Recipients, me.Public().Sign) {
			t.Fatalf("a key opens for a reader the header does not list (%v)", ierr)
		}
		if k.Group != testGroup || k.Sender != sender || k.Epoch != info.Epoch || k.ID != info.KeyID {
			t.Fatal("the opened key is not the one the message names")
		}
	})
}

// FuzzOpenMessage opens arbitrary bytes with identity 1's sender key of the
// vectors. Property: nothing panics; whatever opens names that key, and is a
// message whose record verifies, for the given group, sender and id.
func FuzzOpenMessage(f *testing.F) {
	id := testMessage().ID
	for _, s := range fuzzSeeds(f) {
		f.Add(s, id[:])
	}
	f.Add([]byte{0x86, 0x02, 0x00, 0x40, 0x40, 0x40, 0x40}, []byte{})
	key := fuzzKey(f)
	f.Fuzz(func(t *testing.T, b, idb []byte) {
		var id [16]byte
		copy(id[:], idb)
		o, err := OpenMessage(key, testGroup, b, key.Sender, id)
		// OpenMessages answers the same, alone and between two others.
		for _, n := range []int{1, 3} {
			batch := make([]ToOpen, n)
			for i := range batch {
				batch[i] = ToOpen{Key: key, Group: testGroup, Sealed: b, Sender: key.Sender, ID: id}
			}
			bo, berr := OpenMessages(batch)
			if !reflect.DeepEqual(bo[n/2], o) || fmt.Sprint(berr[n/2]) != fmt.Sprint(err) {
				t.Fatalf("OpenMessages gives %v, %v; OpenMessage %v, %v", bo[n/2], berr[n/2], o, err)
			}
		}
		if err != nil {
			return
		}
		info, err := ReadSealed(b)
		if err != nil || info.Epoch != key.Epoch || info.KeyID != key.ID {
			t.Fatalf("opens, but names another key or does not read (%v)", err)
		}
		r, err := VerifyRecord(o.Record, o.Sig)
		if err != nil {
			t.Fatalf("opens but its record does not verify: %v", err)
		}
		if r.Group != testGroup || r.Author.Sign != key.Sender || r.ID != id || o.ID != id {
			t.Fatal("opens with the wrong group, author or id")
		}
	})
}

// FuzzVerifyRecord feeds arbitrary records to VerifyRecord, and to the
// record decoder alone. Property: nothing panics, whatever decodes
// re-encodes to the same bytes, and whatever verifies is signed by its author.
func FuzzVerifyRecord(f *testing.F) {
	var v messageVectors
	readVectors(f, "message.json", &v)
	for _, rv := range v.Records {
		f.Add(mustHex(f, rv.Record), mustHex(f, rv.Signature))
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, record, sig []byte) {
		m, err := decodeRecord(record)
		if err != nil {
			if _, err := VerifyRecord(record, sig); err == nil {
				t.Fatal("a record that does not decode verifies")
			}
			return
		}
		again, err := encodeRecord(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, record) {
			t.Fatalf("record %x decodes and re-encodes to %x", record, again)
		}
		if _, err := VerifyRecord(record, sig); err == nil && !stdlibVerify(m.Author.Sign[:], signedRecord(record), sig) {
			t.Fatal("a record verifies without its author's signature")
		}
	})
}

// FuzzVerifySignature compares VerifySignature with two other
// computations on arbitrary keys, messages and signatures (the seeds are the
// signature vectors, the edge cases of the rule): voi's FIPS 186-5 rule
// without its small-order keys, which is DeMeS's rule, and crypto/ed25519,
// whose cofactorless equation accepts a subset of it (DeMeS's old rule).
// Property: nothing panics, VerifySignature gives the rule's answer, and it
// accepts whatever crypto/ed25519 accepts under a key that is not weak.
func FuzzVerifySignature(f *testing.F) {
	var v signatureVectors
	readVectors(f, "signature.json", &v)
	for _, sv := range v.Signatures {
		f.Add(mustHex(f, sv.PublicKey), mustHex(f, sv.Message), mustHex(f, sv.Signature))
	}
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		got := VerifySignature(pub, msg, sig)
		if want := fipsVerify(pub, msg, sig) && !weakKey(pub); got != want {
			t.Fatalf("key %x, message %x, signature %x: VerifySignature = %v, the rule %v", pub, msg, sig, got, want)
		}
		if stdlibVerify(pub, msg, sig) && !weakKey(pub) && !got {
			t.Fatalf("key %x, message %x, signature %x: crypto/ed25519 accepts, VerifySignature rejects", pub, msg, sig)
		}
	})
}
