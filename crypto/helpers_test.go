package crypto

import (
	"bytes"
	"testing"

	"github.com/demes/demes/identity"
)

// seed returns the test seed of identity n: 32 bytes of n, as in the
// identity package's tests and the test vectors.
func seed(n byte) []byte { return bytes.Repeat([]byte{n}, 32) }

// testID returns the identity derived from seed(n).
func testID(tb testing.TB, n byte) *identity.Identity {
	tb.Helper()
	id, err := identity.FromSeed(seed(n))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// testGroup is the group of the test vectors: bytes 0x10 to 0x1f.
var testGroup = GroupID{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}

// signRaw signs an arbitrary body as id, the way Sign does, so that tests can
// build frames whose signature is valid but whose body is not.
func signRaw(id *identity.Identity, version byte, body []byte) []byte {
	pub := id.Public().Sign
	head := append([]byte{version}, pub[:]...)
	sig := id.Sign(signedEnvelope(head, body))
	return append(append(head, sig...), body...)
}

// mustSign signs e as id or fails the test.
func mustSign(tb testing.TB, id *identity.Identity, e *Envelope) []byte {
	tb.Helper()
	f, err := Sign(id, e)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// publics returns the public ids of ids.
func publics(ids ...*identity.Identity) []identity.PublicID {
	out := make([]identity.PublicID, len(ids))
	for i, id := range ids {
		out[i] = id.Public()
	}
	return out
}
