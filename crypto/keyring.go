package crypto

import (
	"errors"
	"fmt"

	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
)

// KeyRef names a sender key the way a sealed message names the key it is
// sealed under: by its owner (the message's sender), membership epoch and
// key id. [ReadSealed] reads the epoch and key id of a message.
type KeyRef struct {
	Sender [32]byte // the owner's ed25519 key
	Epoch  uint64
	ID     [KeyIDSize]byte
}

// Ref returns the name of k.
func (k *SenderKey) Ref() KeyRef { return KeyRef{Sender: k.Sender, Epoch: k.Epoch, ID: k.ID} }

// KeyRing holds the sender keys that one member knows in one group: the
// keys it learnt from key headers, to open messages with, and its own keys,
// to seal with. A node keeps one per group; a transcript builder keeps one
// for the exporter.
//
// The usual life of a ring:
//
//   - [KeyRing.Open] returns the key an accepted message is sealed under,
//     from the ring, or else from the message's key header, which it opens
//     as the ring's owner and keeps (one X25519 operation, once per sender
//     and epoch).
//   - [KeyRing.SealingKey] returns the owner's key to seal with in the
//     current epoch, made the first time it is asked for.
//   - When the member set changes, [KeyRing.Forget] drops the other members'
//     keys of the earlier epochs: no message sealed under one can be accepted
//     any more. The owner's keys stay until [KeyRing.ForgetOwn], since its
//     own queued messages may be sealed under one and must be opened again
//     (after a restart) to be sealed anew.
//
// The ring keeps keys in memory only. A node keeps the keys its policy
// allows in its encrypted key store and gives them back to a new ring with
// [KeyRing.Add] at start; headers sealed to prekeys open only while the
// member still holds the prekey's secret ([KeyRing.UsePrekeys]).
//
// A KeyRing is not safe for concurrent use, except that [KeyRing.Lookup]
// may be called from several goroutines at once while nothing changes the
// ring, as with a map.
type KeyRing struct {
	me      *identity.Identity
	self    [32]byte // me's ed25519 key: the Sender of its own keys
	group   GroupID
	keys    map[KeyRef]*SenderKey // every key, the owner's included
	sealing *SenderKey            // the owner's key to seal with, if any yet
	secrets prekey.Secrets        // the owner's prekey secrets, or nil
}

// UsePrekeys has the ring open key headers sealed to the owner's prekeys
// (sealed message version 3) with the secrets in s. Without it, such a
// header fails with [ErrKeyDeleted].
func (r *KeyRing) UsePrekeys(s prekey.Secrets) { r.secrets = s }

// Add puts k, a key of the ring's group kept from earlier (the node's key
// store), in the ring, as if it had been opened from its header.
func (r *KeyRing) Add(k *SenderKey) {
	if k != nil && k.Group == r.group {
		r.keys[k.Ref()] = k
	}
}

// Drop removes the key named ref from the ring, as when the node's policy
// deletes it: the ring opens messages under it only if their header opens
// again.
func (r *KeyRing) Drop(ref KeyRef) {
	delete(r.keys, ref)
	if r.sealing != nil && r.sealing.Ref() == ref {
		r.sealing = nil
	}
}

// NewKeyRing returns an empty ring of me's keys in group.
func NewKeyRing(me *identity.Identity, group GroupID) *KeyRing {
	return &KeyRing{me: me, self: me.Public().Sign, group: group, keys: map[KeyRef]*SenderKey{}}
}

// Lookup returns the key named ref, or nil if the ring does not hold it.
func (r *KeyRing) Lookup(ref KeyRef) *SenderKey { return r.keys[ref] }

