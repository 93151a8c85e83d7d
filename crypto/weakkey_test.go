package crypto

import (
	"encoding/hex"
	"testing"
)

// TestWeakKeyForgery is the attack of issue 15 on the signature check: an
// ed25519 public key of small order (here the identity point) verifies the
// same forged signature (R = the identity point, s = 0) on any message, so
// an outsider could sign as an identity built on such a key. Signature
// checks must refuse small-order and non-canonical keys.
func TestWeakKeyForgery(t *testing.T) {
	identityPoint := make([]byte, 32)
	identityPoint[0] = 1
	forged := make([]byte, 64)
	copy(forged, identityPoint) // R = identity, s = 0
	for _, msg := range []string{"invite myself", "remove the creator", ""} {
		if VerifySignature(identityPoint, []byte(msg), forged) {
			t.Errorf("a forged signature under a small-order key verified %q", msg)
		}
	}
	// The identity point again, written with y = p + 1: non-canonical.
	nonCanonical, _ := hex.DecodeString("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	copy(forged, nonCanonical)
	if VerifySignature(nonCanonical, []byte("x"), forged) {
		t.Error("a forged signature under a non-canonical small-order key verified")
	}
}
