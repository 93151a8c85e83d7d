// Package state is a group's replicated state machine. It applies the committed
// entries of the group's raft log (each one a signed envelope) to the group's
// state: who is a member, who is a voter, the open invites, which chat
// messages were accepted, the members' latency maps, the checkpoints, and the
// transcript hash chain.
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
	ID       identity.PublicID
	RaftID   uint64
	Name     string
	URL      string // peer URL others reach it at
	Voter    bool
	JoinedAt uint64 // log index of its join (or genesis)
	LeftAt   uint64 // log index of its leave or removal; 0 while a member
	Order    int    // join order, for the election fallback
}

// Invite is a committed invitation of one public id.
type Invite struct {
	Invitee identity.PublicID
	Inviter identity.PublicID
	Index   uint64
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

	Members map[[32]byte]*Member // current members by signing key
	Former  map[[32]byte]*Member // members who left or were removed
	Invites map[[32]byte]Invite  // open invites by invitee signing key
	MsgIDs  map[[16]byte]uint64  // accepted chat ids -> index
	Latency map[[32]byte]map[[32]byte]float64
	Checks  []Checkpoint
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
	heads []crypto.Chain // the chain after each entry, for checkpoints
}

// HeadAt returns the transcript chain head right after the entry at index,
// and whether an entry with a frame sits at exactly that index.
func (s *State) HeadAt(index uint64) ([32]byte, bool) {
	i := sort.Search(len(s.heads), func(i int) bool { return s.heads[i].Index >= index })
	if i < len(s.heads) && s.heads[i].Index == index {
		return s.heads[i].Head, true
	}
	return [32]byte{}, false
}

// New returns the empty state of a group, before its genesis.
func New(group crypto.GroupID) *State {
	return &State{
		Group:     group,
		MaxVoters: DefaultMaxVoters,
		Members:   map[[32]byte]*Member{},
		Former:    map[[32]byte]*Member{},
		Invites:   map[[32]byte]Invite{},
		MsgIDs:    map[[16]byte]uint64{},
		Latency:   map[[32]byte]map[[32]byte]float64{},
		Chain:     crypto.NewChain(group),
		keys:      map[[32]byte]map[[crypto.KeyIDSize]byte]uint64{},
	}
}

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

// ErrRejected is wrapped by every rejection, so callers can tell a rejected
// entry (normal, logged) from a bug.
var ErrRejected = errors.New("entry rejected")

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// Result says what an applied entry did.
type Result struct {
	Env  *crypto.Envelope
	Chat *Chat // set for an accepted chat message
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
		s.heads = append(s.heads, s.Chain)
	}
	if index > s.Applied {
		s.Applied = index
	}
}

