package crypto

import (
	"sync"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/demes/demes/internal/sigrule"
)

// VerifySignature reports whether sig is the Ed25519 signature of msg by the
// public key pub. It is the one signature check of DeMeS: envelopes
// ([Verify]), message records ([VerifyRecord]), prekeys and transcripts all
// use it or [SignatureBatch], which accepts exactly the same signatures, so a
// node, a batch and a transcript verifier agree on every signature.
//
// The acceptance rule is the one docs/PROTOCOL.md (section Signatures)
// states: S must be below the group order; the public key A and the point R
// must be canonical encodings of curve points; A must not be of small order
// (R may be); and the cofactored equation [8][S]B = [8]R + [8][k]A must
// hold, where k = SHA-512(R || A || msg) over the bytes as given. It is
// implemented with curve25519-voi, using an expanded form of each key that is
// kept for the next signature by the same key (a group has few signers).
//
// A key or signature of the wrong length is rejected; VerifySignature never
// panics, whatever the input.
func VerifySignature(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	k := expandedKeys.get([32]byte(pub))
	if k == nil {
		return false // not a point on the curve
	}
	return ed25519.VerifyExpandedWithOptions(k.exp, msg, sig, signatureRule)
}

// signatureRule is DeMeS's acceptance rule (internal/sigrule says why it is
// this one). The cofactorless equation DeMeS had before differs from it only
// on signatures with a small-order component, which only the key's holder
// can make (TestTorsionSignatureSplitsOldRule).
var signatureRule = sigrule.Options

// expandedKeys caches the expanded form of the keys that signed recently.
var expandedKeys = newKeyCache(1024)

// keyCache holds expanded public keys in two generations of at most max keys
// each: a key is looked up in the current generation, then in the previous
// one (and moved back to the current); when the current one is full it
// becomes the previous one, and the oldest keys are dropped. The keys in use
// (a group's members) stay. A peer sending frames under ever new keys costs
// the receiver one expansion each (about a quarter of a verification), and
// the cache at most 2*max keys of memory (about 1.7 KiB each).
type keyCache struct {
	mu       sync.RWMutex
	max      int
	cur, old map[[32]byte]*sigKey
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, cur: make(map[[32]byte]*sigKey, max)}
}

// get returns the expanded form of pub, or nil if pub is not the encoding of
// a curve point.
func (c *keyCache) get(pub [32]byte) *sigKey {
	c.mu.RLock()
	k := c.cur[pub]
	c.mu.RUnlock()
	if k != nil {
		return k
	}

	c.mu.Lock()
	k = c.cur[pub]
	if k == nil {
		if k = c.old[pub]; k != nil {
			delete(c.old, pub)
			c.putLocked(pub, k)
		}
	}
	c.mu.Unlock()
	if k != nil {
		return k
	}

	// Expand outside the lock: it is the slow part, and two goroutines
	// expanding the same key only waste a little work.
	k = newSigKey(pub)
	if k == nil {
		return nil // not cached: rejecting such a key costs less than expanding one
	}
	c.mu.Lock()
	c.putLocked(pub, k)
	c.mu.Unlock()
	return k
}

func (c *keyCache) putLocked(pub [32]byte, k *sigKey) {
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[[32]byte]*sigKey, c.max)
	}
	c.cur[pub] = k
}

// sigKey is a public key in the two forms the checks use: curve25519-voi's
// expanded key, for single checks, and the decoded point with the rule's
// conditions on it, for batch equations (batcheq.go).
type sigKey struct {
	exp *ed25519.ExpandedPublicKey
	// enc is the key as given, which the challenge hashes.
	enc [32]byte
	// point is A, decoded from enc.
	point curve.EdwardsPoint
	// strict is whether A passes the rule's conditions on the key: a
	// canonical encoding, not a point of small order. voi's expanded key
	// holds the same two facts, but privately.
	strict bool
}

// newSigKey decodes pub, or returns nil if it is not the encoding of a curve
// point.
func newSigKey(pub [32]byte) *sigKey {
	exp, err := ed25519.NewExpandedPublicKey(pub[:])
	if err != nil {
		return nil
	}
	k := &sigKey{exp: exp, enc: pub}
	c := curve.CompressedEdwardsY(pub)
	if _, err := k.point.SetCompressedY(&c); err != nil {
		return nil // voi decoded it above: cannot happen
	}
	k.strict = c.IsCanonicalVartime() && !k.point.IsSmallOrder()
	return k
}
