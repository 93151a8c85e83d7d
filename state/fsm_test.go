package state

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
	t     testing.TB
	group crypto.GroupID
	ids   []*identity.Identity
	s     *State
	index uint64
	ctr   uint64
	log   []logEntry // every entry applied to s, to apply again elsewhere
}

// logEntry is one entry of a world's log, as raft would hand it over.
type logEntry struct {
	index  uint64
	conf   bool
	nodeID uint64
	kind   ConfKind
	frame  []byte
}

func (e logEntry) apply(s *State) Result {
	if e.conf {
		return s.ApplyConf(e.index, e.nodeID, e.kind, e.frame)
	}
	return s.ApplyEntry(e.index, e.frame)
}

func newWorld(t testing.TB, n int) *world {
	w := &world{t: t}
	for i := 0; i < n; i++ {
		id, err := identity.FromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		w.ids = append(w.ids, id)
	}
	w.group = GroupIDOf(w.genesisPayload())
	w.s = New(w.group)
	return w
}

// genesisBody is the world's genesis, created by ids[0]; its payload gives
// the group id.
func (w *world) genesisBody() *Genesis {
	c := w.ids[0].Public()
	return &Genesis{Name: "g", Creator: c.Bytes(), RaftID: RaftID(c.Sign), MaxVoters: 5, Nonce: bytes.Repeat([]byte{7}, 16)}
}

func (w *world) genesisPayload() []byte {
	b, err := Encode(w.genesisBody())
	if err != nil {
		w.t.Fatal(err)
	}
	return b
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
	return w.raw(w.frame(signer, typ, body))
}

// raw appends a normal entry with the given data (empty: raft's no-op).
func (w *world) raw(frame []byte) Result {
	w.index++
	e := logEntry{index: w.index, frame: frame}
	w.log = append(w.log, e)
	return e.apply(w.s)
}

func (w *world) conf(signer *identity.Identity, typ crypto.Type, body any, nodeID uint64, kind ConfKind) Result {
	w.index++
	e := logEntry{index: w.index, conf: true, nodeID: nodeID, kind: kind, frame: w.frame(signer, typ, body)}
	w.log = append(w.log, e)
	return e.apply(w.s)
}

func (w *world) genesis() {
	c := w.ids[0]
	r := w.conf(c, crypto.TypeGenesis, w.genesisBody(), RaftID(c.Public().Sign), AddVoter)
	if r.Err != nil {
		w.t.Fatal(r.Err)
	}
}

// invite is the body of an invite of the public id p that expires in a day.
func (w *world) invite(p []byte) *InviteBody {
	return &InviteBody{Invitee: p, Expires: time.Now().Add(24 * time.Hour).UnixNano()}
}

// join invites and joins member i (invited by member 0).
func (w *world) join(i int) Result {
	w.t.Helper()
	p := w.ids[i].Public()
	if r := w.entry(w.ids[0], crypto.TypeInvite, w.invite(p.Bytes())); r.Err != nil {
		w.t.Fatal(r.Err)
	}
	return w.conf(w.ids[i], crypto.TypeJoin, &JoinBody{PublicID: p.Bytes(), RaftID: RaftID(p.Sign)}, RaftID(p.Sign), AddLearner)
}

// chat appends author's message id under a new sender key of the current
// epoch, with a key header sealed to recipients.
func (w *world) chat(author *identity.Identity, recipients []identity.PublicID, id [16]byte) Result {
	w.t.Helper()
	return w.chatWith(author, crypto.NewSenderKey(w.group, author.Public().Sign, w.s.Epoch), recipients, id)
}

// chatWith appends author's message id sealed under key, with a key header
// sealed to header (none if nil).
func (w *world) chatWith(author *identity.Identity, key *crypto.SenderKey, header []identity.PublicID, id [16]byte) Result {
	w.t.Helper()
	sealed, err := crypto.SealMessage(author, &crypto.Message{Group: w.group, ID: id, Time: 1, Body: []byte("hi")}, key, header)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.entry(author, crypto.TypeChat, &ChatBody{ID: id[:], Sealed: sealed})
}

