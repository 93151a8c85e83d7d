// Package ratchet derives the message keys of one sender key with a hash
// chain, so that a key used and deleted cannot be derived again from what a
// member keeps (forward secrecy within a sender key). It is part of the
// cryptographic core of issue 19. The format is in docs/PROTOCOL.md,
// "Forward secrecy: prekeys and ratchet", with test vectors in
// testdata/crypto/ratchet.json. Nodes seal messages with its chain through
// package crypto (sealed message versions 4 and 5, crypto/chainkey.go),
// which keeps a key's chain from a floor rather than with [Sender] and
// [Receiver], so that a member can read its messages again within its
// retention window; those two types remain the core's reference.
//
// The sender key (32 random bytes, carried in a key header of package
// prekey) is the first chain key. Step i turns chain key i into message key
// i and chain key i+1, two HMAC-SHA256 with distinct labels, and the old
// chain key is overwritten. The author seals with a [Sender], which hands
// out counters 0, 1, 2, ... and deletes each message key after one use;
// every reader opens with a [Receiver], which keeps the keys of messages it
// skipped, within a window of [Window] counters, and deletes each once it has
// opened its message, so a counter opens at most once ([ErrReplay]).
//
// A message is sealed with XChaCha20-Poly1305 under its message key, with a
// random nonce, and with the context (whatever the caller binds the sender
// key to: group, sender, epoch, key id) and the counter in the associated
// data. Both states can be exported ([Sender.MarshalBinary],
// [Receiver.MarshalBinary]) for the caller to store encrypted, and restored.
package ratchet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"golang.org/x/crypto/chacha20poly1305"
)

