package adversary

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// A malicious host: its node's link rewrites what it sends to one member
// (the victim), re-signed with the host's own key, as a modified build of
// the host's node would send it. Everything else it sends, and everything
// sent to it, is honest.

// rewriteFn changes one raft message the host is about to send to the
// victim; it returns the messages to send instead (none drops it).
type rewriteFn func(m *pb.Message) []*pb.Message

type forkingLink struct {
	inner  node.Link
	id     *identity.Identity
	victim string // the victim's peer URL
	mu     sync.Mutex
	fn     rewriteFn
}

func (l *forkingLink) set(fn rewriteFn) {
	l.mu.Lock()
	l.fn = fn
	l.mu.Unlock()
}

func (l *forkingLink) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	l.mu.Lock()
	fn := l.fn
	l.mu.Unlock()
	if url == l.victim && fn != nil {
		frame = l.rewrite(frame, fn)
	}
	return l.inner.Post(ctx, url, frame)
}

// rewrite applies fn to each raft message of a batch and signs the result
// again as the host; any other frame goes as it is.
func (l *forkingLink) rewrite(frame []byte, fn rewriteFn) []byte {
	env, err := crypto.Verify(frame)
	if err != nil || env.Type != crypto.TypeBatch {
		return frame
	}
	items, err := crypto.DecodeBatch(env.Payload)
	if err != nil {
		return frame
	}
	var out [][]byte
	for _, it := range items {
		m := &pb.Message{}
		if err := proto.Unmarshal(it, m); err != nil {
			return frame
		}
		for _, r := range fn(m) {
			b, err := proto.Marshal(r)
			if err != nil {
				return frame
			}
			out = append(out, b)
		}
	}
	if env.Payload, err = crypto.EncodeBatch(out); err != nil {
		return frame
	}
	signed, err := crypto.Sign(l.id, env)
	if err != nil {
		return frame
	}
	return signed
}

// forkGroup forms a group of three, node 0 its host with a forking link to
// node 2; members ping each other (exchanging signed heads) and the host
// does not move.
func forkGroup(t testing.TB) (*group, *forkingLink) {
	return forkGroupEvery(t, 0)
}

// forkGroupEvery is forkGroup with members pinging each other every
// interval (0: the tests' 100 ms).
func forkGroupEvery(t testing.TB, interval time.Duration) (*group, *forkingLink) {
	link := &forkingLink{}
	g := newGroup(t, 3, options{heads: true, pingInterval: interval, tweak: map[int]func(*node.Config){
		0: func(cfg *node.Config) {
			link.inner, link.id = cfg.Link, cfg.Identity
			cfg.Link = link
		},
	}})
	link.victim = g.c.Member(2).URL
	g.form(0, 1, 2)
	g.send(0, "hello")
	return g, link
}

// waitFork waits until node i shows a fork alert and returns it.
func (g *group) waitFork(i int) *api.ForkAlert {
	g.t.Helper()
	var alert *api.ForkAlert
	g.c.Eventually(g.t, 30*time.Second, "node to find the fork", func() bool {
		st, ok := g.c.Status(i)
		alert = st.Fork
		return ok && alert != nil
	})
	return alert
}

// halted checks that node i refuses to send in the group, saying why.
func (g *group) halted(i int) {
	g.t.Helper()
	_, err := g.node(i).Send(ctxT(g.t, 10*time.Second), g.id, "still there?", time.Second)
	if !errors.Is(err, api.ErrHalted) {
		g.t.Errorf("node%d sends in a forked group: %v", i, err)
	} else if !strings.Contains(err.Error(), "histor") {
		g.t.Errorf("node%d's refusal does not say why: %v", i, err)
	}
}

// forkNextChat has the host's link send node 2, from now on, member m's
// next chat message as a latency map of the host's, the same substitute
// on every resend. It returns when the substitute was first sent.
//
// The host tells node 2 that the entry is committed only once member m
// knows its message committed: an honest node 2 states its head as soon as
// it applies the entry, and the host's own node halts on that statement and
// sends nothing more, so without the wait m's message could stay
// uncommitted on m (a host that stops there forks no one; the tests want
// both histories committed).
func (g *group) forkNextChat(link *forkingLink, m int) (sent <-chan time.Time) {
	substitute := g.signBy(0, crypto.TypeLatencyMap, &state.LatencyBody{})
	var mu sync.Mutex
	var original []byte
	var at uint64 // the index of m's message
	first := make(chan time.Time, 1)
	link.set(func(msg *pb.Message) []*pb.Message {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range msg.GetEntries() {
			env, err := crypto.Verify(e.GetData())
			if err != nil {
				continue
			}
			if original == nil && env.Type == crypto.TypeChat && env.Sender == g.pub(m).Sign {
				original, at = e.GetData(), e.GetIndex()
				first <- time.Now()
			}
			if original != nil && string(e.GetData()) == string(original) {
				e.Data = substitute
			}
		}
		if at > 0 && msg.GetCommit() >= at {
			if st, ok := g.groupStatus(m, g.id); !ok || st.Committed < at {
				msg.Commit = proto.Uint64(at - 1)
			}
		}
		return []*pb.Message{msg}
	})
	return first
}

