// Package prekey is the post-quantum key distribution of forward secrecy
// (issue 19): signed, expiring encryption prekeys, and key headers that seal
// a sender key to each recipient's current prekey with HPKE (RFC 9180) over
// the hybrid KEM MLKEM768-X25519 (X-Wing), HKDF-SHA256 and
// ChaCha20Poly1305. The formats are in docs/PROTOCOL.md, "Forward secrecy:
// prekeys and ratchet", with test vectors in testdata/crypto/prekey.json.
//
// It is the cryptographic core; nodes use it (package node, keys.go and
// keylinks.go).
//
// # Prekeys
//
// A member makes a prekey with [Generate], publishes [Prekey.Bytes] and keeps
// the [Secret] in a [SecretSet]. Others read it with [Verify] (or [Decode],
// which skips the time check, to replay an old log). A member rotates its
// prekey on a schedule and deletes each secret a grace period after its
// prekey expired ([SecretSet.Expire]); that deletion is what forward secrecy
// rests on.
//
// # Key headers
//
// [SealKey] seals a sender key to the current prekeys of the recipients;
// [OpenKey] opens one's own stanza with the prekey secret; [ReadHeader]
// reads the recipients and context without a secret. The key then seeds a
// ratchet (package ratchet).
//
// # Key links
//
// [SealKeyLinked] seals a header of version 2: a full stanza also carries a
// link root, which [OpenKey] hands to [Links.KeepLink], and a recipient that
// holds a link gets later keys in a linked stanza of 120 bytes, sealed under
// a key from the link's hash chain ([SendLink], [Recipient]). Test vectors
// are in testdata/crypto/keylink.json.
package prekey