// Limits of a chain.
const (
	// KeySize is the length of a chain key, a message key and a seed.
	KeySize = 32
	// Window is how far a receiver's counters may spread: it opens a
	// counter up to Window-1 past the next one it expects (deriving and
	// keeping the keys in between), and keeps the key of a skipped counter
	// while it is at most Window behind the next one. The counter before
	// the next one is always opened, so it holds at most Window-1 skipped
	// keys, 40 bytes each in its state.
	Window = 1000
	// MaxCounter is the last counter of a chain. A sender rotates its key
	// long before (every 100 messages, issue 19).
	MaxCounter = math.MaxUint32
	// MaxContext is the longest context a chain may be bound to.
	MaxContext = 255
	// Overhead is what sealing adds to a plaintext: the 24-byte nonce and
	// the 16-byte tag.
	Overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

// Labels of the chain's two HMACs, and the domain of the associated data.
const (
	messageLabel = "DeMeS ratchet message key v1"
	chainLabel   = "DeMeS ratchet chain key v1"
	aadDomain    = "DeMeS ratchet message v1\x00"
)

// Errors. Every function of this package wraps one of them, with detail.
var (
	// ErrReplay: the counter was opened already (its key is deleted).
	ErrReplay = errors.New("counter already used")
	// ErrTooOld: the counter is more than a window behind the receiver's
	// next one; its key, if it was ever skipped, is deleted.
	ErrTooOld = errors.New("counter too old")
	// ErrTooFar: the counter is a window or more ahead of the receiver's
	// next one; opening it would mean keeping too many skipped keys.
	ErrTooFar = errors.New("counter too far ahead")
	// ErrExhausted: the chain has reached MaxCounter; rotate the key.
	ErrExhausted = errors.New("chain exhausted")
	// ErrDecrypt: the message does not authenticate under the key of its
	// counter, context and associated data.
	ErrDecrypt = errors.New("message does not authenticate")
	// ErrMalformed: a sealed message or an exported state does not follow
	// the format.
	ErrMalformed = errors.New("malformed")
)

// step derives, from the chain key ck, the message key into mk and the next
// chain key into next. ck may be next: the message key is derived first.
func step(ck *[KeySize]byte, mk, next *[KeySize]byte) {
	hmacKey(ck, messageLabel, mk)
	hmacKey(ck, chainLabel, next)
}

// hmacKey sets out to HMAC-SHA256(key, label) (RFC 2104), computed on the
// stack: with a 32-byte key and a short label it is four SHA-256 blocks and
// no allocation, a third of crypto/hmac's cost, and a reader pays it twice
// a message. The test vectors check it against crypto/hmac.
func hmacKey(key *[KeySize]byte, label string, out *[KeySize]byte) {
	const block = 64
	var in [block + 64]byte // ipad block, then the label (at most 64 bytes here)
	for i := range block {
		b := byte(0)
		if i < KeySize {
			b = key[i]
		}
		in[i] = b ^ 0x36
	}
	n := copy(in[block:], label)
	inner := sha256.Sum256(in[:block+n])
	var outer [block + sha256.Size]byte
	for i := range block {
		outer[i] = in[i] ^ 0x36 ^ 0x5c
	}
	copy(outer[block:], inner[:])
	*out = sha256.Sum256(outer[:])
	clear(in[:])
	clear(outer[:])
	clear(inner[:])
}

// StepChain replaces the chain key ck by the next one, deriving no message
// key: what a reader does to reach a counter.
func StepChain(ck *[KeySize]byte) { hmacKey(ck, chainLabel, ck) }

// MessageKey sets mk to the message key of the chain key ck.
func MessageKey(ck *[KeySize]byte, mk *[KeySize]byte) { hmacKey(ck, messageLabel, mk) }

// aad is the associated data of the message at counter in the chain bound
// to context, with the caller's extra associated data: the context is
// length-prefixed and the counter fixed-size, so the parts cannot be
// confused.
func aad(context []byte, counter uint64, extra []byte) []byte {
	b := make([]byte, 0, len(aadDomain)+1+len(context)+8+len(extra))
	b = append(b, aadDomain...)
	b = append(b, byte(len(context)))
	b = append(b, context...)
	b = binary.BigEndian.AppendUint64(b, counter)
	return append(b, extra...)
}

// seal encrypts plaintext under the message key mk of counter, with a fresh
// random nonce, and returns nonce || ciphertext. The nonce is random rather
// than fixed, though each key seals once, so that a sender restored from a
// stale copy of its state, which reuses a key, does not reuse a nonce.
func seal(mk *[KeySize]byte, context []byte, counter uint64, plaintext, extra []byte) []byte {
	a, err := chacha20poly1305.NewX(mk[:])
	if err != nil {
		panic(fmt.Sprintf("ratchet: %v", err)) // cannot happen: the key is 32 bytes
	}
	out := make([]byte, chacha20poly1305.NonceSizeX, Overhead+len(plaintext))
	rand.Read(out) // never fails (crypto/rand)
	return a.Seal(out, out, plaintext, aad(context, counter, extra))
}

// OpenWithKey opens a message sealed at counter in a chain bound to context,
// with its message key alone: what a transcript verifier does with a key
// the exporter revealed. It needs no chain state, and changes none.
func OpenWithKey(mk *[KeySize]byte, context []byte, counter uint64, sealed, extra []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("open message: %w: %d bytes, at least %d", ErrMalformed, len(sealed), Overhead)
	}
	a, err := chacha20poly1305.NewX(mk[:])
	if err != nil {
		panic(fmt.Sprintf("ratchet: %v", err)) // cannot happen: the key is 32 bytes
	}
	n := chacha20poly1305.NonceSizeX
	pt, err := a.Open(nil, sealed[:n], sealed[n:], aad(context, counter, extra))
	if err != nil {
		return nil, fmt.Errorf("open message %d: %w", counter, ErrDecrypt)
	}
	return pt, nil
}

func checkContext(context []byte) error {
	if len(context) > MaxContext {
		return fmt.Errorf("%w: context of %d bytes, limit %d", ErrMalformed, len(context), MaxContext)
	}
	return nil
}

// Step derives, from the chain key ck, the message key into mk and the next
// chain key into next, as every sender and receiver of a chain does at each
// counter (see the package comment). ck may be next. It is for callers that
// keep a chain's key themselves (package crypto keeps a sender key's chain
// from the oldest message key its owner's policy still keeps).
func Step(ck *[KeySize]byte, mk, next *[KeySize]byte) { step(ck, mk, next) }

// AAD returns the associated data of the message at counter in the chain
// bound to context, with the caller's extra associated data: what [Sender]
// and [Receiver] seal and open with. context must be at most [MaxContext]
// bytes.
func AAD(context []byte, counter uint64, extra []byte) []byte {
	if checkContext(context) != nil {
		panic("ratchet: context too long")
	}
	return aad(context, counter, extra)
}
