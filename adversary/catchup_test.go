package adversary

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// Attacks on catching up from anyone (node/catchup.go): a member that does
// not know a frame's signer answers it with a behind notice and takes the
// log the signer then pushes, but trusts nobody the pushed chain does not
// prove a member, entry by entry, from what it already knew.

// post sends frame to node i's peer listener and returns the HTTP status
// and body.
func (g *group) post(i int, frame []byte) (int, []byte) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(ctxT(g.t, 10*time.Second), http.MethodPost, g.c.Member(i).URL+node.PeerPath, bytes.NewReader(frame))
	if err != nil {
		g.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// strangerBatch is a batch envelope of the group from id to node i, holding
// a vote request at term: what a member the node does not know sends.
func (g *group) strangerBatch(id *identity.Identity, i int, term uint64) []byte {
	g.t.Helper()
	m := &raftpb.Message{Type: raftpb.MsgVote.Enum(), From: proto.Uint64(state.RaftID(id.Public().Sign)),
		To: proto.Uint64(state.RaftID(g.pub(i).Sign)), Term: proto.Uint64(term), Index: proto.Uint64(1 << 20), LogTerm: proto.Uint64(term)}
	b, err := proto.Marshal(m)
	if err != nil {
		g.t.Fatal(err)
	}
	payload, err := crypto.EncodeBatch([][]byte{b})
	if err != nil {
		g.t.Fatal(err)
	}
	f, err := crypto.Sign(id, &crypto.Envelope{Type: crypto.TypeBatch, Group: g.gid, To: g.pub(i).Sign, Payload: payload, Counter: 1, Time: time.Now().UnixNano()})
	if err != nil {
		g.t.Fatal(err)
	}
	return f
}

// askedFor posts stranger batches of id to node i until the node answers
// one with a behind notice (it checks one stranger's frame per 200 ms), and
// returns the index the notice says the node applied.
func (g *group) askedFor(id *identity.Identity, i int, term uint64) uint64 {
	g.t.Helper()
	var applied uint64
	g.c.Eventually(g.t, 30*time.Second, "a behind notice", func() bool {
		code, body := g.post(i, g.strangerBatch(id, i, term))
		if code != http.StatusConflict {
			return false
		}
		env, err := crypto.Verify(body)
		if err != nil || env.Type != crypto.TypeBehind || env.Sender != g.pub(i).Sign {
			g.t.Fatalf("node%d answered a stranger with %d and %x (%v), want its signed behind notice", i, code, body, err)
		}
		var b struct {
			_       struct{} `cbor:",toarray"`
			Applied uint64
			URL     string
		}
		if err := state.Decode(env.Payload, &b); err != nil {
			g.t.Fatal(err)
		}
		applied = b.Applied
		return true
	})
	return applied
}

// catchUp is a catch-up envelope from id to node i: the frames as entries
// from index from on, and commit as the end of the log.
func (g *group) catchUp(id *identity.Identity, i int, from, commit uint64, frames ...[]byte) []byte {
	g.t.Helper()
	head, err := state.Encode(&struct {
		_      struct{} `cbor:",toarray"`
		Commit uint64
	}{Commit: commit})
	if err != nil {
		g.t.Fatal(err)
	}
	items := [][]byte{head}
	for k, f := range frames {
		e := &raftpb.Entry{Index: proto.Uint64(from + uint64(k)), Term: proto.Uint64(1 << 10), Type: raftpb.EntryNormal.Enum(), Data: f}
		b, err := proto.Marshal(e)
		if err != nil {
			g.t.Fatal(err)
		}
		items = append(items, b)
	}
	payload, err := crypto.EncodeBatch(items)
	if err != nil {
		g.t.Fatal(err)
	}
	f, err := crypto.Sign(id, &crypto.Envelope{Type: crypto.TypeCatchUp, Group: g.gid, To: g.pub(i).Sign, Payload: payload, Counter: 2, Time: time.Now().UnixNano()})
	if err != nil {
		g.t.Fatal(err)
	}
	return f
}

// TestOutsiderPushesAForgedChain: an outsider that knows the group's id
// makes a member ask it for the log, then pushes a chain in which it
// invites itself and joins, and replays of the real log's invite and join
// frames. The member's copy of its state rejects each entry (the outsider
// is no member to invite; the replays break the counter rule), so the
// outsider is trusted for nothing: the member's state is unchanged and the
// outsider's vote requests at a higher term still never reach raft.
// (Watched to succeed with takeCatchUp trusting the pusher on its word, as
// a provisional voter, when the chain did not name it: node0 took the
// outsider's vote request.)
func TestOutsiderPushesAForgedChain(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 3, options{})
	g.form(0, 1)
	before := g.settled(0, 1)
	outsider := g.ident(2) // a real identity, in no group
	// node0 asks strangers for the log only while it knows no host, as a
	// member back from a long absence does.
	g.hostless(0, 1)
	st, _ := g.c.Status(0)
	term := st.Term

	applied := g.askedFor(outsider, 0, term+5)
	invite, err := crypto.Sign(outsider, &crypto.Envelope{Type: crypto.TypeInvite, Group: g.gid, To: outsider.Public().Sign,
		Payload: mustEncode(t, &state.InviteBody{Invitee: outsider.Public().Bytes(), Expires: time.Now().Add(time.Hour).UnixNano()}),
		Counter: 10, Time: time.Now().UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	var replays [][]byte
	for _, e := range g.log(0) {
		if env, err := crypto.Verify(e.Frame); err == nil && (env.Type == crypto.TypeInvite || env.Type == crypto.TypeJoin) {
			replays = append(replays, e.Frame)
		}
	}
	frames := append([][]byte{invite}, replays...)
	refused := g.count("catch-up from a member the chain does not name", 0)
	code, body := g.post(0, g.catchUp(outsider, 0, applied+1, applied+uint64(len(frames)), frames...))
	if code != http.StatusForbidden {
		t.Errorf("the forged chain was answered %d %q, want 403", code, body)
	}
	g.rose(refused, 1)

	// Still a stranger: its vote at a higher term moves nothing.
	for k := 0; k < 3; k++ {
		if code, _ := g.post(0, g.strangerBatch(outsider, 0, term+5)); code == http.StatusOK {
			t.Fatal("node0 took the outsider's vote request after the forged chain")
		}
	}
	if st, _ := g.c.Status(0); st.Term >= term+5 {
		t.Errorf("node0's term moved to %d, the outsider's", st.Term)
	}
	g.unchanged(before, 0)
}

// hostless takes node down down and waits until node i knows no host.
func (g *group) hostless(i, down int) {
	g.t.Helper()
	g.c.Crash(down)
	g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("node%d to know no host", i), func() bool {
		st, ok := g.c.Status(i)
		return ok && st.Host == ""
	})
}

// TestCatchUpNobodyAskedFor: a catch-up pushed without a behind notice is
// refused, whatever it holds.
func TestCatchUpNobodyAskedFor(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 3, options{})
	g.form(0, 1)
	before := g.settled(0, 1)
	outsider := g.ident(2)
	var frames [][]byte
	for _, e := range g.log(1) {
		frames = append(frames, e.Frame)
	}
	st, _ := g.c.Status(0)
	for k := 0; k < 5; k++ {
		if code, _ := g.post(0, g.catchUp(outsider, 0, st.Committed+1, st.Committed+uint64(len(frames)), frames...)); code != http.StatusForbidden {
			t.Fatalf("an unasked catch-up was answered %d, want 403", code)
		}
	}
	g.unchanged(before, 0, 1)
}

// TestRemovedMemberGetsNoNotice: a member that saw another removed does not
// ask it for the log: its frames are refused plainly, as before.
func TestRemovedMemberGetsNoNotice(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 3, options{})
	g.form(0, 1, 2)
	if err := g.node(0).Remove(ctxT(t, 30*time.Second), g.id, g.pub(2).String()); err != nil {
		t.Fatal(err)
	}
	g.c.Eventually(t, 30*time.Second, "node2's removal on node0", func() bool {
		st, ok := g.c.Status(0)
		return ok && len(st.Members) == 2
	})
	before := g.settled(0, 1)
	g.hostless(0, 1)
	st, _ := g.c.Status(0)
	// node0, knowing no host, checks one stranger's frame per 200 ms in
	// full: frames for a second include several it checked.
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		code, body := g.post(0, g.strangerBatch(g.ident(2), 0, st.Term+5))
		if code == http.StatusConflict || code == http.StatusOK {
			t.Fatalf("node0 answered its removed member's frame %d %q, want a refusal", code, body)
		}
	}
	g.unchanged(before, 0)
}

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := state.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