// TestHostForksTheGroup: the host shows node 2 another entry in place of
// node 1's message (a fork: raft compares only terms, so it cannot tell).
// Nodes 1 and 2 compare their signed heads in their direct pings, and each
// halts the group with the proof and tells its user who differs; nothing
// more is sent or committed, and no node panics.
func TestHostForksTheGroup(t *testing.T) {
	g, link := forkGroup(t)

	g.forkNextChat(link, 1)
	g.send(1, "meet at noon")

	a1, a2 := g.waitFork(1), g.waitFork(2)
	if a1.Peer != g.pub(2).String() {
		t.Errorf("node1's alert names %q, want node2 (whose history differs): %+v", a1.Peer, a1)
	}
	if a2.Peer != g.pub(0).String() && a2.Peer != g.pub(1).String() {
		t.Errorf("node2's alert names %q, want node0 or node1: %+v", a2.Peer, a2)
	}
	for _, a := range []*api.ForkAlert{a1, a2} {
		// Node 2 may hear the host itself first: "the host states a
		// history that differs from the one it showed you".
		if !strings.Contains(a.Message, "histor") || !strings.Contains(a.Message, "halted") || a.Index == 0 {
			t.Errorf("the alert does not say what happened: %+v", a)
		}
	}
	t.Logf("node1: %s", a1.Message)
	t.Logf("node2: %s", a2.Message)
	g.halted(1)
	g.halted(2)

	// The halt survives a restart: the proof is kept.
	g.c.Crash(2)
	if err := g.c.Restart(2); err != nil {
		t.Fatal(err)
	}
	if st, ok := g.c.Status(2); !ok || st.Fork == nil || st.Role != "halted" {
		t.Errorf("after a restart node2 shows %+v, want the group halted with its alert", st)
	}
	// It still reads its history, and still names who differs.
	g.c.Eventually(t, 30*time.Second, "node2 to read its history again", func() bool {
		ms, err := g.node(2).Messages(g.id)
		return err == nil && len(ms) > 0 && ms[0].Text == "hello"
	})
	if st, _ := g.c.Status(2); st.Fork.PeerName == "a former member" || st.Fork.PeerName == "" {
		t.Errorf("after a restart the alert names %q", st.Fork.PeerName)
	}
}

// TestHostRewritesCommittedEntry: the host re-sends node 2 an entry that
// node 2 has already committed, under another term. raft drops an append
// below its commit index without a word; an honest host only ever re-sends
// a committed entry as it was, so the signed append is proof that the host
// contradicts itself: the node halts the group, says so, and goes on
// serving its other requests.
func TestHostRewritesCommittedEntry(t *testing.T) {
	g, link := forkGroup(t)
	idx := last(g.log(2))
	g.applied(idx, 2)

	// What the host sends node 2 tells it the terms of the entries
	// around idx; the next append carries a conflicting copy of idx.
	var once sync.Once
	link.set(func(m *pb.Message) []*pb.Message {
		if m.GetType() != pb.MsgApp && m.GetType() != pb.MsgHeartbeat {
			return []*pb.Message{m}
		}
		out := []*pb.Message{m}
		once.Do(func() {
			ents, err := g.node(0).RaftEntries(g.id, idx-1, idx+1)
			if err != nil || len(ents) != 2 {
				t.Errorf("the host's own entries around %d: %v", idx, err)
				return
			}
			bad := proto.Clone(ents[1]).(*pb.Entry)
			bad.Term = proto.Uint64(ents[1].GetTerm() + 1)
			out = append(out, &pb.Message{
				Type: pb.MsgApp.Enum(), From: proto.Uint64(m.GetFrom()), To: proto.Uint64(m.GetTo()),
				Term: proto.Uint64(m.GetTerm()), Index: proto.Uint64(idx - 1), LogTerm: proto.Uint64(ents[0].GetTerm()),
				Entries: []*pb.Entry{bad}, Commit: proto.Uint64(m.GetCommit()),
			})
		})
		return out
	})
	a := g.waitFork(2)
	if a.Index != idx || !strings.Contains(a.Message, "contradicts") {
		t.Errorf("alert %+v, want one about entry %d", a, idx)
	}
	g.halted(2)
	if _, err := g.node(2).Messages(g.id); err != nil {
		t.Errorf("a halted group's messages can no longer be read: %v", err)
	}
}

