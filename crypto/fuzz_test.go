package crypto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
		e, err := Verify(b)
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

// FuzzOpenMessage opens arbitrary bytes as the first identity of the sealed
// vectors. Property: nothing panics; whatever opens is a message that is
// sealed to the reader, whose record verifies, for the given group and
// sender; and the age layer opens nothing that age.Decrypt does not.
func FuzzOpenMessage(f *testing.F) {
	var v sealedVectors
	readVectors(f, "sealed.json", &v)
	for _, sv := range v.Sealed {
		f.Add(mustHex(f, sv.Sealed))
	}
	// Add a seed sealed to identity 1 now, in case the file is missing.
	alice := testID(f, 1)
	m := testMessage()
	sealed, err := SealMessage(alice, m, publics(alice, testID(f, 2)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte{0x82, 0x40, 0x40})
	me, sender := alice, alice.Public().Sign
	f.Fuzz(func(t *testing.T, b []byte) {
		// The age layer alone, against age.Decrypt: whatever openAge
		// opens, age opens to the same plaintext.
		if keys, ct, err := decodeSealed(b); err == nil {
			n, self := len(keys)/keySize, me.Public().Sign
			for i := range n {
				if bytes.Equal(keys[i*keySize:(i+1)*keySize], self[:]) {
					const maxPlain = MaxRecord + sigSize
					got, gerr := openAge(ct, me.AgeIdentity(), i, n, maxPlain)
					want, werr := refOpenAge(ct, me.AgeIdentity(), i, n, maxPlain)
					if gerr == nil && (werr != nil || !bytes.Equal(got, want)) {
						t.Fatalf("openAge opens what age.Decrypt does not (%v)", werr)
					}
				}
			}
		}
		o, err := OpenMessage(me, testGroup, b, sender)
		if err != nil {
			return
		}
		keys, err := SealedRecipients(b)
		if err != nil {
			t.Fatalf("opens but its recipient list does not decode: %v", err)
		}
		listed := false
		for _, k := range keys {
			listed = listed || k == me.Public().Sign
		}
		if !listed {
			t.Fatal("opens for a reader it is not sealed to")
		}
		r, err := VerifyRecord(o.Record, o.Sig)
		if err != nil {
			t.Fatalf("opens but its record does not verify: %v", err)
		}
		if r.Group != testGroup || r.Author.Sign != sender || o.Group != testGroup || o.Author.Sign != sender {
			t.Fatal("opens with the wrong group or author")
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
		if _, err := VerifyRecord(record, sig); err == nil && !m.Author.Verify(signedRecord(record), sig) {
			t.Fatal("a record verifies without its author's signature")
		}
	})
}

// FuzzVerifySignature compares VerifySignature with crypto/ed25519, which
// defines the acceptance rule, on arbitrary keys, messages and signatures
// (the seeds are the signature vectors, the edge cases of the rule).
// Property: nothing panics, and both give the same answer.
func FuzzVerifySignature(f *testing.F) {
	var v signatureVectors
	readVectors(f, "signature.json", &v)
	for _, sv := range v.Signatures {
		f.Add(mustHex(f, sv.PublicKey), mustHex(f, sv.Message), mustHex(f, sv.Signature))
	}
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if got, want := VerifySignature(pub, msg, sig), stdlibVerify(pub, msg, sig); got != want {
			t.Fatalf("key %x, message %x, signature %x: VerifySignature = %v, crypto/ed25519 = %v", pub, msg, sig, got, want)
		}
	})
}
