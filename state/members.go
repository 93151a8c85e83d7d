package state

import (
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

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
	env, err := s.check(env, verr, false)
	if err != nil {
		return Result{Env: env, Err: err}
	}
	r := Result{Env: env}
	if s.Creator.IsZero() {
		r.Err = s.applyGenesis(index, nodeID, kind, env)
	} else {
		switch env.Type {
		case crypto.TypeJoin:
			r.Err = s.applyJoin(index, nodeID, kind, env)
		case crypto.TypePromote:
			r.Err = s.applyPromote(nodeID, kind, env)
		case crypto.TypeLeave, crypto.TypeRemove:
			r.Err = s.applyRemove(index, nodeID, kind, env)
		default:
			r.Err = reject("unexpected membership entry type %v", env.Type)
		}
	}
	if r.Err == nil {
		r.Conf = &ConfEffect{NodeID: nodeID, Kind: kind}
		if m := s.member(env.Sender); m != nil {
			m.Time = max(m.Time, env.Time)
		}
	}
	return r
}

func (s *State) applyGenesis(index uint64, nodeID uint64, kind ConfKind, env *crypto.Envelope) error {
	if env.Type != crypto.TypeGenesis {
		return reject("the first entry must be the genesis")
	}
	g, _, err := DecodeGenesis(env.Payload)
	if err != nil {
		return reject("the first entry must be the genesis")
	}
	creator, err := identity.PublicIDFromBytes(g.Creator)
	if err != nil || creator.Sign != env.Sender {
		return reject("genesis not signed by its creator")
	}
	if kind != AddVoter || nodeID != RaftID(env.Sender) || g.RaftID != nodeID {
		return reject("genesis does not add its creator")
	}
	if len(g.Nonce) < 16 || len(g.Nonce) > 64 || g.MaxVoters < 0 {
		return reject("malformed genesis")
	}
	// The group id is the genesis's hash: a genesis made for another id,
	// or copied into this one, is not this group's.
	if GroupIDOf(env.Payload) != s.Group {
		return reject("genesis does not match the group id %s (the id is derived from it)", s.Group)
	}
	s.Name, s.Creator = g.Name, creator
	if g.MaxVoters > 0 {
		s.MaxVoters = g.MaxVoters
	}
	s.add(&Member{ID: creator, RaftID: nodeID, Name: g.Nickname, URL: g.URL, Voter: true, Admin: true,
		JoinedAt: index, Counter: env.Counter})
	s.Host = creator.Sign
	s.newEpoch(index)
	return nil
}

func (s *State) applyJoin(index uint64, nodeID uint64, kind ConfKind, env *crypto.Envelope) error {
	var b JoinBody
	if err := Decode(env.Payload, &b); err != nil {
		return reject("malformed join")
	}
	joiner, err := identity.PublicIDFromBytes(b.PublicID)
	if err != nil || joiner.Sign != env.Sender {
		return reject("join not signed by the joiner")
	}
	if s.member(joiner.Sign) != nil {
		return reject("joiner is already a member")
	}
	// A former member's old join is as stale as any other of its entries.
	var counter uint64
	if f := s.Former[joiner.Sign]; f != nil {
		counter = f.Counter
		if err := fresh(f, env); err != nil {
			return err
		}
	}
	inv, ok := s.Invites[joiner.Sign]
	switch {
	case !ok || inv.Invitee != joiner:
		return reject("no open invite names the joiner")
	case inv.Expires <= s.Clock():
		return reject("the invite expired")
	case kind != AddLearner || nodeID != RaftID(joiner.Sign) || b.RaftID != nodeID:
		return reject("join does not add the joiner as a learner")
	case s.ByRaftID(nodeID) != nil:
		return reject("raft id collision")
	}
	delete(s.Invites, joiner.Sign)
	delete(s.Former, joiner.Sign)
	s.add(&Member{ID: joiner, RaftID: nodeID, Name: b.Name, URL: b.URL, JoinedAt: index,
		Counter: max(counter, env.Counter), Keeper: inv.Keeper})
	s.newEpoch(index)
	return nil
}

func (s *State) applyPromote(nodeID uint64, kind ConfKind, env *crypto.Envelope) error {
	signer := s.member(env.Sender)
	if signer == nil {
		return reject("voter changes must be signed by a voter")
	}
	if err := fresh(signer, env); err != nil {
		return err
	}
	if !signer.Voter {
		return reject("voter changes must be signed by a voter")
	}
	if env.Sender != s.Host {
		return reject("voter changes must be signed by the host (the signer of the latest lead entry)")
	}
	var b TargetBody
	if err := Decode(env.Payload, &b); err != nil || len(b.Target) != 32 {
		return reject("malformed voter change")
	}
	t := s.member([32]byte(b.Target))
	voters := len(s.Voters())
	switch {
	case t == nil || t.RaftID != nodeID:
		return reject("voter change for a non-member")
	case b.Voter && (t.Voter || kind != AddVoter):
		return reject("promotion of a voter")
	case b.Voter && voters > s.MaxVoters:
		// One over the maximum is allowed: a swap promotes the better
		// member first and demotes the displaced voter next, so that the
		// group never has fewer voters than before.
		return reject("already %d voters", voters)
	case !b.Voter && (!t.Voter || kind != AddLearner):
		return reject("demotion of a learner")
	case !b.Voter && voters-1 < MinVoters(len(s.Members), s.MaxVoters):
		return reject("demotion would leave %d voters, fewer than the %d this group keeps", voters-1, MinVoters(len(s.Members), s.MaxVoters))
	}
	t.Voter = b.Voter
	return nil
}

func (s *State) applyRemove(index uint64, nodeID uint64, kind ConfKind, env *crypto.Envelope) error {
	signer := s.member(env.Sender)
	if signer == nil {
		return reject("removal signed by a non-member")
	}
	if err := fresh(signer, env); err != nil {
		return err
	}
	target := signer
	if env.Type == crypto.TypeRemove {
		var b TargetBody
		if err := Decode(env.Payload, &b); err != nil || len(b.Target) != 32 || b.Voter {
			return reject("malformed removal")
		}
		target = s.member([32]byte(b.Target))
		// Admins may remove anyone; everyone may remove themselves (that
		// is a leave).
		if target == nil {
			return reject("removal of a non-member")
		}
		if target != signer && !signer.Admin {
			return reject("only admins may remove other members")
		}
	} else if len(env.Payload) != 1 || env.Payload[0] != 0xa0 {
		return reject("malformed leave") // the empty map, its one encoding
	}
	if kind != Remove || nodeID != target.RaftID {
		return reject("removal does not match its raft change")
	}
	if target.Voter && len(s.Voters()) <= 1 {
		return reject("cannot remove the last voter")
	}
	target.LeftAt = index
	target.Admin = false
	target.Prekey = nil
	delete(s.Members, target.ID.Sign)
	s.Former[target.ID.Sign] = target
	delete(s.Latency, target.ID.Sign)
	if s.Host == target.ID.Sign {
		s.Host = [32]byte{} // until the next host's lead entry
	}
	s.keepAnAdmin()
	s.pruneInvites()
	s.newEpoch(index)
	return nil
}

func (s *State) add(m *Member) {
	m.Order = s.joins
	s.joins++
	s.Members[m.ID.Sign] = m
}