// Open returns the sender key that sealed, a message from ref.Sender that
// names the key ref ([ReadSealed]), is sealed under: the ring's key of that
// name, or else the key in the message's key header, opened as the ring's
// owner and kept in the ring.
//
// It fails with [ErrNotRecipient] when the ring does not hold the key and
// the header is not sealed to the owner, or the message has no header (that
// error also wraps [ErrNoHeader]): a message the owner was never given the
// key of, such as one from before it joined. A header that does not hold the
// key ref names fails with [ErrWrongKey]; any other error is that of
// [OpenSenderKey].
func (r *KeyRing) Open(ref KeyRef, sealed []byte) (*SenderKey, error) {
	if k := r.keys[ref]; k != nil {
		return k, nil
	}
	k, err := OpenSenderKeyRef(r.me, r.secrets, r.group, ref, sealed)
	if err != nil {
		return nil, err
	}
	r.keys[ref] = k
	return k, nil
}

// OpenSenderKeyRef opens the key ref from the key header of sealed, a
// message from ref.Sender that names ref, as me with the prekey secrets
// and links of secrets (nil: none), and keeps it nowhere: what
// [KeyRing.Open] does for a key its ring lacks, with the same errors, for
// a caller that keeps the key only once the message opens under it.
func OpenSenderKeyRef(me *identity.Identity, secrets prekey.Secrets, group GroupID, ref KeyRef, sealed []byte) (*SenderKey, error) {
	k, err := OpenSenderKeyWith(me, secrets, group, sealed, ref.Sender)
	switch {
	case errors.Is(err, ErrNoHeader):
		return nil, fmt.Errorf("open sender key: %w: key %x of %x was never opened here, and the message has %w",
			ErrNotRecipient, ref.ID[:4], ref.Sender[:4], ErrNoHeader)
	case err != nil:
		return nil, err
	case k.Ref() != ref:
		// OpenSenderKey checked that the header holds the key sealed
		// names; so sealed is not the message ref was read from.
		return nil, fmt.Errorf("open sender key: %w: the header holds key %x of epoch %d, not %x of epoch %d",
			ErrWrongKey, k.ID[:4], k.Epoch, ref.ID[:4], ref.Epoch)
	}
	return k, nil
}

// SealingKey returns the ring owner's key to seal its messages with in
// epoch: the one it seals with already, or else one of its keys of epoch
// that registered reports the group has registered (one learnt again from
// the log after a restart, so that the owner's messages need no new key
// header), or else a new random key, kept in the ring. registered may be
// nil: no key is registered.
func (r *KeyRing) SealingKey(epoch uint64, registered func(id [KeyIDSize]byte) bool) *SenderKey {
	if k := r.sealing; k != nil && k.Epoch == epoch {
		return k
	}
	if registered != nil {
		for ref, k := range r.keys {
			if ref.Sender == r.self && ref.Epoch == epoch && registered(ref.ID) {
				r.sealing = k
				return k
			}
		}
	}
	k := NewSenderKey(r.group, r.self, epoch)
	r.keys[k.Ref()] = k
	r.sealing = k
	return k
}

// Rotate replaces the owner's key to seal with in epoch by a new random
// one, kept in the ring: the owner's next messages carry its key header.
// The old key stays in the ring (its messages may still be opened) until
// [KeyRing.ForgetOwn].
func (r *KeyRing) Rotate(epoch uint64) *SenderKey {
	k := NewSenderKey(r.group, r.self, epoch)
	r.keys[k.Ref()] = k
	r.sealing = k
	return k
}

// Forget drops the keys of the other members of the epochs before epoch.
// The owner's own keys stay (see [KeyRing.ForgetOwn]).
func (r *KeyRing) Forget(epoch uint64) {
	for ref := range r.keys {
		if ref.Epoch < epoch && ref.Sender != r.self {
			delete(r.keys, ref)
		}
	}
}

// ForgetOwn drops the owner's own keys of the epochs before epoch, once
// nothing it queued can be sealed under one any more.
func (r *KeyRing) ForgetOwn(epoch uint64) {
	for ref := range r.keys {
		if ref.Epoch < epoch && ref.Sender == r.self {
			delete(r.keys, ref)
		}
	}
	if r.sealing != nil && r.sealing.Epoch < epoch {
		r.sealing = nil
	}
}