func key(id *identity.Identity) []byte { k := id.Public().Sign; return k[:] }

func wantRejected(t testing.TB, r Result, sub string) {
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
	wantRejected(t, w.entry(w.ids[0], crypto.TypeInvite, w.invite(w.ids[1].Public().Bytes())), "before genesis")
	w.genesis()
	// A join without an invite.
	p2 := w.ids[2].Public()
	wantRejected(t, w.conf(w.ids[2], crypto.TypeJoin, &JoinBody{PublicID: p2.Bytes(), RaftID: RaftID(p2.Sign)}, RaftID(p2.Sign), AddLearner), "no open invite")
	if r := w.join(1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := w.join(2); r.Err != nil {
		t.Fatal(r.Err)
	}
	// A join signed by someone else than the joiner.
	p3 := outsider.Public()
	w.entry(w.ids[0], crypto.TypeInvite, w.invite(p3.Bytes()))
	wantRejected(t, w.conf(w.ids[1], crypto.TypeJoin, &JoinBody{PublicID: p3.Bytes(), RaftID: RaftID(p3.Sign)}, RaftID(p3.Sign), AddLearner), "not signed by the joiner")
	// A join claiming another raft id.
	wantRejected(t, w.conf(outsider, crypto.TypeJoin, &JoinBody{PublicID: p3.Bytes(), RaftID: 7}, 7, AddLearner), "learner")
	// Promotion by a learner.
	wantRejected(t, w.conf(w.ids[1], crypto.TypePromote, &TargetBody{Target: key(w.ids[2]), Voter: true}, RaftID(w.ids[2].Public().Sign), AddVoter), "signed by a voter")
	if r := w.conf(w.ids[0], crypto.TypePromote, &TargetBody{Target: key(w.ids[1]), Voter: true}, RaftID(w.ids[1].Public().Sign), AddVoter); r.Err != nil {
		t.Fatal(r.Err)
	}
	// Only admins remove others.
	wantRejected(t, w.conf(w.ids[1], crypto.TypeRemove, &TargetBody{Target: key(w.ids[2])}, RaftID(w.ids[2].Public().Sign), Remove), "only admins")
	if r := w.conf(w.ids[0], crypto.TypeRemove, &TargetBody{Target: key(w.ids[2])}, RaftID(w.ids[2].Public().Sign), Remove); r.Err != nil {
		t.Fatal(r.Err)
	}
	if w.s.Members[w.ids[2].Public().Sign] != nil || w.s.Former[w.ids[2].Public().Sign] == nil {
		t.Fatal("removed member still listed")
	}
	// The removed member's entries are rejected.
	wantRejected(t, w.entry(w.ids[2], crypto.TypeAddress, &AddressBody{URL: "http://x"}), "not a member")
	// Two members, two voters: neither voter can demote the other.
	wantRejected(t, w.conf(w.ids[0], crypto.TypePromote, &TargetBody{Target: key(w.ids[1]), Voter: false}, RaftID(w.ids[1].Public().Sign), AddLearner), "fewer than the 2")
	// Member 1 leaves; the creator is then the last voter and cannot leave.
	if r := w.conf(w.ids[1], crypto.TypeLeave, &struct{}{}, RaftID(w.ids[1].Public().Sign), Remove); r.Err != nil {
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
	dup := w.chat(w.ids[1], members, id)
	wantRejected(t, dup, "duplicate message id")
	// Its author tells a retry of a committed message by the error, not the
	// words (node/apply.go).
	if !errors.Is(dup.Err, ErrDuplicateID) {
		t.Errorf("a duplicate id's rejection %v does not wrap ErrDuplicateID", dup.Err)
	}
	if r := w.chat(w.ids[1], members, crypto.NewMessageID()); errors.Is(r.Err, ErrDuplicateID) {
		t.Errorf("a new id's result %v wraps ErrDuplicateID", r.Err)
	}
	// Key header sealed to a set that leaves a member out.
	wantRejected(t, w.chat(w.ids[0], members[:1], crypto.NewMessageID()), "recipients")
	// Key header sealed to a set with a non-member in it.
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
	r := w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: at, Head: head[:]})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if c := r.Check; c == nil || c.Index != at || c.Head != head || c.At != w.index || c.Signer != w.ids[1].Public().Sign {
		t.Fatalf("the accepted checkpoint: %+v", r.Check)
	}
	bad := head
	bad[0] ^= 1
	r = w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: at, Head: bad[:]})
	wantRejected(t, r, "does not match")
	if r.Check != nil {
		t.Fatalf("a rejected checkpoint: %+v", r.Check)
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

// TestSenderKeyRules follows one group through joins and a removal and
// applies, at each step, the chat entries the sender key rule must accept or
// reject (docs/PROTOCOL.md, "Log entries and membership").
func TestSenderKeyRules(t *testing.T) {
	w := newWorld(t, 4)
	alice, bob, carol, dave := w.ids[0], w.ids[1], w.ids[2], w.ids[3]
	w.genesis()
	w.join(1)
	w.join(2)
	if w.s.Epoch != w.index {
		t.Fatalf("epoch %d after the join at %d", w.s.Epoch, w.index)
	}
	newKey := func(id *identity.Identity) *crypto.SenderKey {
		return crypto.NewSenderKey(w.group, id.Public().Sign, w.s.Epoch)
	}
	pubs := func(ids ...*identity.Identity) []identity.PublicID {
		out := make([]identity.PublicID, len(ids))
		for i, id := range ids {
			out[i] = id.Public()
		}
		return out
	}
	aliceKey, bobKey := newKey(alice), newKey(bob)
	var carolKey, bobKey2, davesKey *crypto.SenderKey
	// bobKeyAsAlice is bob's registered key id, used by alice.
	bobKeyAsAlice := func() *crypto.SenderKey { k := bobKey.Clone(); k.Sender = alice.Public().Sign; return k }
	staleEpoch := func(k *crypto.SenderKey) *crypto.SenderKey { c := k.Clone(); c.Epoch--; return c }
	dup := crypto.NewMessageID()
	var removedAt uint64

	steps := []struct {
		name string
		do   func() Result
		want string // a part of the rejection; "" to accept
	}{
		{"no header, key never registered", func() Result { return w.chatWith(alice, aliceKey, nil, crypto.NewMessageID()) }, "not registered"},
		{"header to the members minus one", func() Result {
			return w.chatWith(alice, aliceKey, pubs(alice, bob), crypto.NewMessageID())
		}, "recipients"},
		{"header to the members plus a non-member", func() Result {
			return w.chatWith(alice, aliceKey, pubs(alice, bob, carol, dave), crypto.NewMessageID())
		}, "recipients"},
		{"the rejected headers registered nothing", func() Result { return w.chatWith(alice, aliceKey, nil, crypto.NewMessageID()) }, "not registered"},
		{"header of a stale epoch", func() Result {
			return w.chatWith(alice, staleEpoch(aliceKey), pubs(alice, bob, carol), crypto.NewMessageID())
		}, "epoch"},
		{"header to exactly the members", func() Result { return w.chatWith(alice, aliceKey, pubs(carol, alice, bob), dup) }, ""},
		{"then no header", func() Result { return w.chatWith(alice, aliceKey, nil, crypto.NewMessageID()) }, ""},
		{"a retry with the header again", func() Result {
			return w.chatWith(alice, aliceKey, pubs(alice, bob, carol), crypto.NewMessageID())
		}, ""},
		{"a duplicate id, even with a header", func() Result {
			return w.chatWith(bob, bobKey, pubs(alice, bob, carol), dup)
		}, "duplicate message id"},
		{"the duplicate registered nothing", func() Result { return w.chatWith(bob, bobKey, nil, crypto.NewMessageID()) }, "not registered"},
		{"bob registers his key", func() Result { return w.chatWith(bob, bobKey, pubs(alice, bob, carol), crypto.NewMessageID()) }, ""},
		{"alice names bob's key id", func() Result { return w.chatWith(alice, bobKeyAsAlice(), nil, crypto.NewMessageID()) }, "not registered"},
		{"no header, the epoch field stale", func() Result {
			return w.chatWith(alice, staleEpoch(aliceKey), nil, crypto.NewMessageID())
		}, "epoch"},
		{"dave joins", func() Result { return w.join(3) }, ""},
		{"after a join: a key of the old epoch", func() Result { return w.chatWith(alice, aliceKey, nil, crypto.NewMessageID()) }, "epoch"},
		{"after a join: a new key to the old members", func() Result {
			return w.chatWith(alice, newKey(alice), pubs(alice, bob, carol), crypto.NewMessageID())
		}, "recipients"},
		{"after a join: a new key to the new members", func() Result {
			bobKey2 = newKey(bob)
			return w.chatWith(bob, bobKey2, pubs(alice, bob, carol, dave), crypto.NewMessageID())
		}, ""},
		{"after a join: then no header", func() Result { return w.chatWith(bob, bobKey2, nil, crypto.NewMessageID()) }, ""},
		{"carol registers a key", func() Result {
			carolKey = newKey(carol)
			return w.chatWith(carol, carolKey, pubs(alice, bob, carol, dave), crypto.NewMessageID())
		}, ""},
		{"alice removes dave", func() Result {
			r := w.conf(alice, crypto.TypeRemove, &TargetBody{Target: key(dave)}, RaftID(dave.Public().Sign), Remove)
			removedAt = w.index
			return r
		}, ""},
		{"after a removal: the removed member writes", func() Result {
			davesKey = newKey(dave)
			return w.chatWith(dave, davesKey, pubs(alice, bob, carol), crypto.NewMessageID())
		}, "not a member"},
		{"after a removal: a key registered before", func() Result { return w.chatWith(carol, carolKey, nil, crypto.NewMessageID()) }, "epoch"},
		{"after a removal: a header that still includes the removed member", func() Result {
			return w.chatWith(carol, newKey(carol), pubs(alice, bob, carol, dave), crypto.NewMessageID())
		}, "recipients"},
		{"after a removal: a new key to the remaining members", func() Result {
			return w.chatWith(carol, newKey(carol), pubs(alice, bob, carol), crypto.NewMessageID())
		}, ""},
	}
	for _, st := range steps {
		r := st.do()
		if st.want == "" {
			if r.Err != nil {
				t.Fatalf("%s: rejected: %v", st.name, r.Err)
			}
			continue
		}
		if !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), st.want) {
			t.Fatalf("%s: got %v, want a rejection containing %q", st.name, r.Err, st.want)
		}
	}
	if w.s.Epoch != removedAt {
		t.Fatalf("epoch %d, want the removal's index %d", w.s.Epoch, removedAt)
	}
}

