// Package state is a group's replicated state machine. It applies the committed
// entries of the group's raft log (each one a signed envelope) to the group's
// state: who is a member, who is a voter or an admin, the group's settings,
// the open invites, which chat messages were accepted, the members' latency
// maps, and the transcript hash chain (with the recent heads, state/heads.go).
//
// Everything here is a pure function of the log: no clock, no I/O, no
// randomness. Every member derives the same state from the same log, and so
// does an offline verifier of an exported transcript. An entry that breaks a
// rule (an unsigned or forged envelope, a non-member, a chat message under a
// sender key the group has not registered, a key header sealed to the wrong
// set of members, a duplicate message id) is rejected with a reason and
// changes nothing but the hash chain, which covers every entry.
//
// # Sender keys
//
// The state's [State.Epoch] is the log index of the entry that last changed
// the member set. A chat message is sealed under its sender's key for the
// current epoch (see crypto.SealMessage); the state machine registers a key
// when a message carries it in a key header sealed to exactly the current
// members, and accepts a message without a header only under a key registered
// for its sender in the current epoch. A new epoch clears the registrations,
// so the first message of each member after a join or a removal carries a
// new key to the new member set. None of this needs a key: the state machine
// reads only what [crypto.ReadSealed] reads.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// DefaultMaxVoters is how many members vote in raft when the group does not
// say otherwise; everyone else is a learner that receives the log.
const DefaultMaxVoters = 5

// RaftID derives the raft node id of a member from its signing key, so that
// every member maps keys to ids the same way and a peer cannot claim another
// member's id. It is the first 8 bytes of SHA-256 of the key, big endian,
// never zero (zero means "none" in raft).
func RaftID(key [32]byte) uint64 {
	h := sha256.Sum256(key[:])
	id := binary.BigEndian.Uint64(h[:8])
	if id == 0 {
		id = 1
	}
	return id
}

// Member is one current or former member of the group.
type Member struct {
	ID     identity.PublicID
	RaftID uint64
	Name   string
	URL    string // peer URL others reach it at
	Voter  bool
	Admin  bool
	// Keeper marks a keeper: a member that holds the group's log and votes,
	// but is no recipient of any sender key (it reads nothing) and may
	// not send, invite or hold a role (docs/PROTOCOL.md, "Keepers").
	Keeper   bool
	JoinedAt uint64 // log index of its join (or genesis)
	LeftAt   uint64 // log index of its leave or removal; 0 while a member
	Order    int    // join order, for the election fallback
	// Counter is the highest envelope counter of the member's entries in
	// the log, chat messages aside: its next entry must carry a higher one.
	// It outlives a leave, so that a member who comes back cannot be
	// replayed either.
	Counter uint64
	// Time is the latest signing time (unix nanoseconds) of the member's
	// accepted entries: its vote in the group's clock (see [State.Clock]).
	Time int64
	// Quota is what the member used of its chat quota (see quota.go).
	Quota Usage
	// Prekey is the member's current signed prekey (package prekey), as its
	// latest accepted prekey entry published it: the others seal their
	// sender keys to it (docs/PROTOCOL.md, "Forward secrecy"). Empty until
	// the member publishes one; dropped when it leaves.
	Prekey []byte
	// Rekeyed is the time (unix nanoseconds, on the voters' clock as
	// quotas read it) of the member's latest accepted rekey entry; 0 for
	// none. See [RekeyInterval].
	Rekeyed int64
}

// Invite is a committed invitation of one public id.
type Invite struct {
	Invitee identity.PublicID
	Inviter identity.PublicID
	Index   uint64
	Expires int64 // unix nanoseconds, compared with [State.Clock]
	Keeper  bool  // the invitee joins as a keeper
}

// Settings are a group's settings, changed by admins.
type Settings struct {
	// MembersInvite lets every member invite; otherwise only admins may.
	MembersInvite bool
	// MsgsPerMinute and BytesPerDay are each member's chat quota; 0 means
	// the default (see [Settings.MsgsLimit] and [Settings.BytesLimit]).
	MsgsPerMinute uint32
	BytesPerDay   uint64
	// Relays are the circuit relays members reserve a slot on (see
	// [SettingsBody.Relays]); never changed in place.
	Relays []string
}

