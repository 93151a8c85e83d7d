// Package crypto is the cryptography of the DeMeS wire protocol: the signed
// envelope that every message between nodes travels in, the sealing of chat
// messages to a group's members, and the transcript hash chain that pins
// down a group's history. The formats are specified in docs/PROTOCOL.md, with
// test vectors in testdata/crypto.
//
// # Envelopes
//
// To send, fill an [Envelope] (type, group, recipient, a counter from the
// sender's [Counter] and the current time) and call [Sign], which returns the
// frame to put on the wire. To receive, follow these steps in order, and drop
// the frame at the first that fails, logging the error (every error wraps a
// sentinel such as [ErrSignature], so errors.Is classifies it):
//
//  1. [Verify] the frame. It checks the size and the signature over the exact
//     bytes received before decoding anything.
//  2. Check that [Envelope.Sender] is a member of [Envelope.Group] allowed to
//     send that [Type], and that [Envelope.To] is this node or zero.
//  3. [ReplayFilter.Check] the envelope, which rejects replays and stale
//     envelopes and records the counter.
//
// Raft messages between peers are many and small, and one signature each is
// what limits throughput, so the peer transport signs a [TypeBatch] envelope
// whose payload is [EncodeBatch] of many inner messages, and the receiver
// reads them back with [DecodeBatch] after verifying the batch.
//
// # Chat messages
//
// A chat message is signed inside and outside. [SealMessage] signs the
// plaintext record of a [Message] with the author's key and encrypts record
// and signature with XChaCha20-Poly1305 under a key derived from the
// author's [SenderKey] for the group's current membership epoch; the result
// is the payload of a [TypeChat] envelope's body, which the author signs in
// turn. Until the group has registered the sender key, the message also
// carries it in a key header sealed with age to every member (one X25519
// stanza each). The inner signature lets any reader prove who wrote the
// message; the outer one keeps the host that relays it from swapping
// ciphertexts. A reader learns a sender key once with [OpenSenderKey] (one
// X25519 operation, whatever the size of the group), then opens each message
// with [OpenMessage], which checks both signatures are by the same person
// and for the right group and message id: one key derivation, one AEAD
// decryption and one signature check. [ReadSealed] reads which key a message
// is under and its header's recipients without a key. So sealing and opening
// cost O(1) per message, and O(members) once per member and epoch.
//
// A [KeyRing] keeps the sender keys one member knows in one group: it opens
// each key header once, hands out the member's own key to seal with, and
// forgets the keys of past epochs. Nodes and transcript builders use one
// rather than calling [OpenSenderKey] and [NewSenderKey] themselves.
//
// # Signatures
//
// Every signature is checked under one rule, whoever checks it: one at a
// time by [VerifySignature] (the node's receive path through [Verify] and
// [OpenMessage]), or many together by [SignatureBatch], [VerifyFrames] and
// [VerifyRecords] (the transcript verifier, a node catching up). The rule,
// stated in docs/PROTOCOL.md (section Signatures), is the cofactored
// equation with strict encodings, under which a batch accepts exactly the
// signatures that single checks accept; so a node and a transcript verifier
// accept exactly the same signatures.
//
// # Transcripts
//
// [Chain] hashes the committed log entries of a group in order. Members who
// agree on a head agree on the whole history before it; with the records and
// signatures kept by [Opened], a transcript can be checked by anyone
// ([VerifyRecord]).
//
// # Limits
//
// Every input from the network is bounded before use: see [MaxFrame],
// [MaxPayload], [MaxBatchItems], [MaxBody], [MaxRecipients] and [MaxRecord].
// Decoders accept only the one deterministic encoding of each value, so
// whatever decodes re-encodes to the same bytes, and they never panic.
package crypto