// TestTranscriptAttestedByPeers: the heads members exchange directly are
// kept with the history and go into transcripts, so that `verify --trust`
// of another member passes once that member has stated the exporter's
// history up to its end, and not before.
func TestTranscriptAttestedByPeers(t *testing.T) {
	g := newGroup(t, 2, options{heads: true})
	g.form(0, 1)
	g.send(0, "for the record")
	ctx := ctxT(t, 60*time.Second)
	g.c.Eventually(t, 30*time.Second, "node1's head to reach the end of node0's transcript", func() bool {
		doc, err := g.node(0).Transcript(ctx, g.id, api.TranscriptRange{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = transcript.Verify(doc, []identity.PublicID{g.pub(0), g.pub(1)})
		if err != nil && !errors.Is(err, transcript.ErrUntrusted) {
			t.Fatalf("the transcript does not verify: %v", err)
		}
		return err == nil
	})
}

// TestHostReordersMessages: the host shows node 2 two of node 1's messages
// in the other order (an append that carries both, the two swapped; the
// appends with only one of them are held back until raft sends one with
// both). Same entries, same term, another order: a fork, found and shown
// like any other.
func TestHostReordersMessages(t *testing.T) {
	g, link := forkGroup(t)
	g.swapNextTwo(link, false)
	g.sendTwo(1)
	a1, a2 := g.waitFork(1), g.waitFork(2)
	t.Logf("node1: %s", a1.Message)
	t.Logf("node2: %s", a2.Message)
	g.halted(2)
}

// TestForkFoundByALaggingVictim: the host swaps node 1's two messages for
// node 2, as in TestHostReordersMessages, and tells node 2 that only the
// first of the two positions is committed, never anything after it. Nodes
// 0 and 1 find the fork from node 2's statement through that position and
// halt. From then on node 2 hears only from halted nodes, which apply what
// they hold and so have heads past anything node 2 can check: they must
// state their history through the fork's index, or node 2 never learns
// that its group forked and sees only a group without a host.
func TestForkFoundByALaggingVictim(t *testing.T) {
	g, link := forkGroup(t)
	swapped := g.swapNextTwo(link, true)
	g.sendTwo(1)
	a1 := g.waitFork(1)
	a2 := g.waitFork(2)
	if at := swapped(); a2.Index != at {
		t.Errorf("node2's alert is about entry %d, want %d (the swapped position): %+v", a2.Index, at, a2)
	}
	t.Logf("node1: %s", a1.Message)
	t.Logf("node2: %s", a2.Message)
	g.halted(2)
}

// sendTwo has node i send "first" and then "second", each committed.
func (g *group) sendTwo(i int) {
	g.t.Helper()
	for _, text := range []string{"first", "second"} {
		if _, err := g.node(i).Send(ctxT(g.t, 10*time.Second), g.id, text, 0); err != nil {
			g.t.Fatal(err)
		}
	}
}

// swapNextTwo has the host's link show node 2 member 1's next two chat
// messages in the other order: an append that carries both has them
// swapped, and appends with only one of them are held back until raft
// sends one with both. With lag, node 2 is told that the first of the two
// positions is committed only once member 1 knows both committed (so that
// its sends return), and never anything after it. It returns the first of
// the two indexes once they were swapped (0 before).
func (g *group) swapNextTwo(link *forkingLink, lag bool) (swapped func() uint64) {
	var mu sync.Mutex
	var first, second []byte // member 1's next two chat frames, in log order
	var at uint64
	link.set(func(m *pb.Message) []*pb.Message {
		if m.GetType() != pb.MsgApp && !lag {
			return []*pb.Message{m}
		}
		mu.Lock()
		defer mu.Unlock()
		var pos []int // positions of the two in this append
		for i, e := range m.GetEntries() {
			env, err := crypto.Verify(e.GetData())
			if err != nil || env.Type != crypto.TypeChat || env.Sender != g.pub(1).Sign {
				continue
			}
			switch {
			case first == nil:
				first = e.GetData()
			case second == nil && string(e.GetData()) != string(first):
				second = e.GetData()
			}
			if string(e.GetData()) == string(first) || string(e.GetData()) == string(second) {
				pos = append(pos, i)
			}
		}
		switch {
		case len(pos) == 2:
			es := m.GetEntries()
			es[pos[0]].Data, es[pos[1]].Data = es[pos[1]].GetData(), es[pos[0]].GetData()
			if at == 0 {
				at = es[pos[0]].GetIndex()
			}
		case len(pos) == 1:
			return nil // held back until an append carries both
		}
		if lag && at > 0 {
			limit := at
			if st, ok := g.groupStatus(1, g.id); !ok || st.Committed <= at {
				limit = at - 1
			}
			if m.GetCommit() > limit {
				m.Commit = proto.Uint64(limit)
			}
		}
		return []*pb.Message{m}
	})
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return at
	}
}
