// Package sigrule holds DeMeS's Ed25519 acceptance rule (docs/PROTOCOL.md,
// section Signatures), so that every package that checks a signature uses
// the same one: crypto (envelopes, records, transcripts, batches) and
// crypto/prekey, which crypto imports and so cannot call back into it.
package sigrule

import "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

// Options is the rule, as curve25519-voi options: the cofactored equation
// [8][S]B = [8]R + [8][k]A, the only one a batch can check (a random linear
// combination of cofactorless equations does not imply each of them), with
// strict encodings: S below the group order, A and R canonical encodings, A
// not of small order (a small-order key verifies one forged signature on
// every message, R the identity point and S = 0: issue 15). A small-order R
// is allowed: rejecting it does not make the scheme more binding, and a
// batch equation could not tell it apart.
//
// Under the cofactored equation, single and batch verification accept the
// same signatures (ZIP-215's argument: if each [8](S_i B - R_i - k_i A_i)
// is the identity, so is the random combination a batch checks; if one is
// not, the combination is not either, but with probability about 2^-128).
//
// Nothing may change Options: it is shared.
var Options = &ed25519.Options{Verify: &ed25519.VerifyOptions{
	AllowSmallOrderR: true,
}}

// Verify reports whether sig is the signature of msg by pub under the rule,
// without the expanded-key cache of crypto.VerifySignature (for the rare
// checks of packages below crypto). A key or signature of the wrong length
// is rejected; Verify never panics.
func Verify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
		ed25519.VerifyWithOptions(pub, msg, sig, Options)
}