// Checkpoint is a member's signed statement that the transcript chain had a
// given head at a given index.
type Checkpoint struct {
	Signer [32]byte
	Index  uint64 // the attested index
	Head   [32]byte
	At     uint64 // where the checkpoint itself was committed
}

// Chat is an accepted chat message, still sealed.
type Chat struct {
	Index  uint64
	ID     [16]byte
	Sender [32]byte
	Time   int64
	Sealed []byte
	// Epoch and KeyID name the sender key the message is sealed under;
	// KeyAt is the index of the entry whose key header registered it (Index
	// itself when Header is set: the message carries the key).
	Epoch  uint64
	KeyID  [crypto.KeyIDSize]byte
	Header bool
	KeyAt  uint64
}

// State is the group's replicated state. Create it with [New]; feed it every
// committed entry in order with [State.ApplyEntry] or [State.ApplyConf].
type State struct {
	Group     crypto.GroupID
	Name      string
	Creator   identity.PublicID
	MaxVoters int
	Settings  Settings
	// Host is the signing key of the group's host as the log says: the
	// creator at first, then the signer of the latest accepted lead entry.
	// Only the host promotes and demotes voters, so no other member can
	// change the voter set; raft's pre-vote keeps a member from taking the
	// host's place while the host is healthy.
	Host [32]byte

	Members map[[32]byte]*Member // current members by signing key
	Former  map[[32]byte]*Member // members who left or were removed
	Invites map[[32]byte]Invite  // open invites by invitee signing key
	MsgIDs  MessageIDs           // accepted chat ids -> index
	// Latency holds each member's last latency map: reporter -> peer ->
	// the map's value in milliseconds, [RelayedBit] included (read it with
	// [SplitRTT]).
	Latency map[[32]byte]map[[32]byte]float64
	Chain   crypto.Chain
	Applied uint64
	// Epoch is the log index of the entry that last changed the member set
	// (the genesis, a join, a leave or a removal): the membership epoch
	// that chat messages' sender keys belong to.
	Epoch uint64
	// keys are the sender keys registered in the current epoch: by sender,
	// key id -> index of the entry whose key header registered it.
	keys  map[[32]byte]map[[crypto.KeyIDSize]byte]uint64
	joins int
	// heads and anchors are the transcript chain heads the state keeps
	// (heads.go): after each of the last HeadWindow entries with a frame,
	// and after the first such entry of every AnchorEvery indexes.
	heads   []crypto.Chain
	anchors []crypto.Chain
	// found are the last heads HeadBefore found, with their indexes:
	// where to look first (heads.go). Not part of the state's value.
	found     [headHints]crypto.Chain
	nextFound int
}

// New returns the empty state of a group, before its genesis.
func New(group crypto.GroupID) *State {
	return &State{
		Group:     group,
		MaxVoters: DefaultMaxVoters,
		Members:   map[[32]byte]*Member{},
		Former:    map[[32]byte]*Member{},
		Invites:   map[[32]byte]Invite{},
		Latency:   map[[32]byte]map[[32]byte]float64{},
		Chain:     crypto.NewChain(group),
		keys:      map[[32]byte]map[[crypto.KeyIDSize]byte]uint64{},
	}
}

// ErrRejected is wrapped by every rejection, so callers can tell a rejected
// entry (normal, logged) from a bug.
var ErrRejected = errors.New("entry rejected")

// ErrDuplicateID is wrapped, beside ErrRejected, by the rejection of a chat
// message whose id the log has already accepted: a retry of a message that
// did commit, which its author need not seal or send again.
var ErrDuplicateID = errors.New("duplicate message id")

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// Result says what an applied entry did.
type Result struct {
	Env  *crypto.Envelope
	Chat *Chat // set for an accepted chat message
	// Check is set for an accepted checkpoint. The state keeps none: a
	// checkpoint's effect is to be in the log, where a transcript shows
	// it, and keeping them made the state grow with the history.
	Check *Checkpoint
	// Conf is the raft configuration change to apply, with NodeID 0 when the
	// change was rejected (raft then ignores it).
	Conf *ConfEffect
	Err  error // non-nil when rejected; wraps ErrRejected
}

// ConfEffect is a membership change to hand to raft.
type ConfEffect struct {
	NodeID uint64
	Kind   ConfKind
}

// ConfKind is the raft-level kind of a membership change.
type ConfKind int

