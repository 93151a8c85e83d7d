package state

import (
	"fmt"

	"github.com/demes/demes/crypto"
)

// KeyRegistered reports whether the key id is registered for sender in the
// current epoch, and at which index.
func (s *State) KeyRegistered(sender [32]byte, id [crypto.KeyIDSize]byte) (uint64, bool) {
	at, ok := s.keys[sender][id]
	return at, ok
}

// newEpoch starts the membership epoch of the entry at index, which changed
// the member set: every sender key registered before is forgotten, so that
// the next message of each member must carry a key header sealed to the new
// members.
func (s *State) newEpoch(index uint64) {
	s.Epoch = index
	clear(s.keys)
}

// CheckSealed checks sealed, a chat message from sender, against the sender
// key rule at the current position (everything but the message id), and
// returns what it says about its key. A sender uses it to tell whether a
// queued message needs sealing again.
func (s *State) CheckSealed(sender [32]byte, sealed []byte) (*crypto.SealedInfo, error) {
	info, err := crypto.ReadSealed(sealed)
	if err != nil {
		return nil, reject("malformed sealed payload: %v", err)
	}
	if info.Epoch != s.Epoch {
		return nil, reject("sealed under a key of epoch %d, the current epoch is %d", info.Epoch, s.Epoch)
	}
	if !info.HasHeader() {
		if _, ok := s.keys[sender][info.KeyID]; !ok {
			return nil, reject("sender key %x is not registered for %x in epoch %d", info.KeyID[:4], sender[:4], s.Epoch)
		}
		return info, nil
	}
	want := s.Recipients()
	if len(info.Recipients) != len(want) {
		return nil, reject("key header sealed to %d recipients, the group has %d members", len(info.Recipients), len(want))
	}
	for i := range want {
		if info.Recipients[i] != want[i].Sign {
			return nil, reject("key header sealed to a different member set")
		}
	}
	return info, nil
}

// applyChat applies a chat message: a new id, sealed by a member under a
// sender key the rule above allows, within its sender's quota (size is the
// entry's frame: what the message adds to every member's log).
func (s *State) applyChat(index uint64, env *crypto.Envelope, size int) (*Chat, error) {
	var b ChatBody
	if err := Decode(env.Payload, &b); err != nil || len(b.ID) != 16 {
		return nil, reject("malformed chat body")
	}
	id := [16]byte(b.ID)
	if at, dup := s.MsgIDs.Lookup(id); dup {
		return nil, fmt.Errorf("%w: %w %x (first at %d)", ErrRejected, ErrDuplicateID, id[:4], at)
	}
	info, err := s.CheckSealed(env.Sender, b.Sealed)
	if err != nil {
		return nil, err
	}
	// Last of the checks: only a message that would be accepted otherwise
	// counts against the quota, and one over it changes nothing.
	if err := s.chargeQuota(s.member(env.Sender), env.Time, size); err != nil {
		return nil, err
	}
	keyAt := index
	if info.HasHeader() {
		ks := s.keys[env.Sender]
		if ks == nil {
			ks = map[[crypto.KeyIDSize]byte]uint64{}
			s.keys[env.Sender] = ks
		}
		// A retry sealed again under the same key carries it again; the
		// first registration stands.
		if at, ok := ks[info.KeyID]; ok {
			keyAt = at
		} else {
			ks[info.KeyID] = index
		}
	} else {
		keyAt = s.keys[env.Sender][info.KeyID]
	}
	s.MsgIDs.add(id, index)
	return &Chat{Index: index, ID: id, Sender: env.Sender, Time: env.Time, Sealed: b.Sealed,
		Epoch: info.Epoch, KeyID: info.KeyID, Header: info.HasHeader(), KeyAt: keyAt}, nil
}
