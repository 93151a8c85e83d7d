package prekey

import (
	"bytes"
	"testing"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/canon"
)

// t0 is the fixed time of the tests and vectors: 2023-11-14T22:13:20Z.
var t0 = time.Unix(1700000000, 0)

// member returns the identity of seed byte b (all 32 bytes b).
func member(t testing.TB, b byte) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// prekeyOf returns a prekey of m valid for DefaultLifetime from t0, with
// the secret seed all b.
func prekeyOf(t testing.TB, m *identity.Identity, b byte) (*Prekey, *Secret) {
	t.Helper()
	p, s, err := FromSeed(m, [SecretSize]byte(bytes.Repeat([]byte{b}, SecretSize)), t0, DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

// signRecord signs an arbitrary record as m, to build prekeys that break one
// rule other than the signature.
func signRecord(t testing.TB, m *identity.Identity, w *recordWire) []byte {
	t.Helper()
	record, err := canon.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := canon.Marshal(&signedWire{Record: record, Signature: m.Sign(signedInput(record))})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func ctxOf(sender *identity.Identity, epoch uint64) KeyContext {
	return KeyContext{Group: [16]byte{0xd0, 0xd1}, Sender: sender.Public().Sign, Epoch: epoch, KeyID: [KeyIDSize]byte{0x4b, 0x49, 0x44}}
}

// decodeWire1 decodes a version 1 key header's wire form, for tests that
// tamper with it.
func decodeWire1(h []byte) (*headerWire, error) {
	var w headerWire
	if err := canon.Decode(h, &w); err != nil {
		return nil, err
	}
	return &w, nil
}
