package state

import (
	"errors"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// Continuations (docs/PROTOCOL.md, "Forks", "Re-forming").
//
// A group halted after a fork goes on as a new group, its successor, whose
// genesis names the halted group and the history it continues: a
// [SuccessorGenesis]. The successor's id is the hash of that genesis, so the
// claim is part of the new group's identity and signed by its creator, the
// member that re-formed it; nobody can attach it to another group or change
// it afterwards.

// Continuation says which history a successor group continues: the halted
// group, the index through which the creator's history of it is taken, the
// creator's chain head through that index, and the member left out.
type Continuation struct {
	_ struct{} `cbor:",toarray"`
	// Group is the halted group's 16-byte id.
	Group []byte
	// Index is the log index of the halted group through which the
	// successor continues its history, and Head the transcript chain head
	// through it (see [State.HeadThrough]) in the creator's history.
	Index uint64
	Head  []byte
	// Without is the 64-byte public id of the member left out: the host
	// that showed members different histories, or the member whose
	// signed history differed.
	Without []byte
}

// SuccessorGenesis is the genesis of a successor group: a [Genesis] and the
// [Continuation] it makes.
type SuccessorGenesis struct {
	_         struct{} `cbor:",toarray"`
	Name      string
	Creator   []byte
	RaftID    uint64
	URL       string
	Nickname  string
	MaxVoters int
	Nonce     []byte
	Continues Continuation
}

// ErrGenesis is wrapped by [DecodeGenesis] for a payload that is no
// well-formed genesis.
var ErrGenesis = errors.New("malformed genesis")

// DecodeGenesis decodes a genesis payload, plain or a successor's. It
// returns the continuation of a successor (nil for a plain genesis), checked
// for its form: a 16-byte group id, an index, a 32-byte head, and a valid
// public id left out that is not the creator's.
func DecodeGenesis(payload []byte) (Genesis, *Continuation, error) {
	var g Genesis
	if err := Decode(payload, &g); err == nil {
		return g, nil, nil
	}
	var s SuccessorGenesis
	if err := Decode(payload, &s); err != nil {
		return Genesis{}, nil, ErrGenesis
	}
	c := s.Continues
	without, err := identity.PublicIDFromBytes(c.Without)
	if len(c.Group) != len(crypto.GroupID{}) || c.Index == 0 || len(c.Head) != 32 || err != nil {
		return Genesis{}, nil, ErrGenesis
	}
	if creator, err := identity.PublicIDFromBytes(s.Creator); err == nil && creator == without {
		return Genesis{}, nil, ErrGenesis
	}
	return Genesis{Name: s.Name, Creator: s.Creator, RaftID: s.RaftID, URL: s.URL, Nickname: s.Nickname,
		MaxVoters: s.MaxVoters, Nonce: s.Nonce}, &c, nil
}
