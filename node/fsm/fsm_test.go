package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

type world struct {
	t     *testing.T
	group crypto.GroupID
	ids   []*identity.Identity
	s     *State
	index uint64
	ctr   uint64
}

func newWorld(t *testing.T, n int) *world {
	w := &world{t: t, group: crypto.GroupID{1, 2, 3}}
	for i := 0; i < n; i++ {
		id, err := identity.FromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		w.ids = append(w.ids, id)
	}
	w.s = New(w.group)
	return w
}

func (w *world) frame(signer *identity.Identity, typ crypto.Type, body any) []byte {
	w.t.Helper()
	payload, err := Encode(body)
	if err != nil {
		w.t.Fatal(err)
	}
	w.ctr++
	f, err := crypto.Sign(signer, &crypto.Envelope{Type: typ, Group: w.group, Counter: w.ctr, Time: time.Now().UnixNano(), Payload: payload})
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

func (w *world) entry(signer *identity.Identity, typ crypto.Type, body any) Result {
	w.index++
	return w.s.ApplyEntry(w.index, w.frame(signer, typ, body))
}

func (w *world) conf(signer *identity.Identity, typ crypto.Type, body any, nodeID uint64, kind ConfKind) Result {
	w.index++
	return w.s.ApplyConf(w.index, nodeID, kind, w.frame(signer, typ, body))
}

func (w *world) genesis() {
	c := w.ids[0]
	r := w.conf(c, crypto.TypeGenesis, &Genesis{Name: "g", Creator: c.Public().Bytes(), RaftID: RaftID(c.Public().Sign), MaxVoters: 5}, RaftID(c.Public().Sign), AddVoter)
	if r.Err != nil {
		w.t.Fatal(r.Err)
	}
}

// join invites and joins member i (invited by member 0).
func (w *world) join(i int) Result {
	w.t.Helper()
	p := w.ids[i].Public()
	if r := w.entry(w.ids[0], crypto.TypeInvite, &InviteBody{Invitee: p.Bytes()}); r.Err != nil {
		w.t.Fatal(r.Err)
	}
	return w.conf(w.ids[i], crypto.TypeJoin, &JoinBody{PublicID: p.Bytes(), RaftID: RaftID(p.Sign)}, RaftID(p.Sign), AddLearner)
}

func (w *world) chat(author *identity.Identity, recipients []identity.PublicID, id [16]byte) Result {
	w.t.Helper()
	sealed, err := crypto.SealMessage(author, &crypto.Message{Group: w.group, ID: id, Time: 1, Body: []byte("hi")}, recipients)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.entry(author, crypto.TypeChat, &ChatBody{ID: id[:], Sealed: sealed})
}

func key(id *identity.Identity) []byte { k := id.Public().Sign; return k[:] }

func wantRejected(t *testing.T, r Result, sub string) {
	t.Helper()
	if !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), sub) {
		t.Fatalf("got %v, want a rejection containing %q", r.Err, sub)
	}
	if r.Conf != nil && r.Conf.NodeID != 0 {
		t.Fatalf("a rejected change reaches raft with node id %d", r.Conf.NodeID)
	}
}