// The raft-level membership changes.
const (
	AddVoter ConfKind = iota + 1
	AddLearner
	Remove
)

func (s *State) chain(index uint64, frame []byte) {
	// The chain covers every committed entry that carries a signed frame,
	// accepted or not, so that it is a function of the log alone.
	if len(frame) > 0 && index > s.Chain.Index {
		// Append only fails for a non-increasing index, excluded above.
		if err := s.Chain.Append(index, frame); err != nil {
			panic(fmt.Sprintf("transcript chain: %v", err))
		}
		s.keepHead(s.Chain)
	}
	if index > s.Applied {
		s.Applied = index
	}
}

func (s *State) member(key [32]byte) *Member { return s.Members[key] }

// MemberOrFormer returns the member whose signing key is key, current or
// former (it left or was removed), or nil: whoever may have signed an entry
// of the log.
func (s *State) MemberOrFormer(key [32]byte) *Member {
	if m := s.Members[key]; m != nil {
		return m
	}
	return s.Former[key]
}

// Voters returns the current voters' signing keys in stable order.
func (s *State) Voters() [][32]byte {
	var out [][32]byte
	for k, m := range s.Members {
		if m.Voter {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return out
}

// Recipients returns the current members' public ids in canonical order: the
// exact set a chat message at the next position must be sealed to.
func (s *State) Recipients() []identity.PublicID {
	out := make([]identity.PublicID, 0, len(s.Members))
	for _, m := range s.Members {
		if !m.Keeper {
			out = append(out, m.ID)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

// MemberList returns the current members in join order.
func (s *State) MemberList() []*Member {
	out := make([]*Member, 0, len(s.Members))
	for _, m := range s.Members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out
}

// ByRaftID finds a current member by raft id.
func (s *State) ByRaftID(id uint64) *Member {
	for _, m := range s.Members {
		if m.RaftID == id {
			return m
		}
	}
	return nil
}

// check checks an entry's envelope, given what crypto.Verify returned for
// its frame: signature, group, and (when needMember is set) that the signer
// is a current member.
func (s *State) check(env *crypto.Envelope, err error, needMember bool) (*crypto.Envelope, error) {
	if err != nil {
		return nil, reject("bad envelope: %v", err)
	}
	if env.Group != s.Group {
		return env, reject("envelope for group %s in group %s", env.Group, s.Group)
	}
	if needMember && s.member(env.Sender) == nil {
		return env, reject("signer %x is not a member", env.Sender[:4])
	}
	return env, nil
}

// ApplyEntry applies one committed normal entry.
func (s *State) ApplyEntry(index uint64, frame []byte) Result {
	var (
		env *crypto.Envelope
		err error
	)
	if len(frame) > 0 && !s.Creator.IsZero() {
		env, err = crypto.Verify(frame)
	}
	return s.ApplyEntryEnv(index, frame, env, err)
}

// ApplyEntryEnv is [State.ApplyEntry] for a frame whose signature the caller
// has already checked: env and verr must be exactly what crypto.Verify(frame)
// returned (they are not looked at for an empty frame or before the genesis).
// It exists so that a transcript verifier can check the signatures of many
// entries in parallel and then apply them in order, each checked once; the
// outcome is the same as ApplyEntry's.
func (s *State) ApplyEntryEnv(index uint64, frame []byte, env *crypto.Envelope, verr error) Result {
	defer s.chain(index, frame)
	if len(frame) == 0 {
		return Result{} // raft's empty entry after an election
	}
	if s.Creator.IsZero() {
		return Result{Err: reject("entry before genesis")}
	}
	env, err := s.check(env, verr, true)
	if err != nil {
		return Result{Env: env, Err: err}
	}
	r := Result{Env: env}
	sender := s.member(env.Sender)
	if env.Type != crypto.TypeChat {
		if r.Err = fresh(sender, env); r.Err != nil {
			return r
		}
	}
	if sender.Keeper && !keeperMay[env.Type] {
		r.Err = reject("a keeper may not sign a %v entry: it holds the log, reads nothing and takes no part in the conversation or the membership", env.Type)
		return r
	}
	switch env.Type {
	case crypto.TypeChat:
		r.Chat, r.Err = s.applyChat(index, env, len(frame))
	case crypto.TypeInvite, crypto.TypeKeeper:
		r.Err = s.applyInvite(index, sender, env)
	case crypto.TypeRevoke:
		r.Err = s.applyRevoke(sender, env)
	case crypto.TypeAdmin:
		r.Err = s.applyAdmin(sender, env)
	case crypto.TypeSettings:
		r.Err = s.applySettings(sender, env)
	case crypto.TypeRename:
		r.Err = s.applyRename(sender, env)
	case crypto.TypeAddress:
		var b AddressBody
		if err := Decode(env.Payload, &b); err != nil || len(b.URL) > 512 {
			r.Err = reject("malformed address update")
			break
		}
		sender.URL = b.URL
	case crypto.TypeLatencyMap:
		r.Err = s.applyLatency(env)
	case crypto.TypeCheckpoint:
		r.Check, r.Err = s.applyCheckpoint(index, env)
	case crypto.TypePrekey:
		r.Err = s.applyPrekey(sender, env, len(frame))
	case crypto.TypeRekey:
		// Any member may ask: a new epoch, so every member seals its next
		// message under a new sender key, with a new key header.
		if len(env.Payload) != 1 || env.Payload[0] != 0xa0 {
			r.Err = reject("malformed rekey") // the empty map, its one encoding
			break
		}
		if r.Err = s.chargeRekey(sender, env.Time); r.Err != nil {
			break
		}
		s.newEpoch(index)
	case crypto.TypeLead:
		var b LeadBody
		switch {
		case Decode(env.Payload, &b) != nil:
			r.Err = reject("malformed lead entry")
		case !sender.Voter:
			r.Err = reject("a learner cannot be the host")
		default:
			s.Host = env.Sender
		}
	default:
		r.Err = reject("unexpected entry type %v", env.Type)
	}
	if r.Err == nil {
		sender.Time = max(sender.Time, env.Time)
	}
	return r
}

// keeperMay are the log entries a keeper may sign (besides its join, leave
// and voter role changes, which are raft membership changes): what a
// member does to keep the group running, nothing about its conversation or
// its membership.
var keeperMay = map[crypto.Type]bool{
	crypto.TypeAddress: true, crypto.TypeLatencyMap: true, crypto.TypeCheckpoint: true, crypto.TypeLead: true,
}

// KeeperMay reports whether a keeper may sign a log entry of type t (see
// keeperMay); a group's host drops the others before they reach the log.
func KeeperMay(t crypto.Type) bool { return keeperMay[t] }

// fresh enforces the counter rule on an entry m signed: its counter must be
// above every earlier one of m's, and it becomes m's highest, whatever the
// entry's fate, so that the frame counts once in the log.
func fresh(m *Member, env *crypto.Envelope) error {
	if env.Counter <= m.Counter {
		return reject("replayed or stale entry (its counter is not above its signer's last): %d <= %d, signer %x", env.Counter, m.Counter, env.Sender[:4])
	}
	m.Counter = env.Counter
	return nil
}

func (s *State) applyLatency(env *crypto.Envelope) error {
	var b LatencyBody
	if err := Decode(env.Payload, &b); err != nil || len(b.Peers) != len(b.RTTus) {
		return reject("malformed latency map")
	}
	m := map[[32]byte]float64{}
	for i, p := range b.Peers {
		if len(p) != 32 {
			return reject("malformed latency map")
		}
		m[[32]byte(p)] = float64(b.RTTus[i]) / 1000
	}
	s.Latency[env.Sender] = m
	return nil
}

func (s *State) applyCheckpoint(index uint64, env *crypto.Envelope) (*Checkpoint, error) {
	var b CheckpointBody
	if err := Decode(env.Payload, &b); err != nil || len(b.Head) != 32 {
		return nil, reject("malformed checkpoint")
	}
	// The checkpoint names a position it had seen; entries committed
	// between its signing and its commit are fine.
	if s.forgotten(b.Index) {
		return nil, reject("checkpoint of index %d is older than the transcript heads the group keeps (those of the last %d entries): it cannot be checked any more", b.Index, HeadWindow)
	}
	if head, ok := s.HeadAt(b.Index); !ok || head != [32]byte(b.Head) {
		return nil, reject("checkpoint of index %d does not match the transcript chain", b.Index)
	}
	return &Checkpoint{Signer: env.Sender, Index: b.Index, Head: [32]byte(b.Head), At: index}, nil
}