func (s *State) member(key [32]byte) *Member { return s.Members[key] }

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
		out = append(out, m.ID)
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
	switch env.Type {
	case crypto.TypeChat:
		var b ChatBody
		if err := Decode(env.Payload, &b); err != nil || len(b.ID) != 16 {
			r.Err = reject("malformed chat body")
			return r
		}
		var id [16]byte
		copy(id[:], b.ID)
		if at, dup := s.MsgIDs[id]; dup {
			r.Err = reject("duplicate message id %x (first at %d)", id[:4], at)
			return r
		}
		info, err := s.CheckSealed(env.Sender, b.Sealed)
		if err != nil {
			r.Err = err
			return r
		}
		keyAt := index
		if info.HasHeader() {
			ks := s.keys[env.Sender]
			if ks == nil {
				ks = map[[crypto.KeyIDSize]byte]uint64{}
				s.keys[env.Sender] = ks
			}
			// A retry sealed again under the same key carries it again;
			// the first registration stands.
			if at, ok := ks[info.KeyID]; ok {
				keyAt = at
			} else {
				ks[info.KeyID] = index
			}
		} else {
			keyAt = s.keys[env.Sender][info.KeyID]
		}
		s.MsgIDs[id] = index
		r.Chat = &Chat{Index: index, ID: id, Sender: env.Sender, Time: env.Time, Sealed: b.Sealed,
			Epoch: info.Epoch, KeyID: info.KeyID, Header: info.HasHeader(), KeyAt: keyAt}
	case crypto.TypeInvite:
		var b InviteBody
		if err := Decode(env.Payload, &b); err != nil {
			r.Err = reject("malformed invite")
			return r
		}
		invitee, err := identity.PublicIDFromBytes(b.Invitee)
		if err != nil {
			r.Err = reject("invite: %v", err)
			return r
		}
		if s.member(invitee.Sign) != nil {
			r.Err = reject("invitee is already a member")
			return r
		}
		s.Invites[invitee.Sign] = Invite{Invitee: invitee, Inviter: sender.ID, Index: index}
	case crypto.TypeAddress:
		var b AddressBody
		if err := Decode(env.Payload, &b); err != nil || len(b.URL) > 512 {
			r.Err = reject("malformed address update")
			return r
		}
		sender.URL = b.URL
	case crypto.TypeLatencyMap:
		var b LatencyBody
		if err := Decode(env.Payload, &b); err != nil || len(b.Peers) != len(b.RTTus) {
			r.Err = reject("malformed latency map")
			return r
		}
		m := map[[32]byte]float64{}
		for i, p := range b.Peers {
			if len(p) != 32 {
				r.Err = reject("malformed latency map")
				return r
			}
			m[[32]byte(p)] = float64(b.RTTus[i]) / 1000
		}
		s.Latency[env.Sender] = m
	case crypto.TypeCheckpoint:
		var b CheckpointBody
		if err := Decode(env.Payload, &b); err != nil || len(b.Head) != 32 {
			r.Err = reject("malformed checkpoint")
			return r
		}
		// The checkpoint names a position it had seen; entries committed
		// between its signing and its commit are fine.
		if head, ok := s.HeadAt(b.Index); !ok || head != [32]byte(b.Head) {
			r.Err = reject("checkpoint of index %d does not match the transcript chain", b.Index)
			return r
		}
		s.Checks = append(s.Checks, Checkpoint{Signer: env.Sender, Index: b.Index, Head: [32]byte(b.Head), At: index})
	default:
		r.Err = reject("unexpected entry type %v", env.Type)
	}
	return r
}

// ApplyConf applies one committed membership change. nodeID and kind are what
// the raft entry asks; frame is the signed envelope in the change's context
// that authorises it. The returned Result.Conf is what to hand to raft: the
// same change when accepted, NodeID 0 (ignored by raft) when rejected.
func (s *State) ApplyConf(index uint64, nodeID uint64, kind ConfKind, frame []byte) Result {
	env, err := crypto.Verify(frame)
	return s.ApplyConfEnv(index, nodeID, kind, frame, env, err)
}

// ApplyConfEnv is [State.ApplyConf] for a frame whose signature the caller
// has already checked: env and verr must be exactly what crypto.Verify(frame)
// returned. Like [State.ApplyEntryEnv], it lets a transcript verifier check
// signatures in parallel without changing the outcome.
func (s *State) ApplyConfEnv(index uint64, nodeID uint64, kind ConfKind, frame []byte, env *crypto.Envelope, verr error) Result {
	defer s.chain(index, frame)
	r := s.applyConf(index, nodeID, kind, env, verr)
	if r.Err != nil {
		r.Conf = &ConfEffect{NodeID: 0, Kind: kind}
	}
	return r
}