func TestMembershipRules(t *testing.T) {
	w := newWorld(t, 4)
	outsider := w.ids[3]
	// Nothing before the genesis.
	wantRejected(t, w.entry(w.ids[0], crypto.TypeInvite, &InviteBody{Invitee: w.ids[1].Public().Bytes()}), "before genesis")
	w.genesis()
	// A join without an invite.
	p2 := w.ids[2].Public()
	wantRejected(t, w.conf(w.ids[2], crypto.TypeJoin, &JoinBody{PublicID: p2.Bytes(), RaftID: RaftID(p2.Sign)}, RaftID(p2.Sign), AddLearner), "no committed invite")
	if r := w.join(1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := w.join(2); r.Err != nil {
		t.Fatal(r.Err)
	}
	// A join signed by someone else than the joiner.
	p3 := outsider.Public()
	w.entry(w.ids[0], crypto.TypeInvite, &InviteBody{Invitee: p3.Bytes()})
	wantRejected(t, w.conf(w.ids[1], crypto.TypeJoin, &JoinBody{PublicID: p3.Bytes(), RaftID: RaftID(p3.Sign)}, RaftID(p3.Sign), AddLearner), "not signed by the joiner")
	// A join claiming another raft id.
	wantRejected(t, w.conf(outsider, crypto.TypeJoin, &JoinBody{PublicID: p3.Bytes(), RaftID: 7}, 7, AddLearner), "learner")
	// Promotion by a learner.
	wantRejected(t, w.conf(w.ids[1], crypto.TypePromote, &TargetBody{Target: key(w.ids[2]), Voter: true}, RaftID(w.ids[2].Public().Sign), AddVoter), "signed by a voter")
	if r := w.conf(w.ids[0], crypto.TypePromote, &TargetBody{Target: key(w.ids[1]), Voter: true}, RaftID(w.ids[1].Public().Sign), AddVoter); r.Err != nil {
		t.Fatal(r.Err)
	}
	// Only the creator removes others.
	wantRejected(t, w.conf(w.ids[1], crypto.TypeRemove, &TargetBody{Target: key(w.ids[2])}, RaftID(w.ids[2].Public().Sign), Remove), "only the group's creator")
	if r := w.conf(w.ids[0], crypto.TypeRemove, &TargetBody{Target: key(w.ids[2])}, RaftID(w.ids[2].Public().Sign), Remove); r.Err != nil {
		t.Fatal(r.Err)
	}
	if w.s.Members[w.ids[2].Public().Sign] != nil || w.s.Former[w.ids[2].Public().Sign] == nil {
		t.Fatal("removed member still listed")
	}
	// The removed member's entries are rejected.
	wantRejected(t, w.entry(w.ids[2], crypto.TypeAddress, &AddressBody{URL: "http://x"}), "not a member")
	// Demote member 1; then the creator is the last voter and cannot leave.
	if r := w.conf(w.ids[0], crypto.TypePromote, &TargetBody{Target: key(w.ids[1]), Voter: false}, RaftID(w.ids[1].Public().Sign), AddLearner); r.Err != nil {
		t.Fatal(r.Err)
	}
	wantRejected(t, w.conf(w.ids[0], crypto.TypeLeave, &struct{}{}, RaftID(w.ids[0].Public().Sign), Remove), "last voter")
}

func TestChatRules(t *testing.T) {
	w := newWorld(t, 3)
	w.genesis()
	w.join(1)
	members := []identity.PublicID{w.ids[0].Public(), w.ids[1].Public()}
	id := crypto.NewMessageID()
	if r := w.chat(w.ids[1], members, id); r.Err != nil || r.Chat == nil {
		t.Fatalf("chat: %v", r.Err)
	}
	wantRejected(t, w.chat(w.ids[1], members, id), "duplicate message id")
	// Sealed to a set that leaves a member out.
	wantRejected(t, w.chat(w.ids[0], members[:1], crypto.NewMessageID()), "recipients")
	// Sealed to a set with a non-member in it.
	wantRejected(t, w.chat(w.ids[0], append(members, w.ids[2].Public()), crypto.NewMessageID()), "recipients")
	// From a non-member.
	wantRejected(t, w.chat(w.ids[2], append(members, w.ids[2].Public()), crypto.NewMessageID()), "not a member")
}

func TestForgedLatencyMapChangesNothing(t *testing.T) {
	w := newWorld(t, 3)
	w.genesis()
	w.join(1)
	body := &LatencyBody{Peers: [][]byte{key(w.ids[1])}, RTTus: []uint32{5000}}
	if r := w.entry(w.ids[0], crypto.TypeLatencyMap, body); r.Err != nil {
		t.Fatal(r.Err)
	}
	before := w.s.Latency[w.ids[0].Public().Sign][w.ids[1].Public().Sign]
	// Signed by a non-member, and a member's map with a flipped byte.
	wantRejected(t, w.entry(w.ids[2], crypto.TypeLatencyMap, &LatencyBody{Peers: [][]byte{key(w.ids[0])}, RTTus: []uint32{1}}), "not a member")
	f := w.frame(w.ids[0], crypto.TypeLatencyMap, &LatencyBody{Peers: [][]byte{key(w.ids[1])}, RTTus: []uint32{1}})
	f[len(f)-1] ^= 1
	w.index++
	wantRejected(t, w.s.ApplyEntry(w.index, f), "bad envelope")
	if got := w.s.Latency[w.ids[0].Public().Sign][w.ids[1].Public().Sign]; got != before || len(w.s.Latency) != 1 {
		t.Fatalf("latency changed to %v (%d maps)", got, len(w.s.Latency))
	}
}

func TestCheckpoints(t *testing.T) {
	w := newWorld(t, 2)
	w.genesis()
	w.join(1)
	at := w.index
	head, ok := w.s.HeadAt(at)
	if !ok {
		t.Fatal("no head at the last index")
	}
	w.entry(w.ids[0], crypto.TypeAddress, &AddressBody{URL: "http://a"})
	// A checkpoint of an earlier index commits fine later.
	if r := w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: at, Head: head[:]}); r.Err != nil {
		t.Fatal(r.Err)
	}
	bad := head
	bad[0] ^= 1
	wantRejected(t, w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: at, Head: bad[:]}), "does not match")
	if len(w.s.Checks) != 1 || w.s.Checks[0].Index != at {
		t.Fatalf("checkpoints: %+v", w.s.Checks)
	}
}

// The chain covers every entry, accepted or rejected, so it is a function of
// the log alone.
func TestChainCoversEveryEntry(t *testing.T) {
	w := newWorld(t, 3)
	w.genesis()
	w.join(1)
	w.chat(w.ids[0], w.s.Recipients(), crypto.NewMessageID())
	w.chat(w.ids[2], w.s.Recipients(), crypto.NewMessageID()) // rejected: not a member
	if w.s.Chain.Index != w.index {
		t.Fatalf("chain at %d, log at %d", w.s.Chain.Index, w.index)
	}
}