// TestChatRecordsItsKey checks what an accepted chat tells the node about its
// sender key: the registering entry, and whether it carries the header.
func TestChatRecordsItsKey(t *testing.T) {
	w := newWorld(t, 2)
	w.genesis()
	w.join(1)
	k := crypto.NewSenderKey(w.group, w.ids[1].Public().Sign, w.s.Epoch)
	first := w.chatWith(w.ids[1], k, w.s.Recipients(), crypto.NewMessageID())
	second := w.chatWith(w.ids[1], k, nil, crypto.NewMessageID())
	again := w.chatWith(w.ids[1], k, w.s.Recipients(), crypto.NewMessageID())
	for _, r := range []Result{first, second, again} {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if c := r.Chat; c.KeyAt != first.Chat.Index || c.KeyID != k.ID || c.Epoch != w.s.Epoch {
			t.Fatalf("chat at %d: key %x of epoch %d registered at %d, want %x, %d, %d", c.Index, c.KeyID[:4], c.Epoch, c.KeyAt, k.ID[:4], w.s.Epoch, first.Chat.Index)
		}
	}
	if !first.Chat.Header || second.Chat.Header || !again.Chat.Header {
		t.Fatal("Header does not say which messages carry the key header")
	}
	if at, ok := w.s.KeyRegistered(w.ids[1].Public().Sign, k.ID); !ok || at != first.Chat.Index {
		t.Fatalf("KeyRegistered = %d, %v", at, ok)
	}
}