func (s *State) applyConf(index uint64, nodeID uint64, kind ConfKind, env *crypto.Envelope, verr error) Result {
	if s.Creator.IsZero() {
		env, err := s.check(env, verr, false)
		if err != nil {
			return Result{Env: env, Err: err}
		}
		r := Result{Env: env}
		var g Genesis
		if env.Type != crypto.TypeGenesis || Decode(env.Payload, &g) != nil {
			r.Err = reject("the first entry must be the genesis")
			return r
		}
		creator, err := identity.PublicIDFromBytes(g.Creator)
		if err != nil || creator.Sign != env.Sender {
			r.Err = reject("genesis not signed by its creator")
			return r
		}
		if kind != AddVoter || nodeID != RaftID(env.Sender) || g.RaftID != nodeID {
			r.Err = reject("genesis does not add its creator")
			return r
		}
		s.Name, s.Creator = g.Name, creator
		if g.MaxVoters > 0 {
			s.MaxVoters = g.MaxVoters
		}
		s.add(&Member{ID: creator, RaftID: nodeID, Name: g.Nickname, URL: g.URL, Voter: true, JoinedAt: index})
		s.newEpoch(index)
		r.Conf = &ConfEffect{NodeID: nodeID, Kind: AddVoter}
		return r
	}
	env, err := s.check(env, verr, false)
	if err != nil {
		return Result{Env: env, Err: err}
	}
	r := Result{Env: env}
	switch env.Type {
	case crypto.TypeJoin:
		var b JoinBody
		if err := Decode(env.Payload, &b); err != nil {
			r.Err = reject("malformed join")
			return r
		}
		joiner, err := identity.PublicIDFromBytes(b.PublicID)
		if err != nil || joiner.Sign != env.Sender {
			r.Err = reject("join not signed by the joiner")
			return r
		}
		if s.member(joiner.Sign) != nil {
			r.Err = reject("joiner is already a member")
			return r
		}
		inv, ok := s.Invites[joiner.Sign]
		if !ok || inv.Invitee != joiner {
			r.Err = reject("no committed invite names the joiner")
			return r
		}
		if kind != AddLearner || nodeID != RaftID(joiner.Sign) || b.RaftID != nodeID {
			r.Err = reject("join does not add the joiner as a learner")
			return r
		}
		if s.ByRaftID(nodeID) != nil {
			r.Err = reject("raft id collision")
			return r
		}
		delete(s.Invites, joiner.Sign)
		delete(s.Former, joiner.Sign)
		s.add(&Member{ID: joiner, RaftID: nodeID, Name: b.Name, URL: b.URL, JoinedAt: index})
		s.newEpoch(index)
		r.Conf = &ConfEffect{NodeID: nodeID, Kind: AddLearner}
	case crypto.TypePromote:
		signer := s.member(env.Sender)
		var b TargetBody
		if signer == nil || !signer.Voter {
			r.Err = reject("voter changes must be signed by a voter")
			return r
		}
		if err := Decode(env.Payload, &b); err != nil || len(b.Target) != 32 {
			r.Err = reject("malformed voter change")
			return r
		}
		t := s.member([32]byte(b.Target))
		switch {
		case t == nil || t.RaftID != nodeID:
			r.Err = reject("voter change for a non-member")
		case b.Voter && (t.Voter || kind != AddVoter):
			r.Err = reject("promotion of a voter")
		case b.Voter && len(s.Voters()) > s.MaxVoters:
			// One over the maximum is allowed: a swap promotes the better
			// member first and demotes the displaced voter next, so that the
			// group never has fewer voters than before.
			r.Err = reject("already %d voters", len(s.Voters()))
		case !b.Voter && (!t.Voter || kind != AddLearner):
			r.Err = reject("demotion of a learner")
		case !b.Voter && len(s.Voters()) <= 1:
			r.Err = reject("cannot demote the last voter")
		}
		if r.Err != nil {
			return r
		}
		t.Voter = b.Voter
		r.Conf = &ConfEffect{NodeID: nodeID, Kind: kind}
	case crypto.TypeLeave, crypto.TypeRemove:
		signer := s.member(env.Sender)
		if signer == nil {
			r.Err = reject("removal signed by a non-member")
			return r
		}
		target := signer
		if env.Type == crypto.TypeRemove {
			var b TargetBody
			if err := Decode(env.Payload, &b); err != nil || len(b.Target) != 32 {
				r.Err = reject("malformed removal")
				return r
			}
			target = s.member([32]byte(b.Target))
			// Who may remove whom: the creator may remove anyone; everyone
			// may remove themselves (that is a leave).
			if target == nil {
				r.Err = reject("removal of a non-member")
				return r
			}
			if target != signer && signer.ID != s.Creator {
				r.Err = reject("only the group's creator may remove other members")
				return r
			}
		}
		if kind != Remove || nodeID != target.RaftID {
			r.Err = reject("removal does not match its raft change")
			return r
		}
		if target.Voter && len(s.Voters()) <= 1 {
			r.Err = reject("cannot remove the last voter")
			return r
		}
		target.LeftAt = index
		delete(s.Members, target.ID.Sign)
		s.Former[target.ID.Sign] = target
		delete(s.Latency, target.ID.Sign)
		s.newEpoch(index)
		r.Conf = &ConfEffect{NodeID: nodeID, Kind: Remove}
	default:
		r.Err = reject("unexpected membership entry type %v", env.Type)
	}
	return r
}

func (s *State) add(m *Member) {
	m.Order = s.joins
	s.joins++
	s.Members[m.ID.Sign] = m
}
