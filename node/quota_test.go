package node_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// chatTally is what the state machine made of one member's chat entries in
// a group's log.
type chatTally struct {
	accepted, rejected           int
	acceptedBytes, rejectedBytes int
	reasons                      []string
	// duplicates counts the rejected entries that were copies of an
	// accepted one: a node proposes a message again when its commit is
	// slow to come (a loaded machine), and the state machine takes it
	// once.
	duplicates int
}

// chatOutcomes replays the committed log of the group as n holds it into a
// fresh state machine and tallies every member's chat entries: what the log
// grew by, and what of it was accepted.
func chatOutcomes(t testing.TB, n *node.Node, groupID string) map[[32]byte]*chatTally {
	t.Helper()
	entries, err := n.LogFrames(groupID)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := crypto.ParseGroupID(groupID)
	if err != nil {
		t.Fatal(err)
	}
	s := state.New(gid)
	out := map[[32]byte]*chatTally{}
	for _, e := range entries {
		var r state.Result
		if e.Kind == transcript.KindConf {
			r = s.ApplyConf(e.Index, e.NodeID, e.Change, e.Frame)
		} else {
			r = s.ApplyEntry(e.Index, e.Frame)
		}
		if r.Env == nil || r.Env.Type != crypto.TypeChat {
			continue
		}
		ct := out[r.Env.Sender]
		if ct == nil {
			ct = &chatTally{}
			out[r.Env.Sender] = ct
		}
		if r.Err == nil {
			ct.accepted++
			ct.acceptedBytes += len(e.Frame)
		} else {
			ct.rejected++
			ct.rejectedBytes += len(e.Frame)
			ct.reasons = append(ct.reasons, r.Err.Error())
			if strings.Contains(r.Err.Error(), "duplicate message id") {
				ct.duplicates++
			}
		}
	}
	return out
}

func tallyOf(m map[[32]byte]*chatTally, id *identity.Identity) chatTally {
	if ct := m[id.Public().Sign]; ct != nil {
		return *ct
	}
	return chatTally{}
}

// setSettings has member i (an admin) set the group's settings, and waits
// until every live member knows them.
func (c *cluster) setSettings(i int, s node.GroupSettings) {
	c.t.Helper()
	// The bound is how long the test waits for the settings to commit, as
	// for a send (cluster.send).
	if err := c.Node(i).SetSettings(ctxT(c.t, 2*time.Minute), c.GroupID, s); err != nil {
		c.t.Fatal(err)
	}
	c.Eventually(c.t, 30*time.Second, "every member to know the settings", func() bool {
		for _, j := range c.Live() {
			g, ok := c.Status(j)
			want := s
			if want.MsgsPerMinute == 0 {
				want.MsgsPerMinute = state.DefaultMsgsPerMinute
			}
			if want.BytesPerDay == 0 {
				want.BytesPerDay = state.DefaultBytesPerDay
			}
			if want.Relays == nil {
				want.Relays = []string{}
			}
			if !ok || !reflect.DeepEqual(g.Settings, want) {
				return false
			}
		}
		return true
	})
}

// maxMessage is a chat message of the largest size a member may send.
func maxMessage(k int) string {
	head := fmt.Sprintf("max %02d ", k)
	return head + strings.Repeat("x", crypto.MaxBody-len(head))
}

// TestOwnNodeHoldsMessagesOverQuota: a member that sends more than its
// quota allows has its node hold the rest back, queued: they reach neither
// the host nor the log (no message of it is ever rejected or refused), and
// they are sent, each exactly once, when the quota allows (here: an admin
// raises it).
func TestOwnNodeHoldsMessagesOverQuota(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 21, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.setSettings(0, node.GroupSettings{BytesPerDay: state.MinBytesPerDay})
	const sent = 20
	// Frames of a bit over 64 KiB: 15 fit in a day of 1 MiB.
	const fit = 15
	for k := range sent {
		if m := c.send(1, maxMessage(k), 0); m.State != node.StateTentative {
			t.Fatalf("message %d: %s, want queued at once", k, m.State)
		}
	}
	sender := c.Member(1).ID
	counts := func(i int) (committed, queued int) {
		ms, err := c.Node(i).Messages(c.GroupID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Author == sender.Public().String() {
				if m.State == node.StateCommitted {
					committed++
				} else {
					queued++
				}
			}
		}
		return committed, queued
	}
	var com, q int
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	if err := c.Until(wctx, fmt.Sprintf("%d messages committed, %d held", fit, sent-fit), func() bool {
		com, q = counts(1)
		return com == fit && q == sent-fit
	}); err != nil {
		t.Fatalf("%v: %d committed, %d held", err, com, q)
	}
	// Time passes (other members chat), the quota does not allow more.
	for k := range 3 {
		c.send(2, fmt.Sprintf("meanwhile %d", k), 20*time.Second)
	}
	if com, q := counts(1); com != fit || q != sent-fit {
		t.Fatalf("%d committed and %d queued while over quota, want %d and %d", com, q, fit, sent-fit)
	}
	// The status says that the quota is why they wait.
	c.Eventually(t, 20*time.Second, "the status to count the held messages", func() bool {
		g := c.Node(1).Status().Groups[0]
		return g.Queued == sent-fit && g.Held == sent-fit
	})
	c.setSettings(0, node.GroupSettings{})
	c.Eventually(t, 60*time.Second, "every message of the member committed", func() bool {
		com, q := counts(1)
		return com == sent && q == 0
	})
	ms := c.converged(sent + 3)
	seen := map[string]int{}
	for _, m := range ms {
		seen[m.Text]++
	}
	for k := range sent {
		if seen[maxMessage(k)] != 1 {
			t.Fatalf("message %d listed %d times", k, seen[maxMessage(k)])
		}
	}
	// Nothing of the member's was refused or rejected along the way: its
	// node did not send what the quota did not allow. (A copy of a message
	// proposed again while its commit was slow is rejected as a duplicate,
	// which is not what this test is about.)
	for _, i := range c.Live() {
		ct := tallyOf(chatOutcomes(t, c.Node(i), c.GroupID), sender)
		if ct.accepted != sent || ct.rejected != ct.duplicates {
			t.Fatalf("node%d's log: %d accepted, %d rejected (%v), want %d and none but duplicates", i, ct.accepted, ct.rejected, ct.reasons, sent)
		}
		for reason, k := range c.Node(i).Status().Rejected {
			if strings.Contains(reason, "quota") {
				t.Fatalf("node%d refused %d entries: %s", i, k, reason)
			}
		}
	}
}

// rogue speaks as a member whose node is down: it signs what it likes and
// hands it to the host as raft proposals.
type rogue struct {
	t       testing.TB
	id      *identity.Identity
	gid     crypto.GroupID
	epoch   uint64
	members []identity.PublicID // sorted: the recipients of a key header
	key     *crypto.SenderKey
	counter atomic.Uint64
}

func newRogue(t testing.TB, id *identity.Identity, groupID string, epoch uint64, members []*identity.Identity) *rogue {
	gid, _ := crypto.ParseGroupID(groupID)
	r := &rogue{t: t, id: id, gid: gid, epoch: epoch}
	r.counter.Store(uint64(time.Now().UnixNano()))
	for _, m := range members {
		r.members = append(r.members, m.Public())
	}
	sort.Slice(r.members, func(i, j int) bool { return r.members[i].Compare(r.members[j]) < 0 })
	r.key = crypto.NewSenderKey(gid, id.Public().Sign, epoch)
	return r
}

// chat is a signed chat entry of body, under the rogue's sender key, with
// the key header (the first accepted one registers the key).
func (r *rogue) chat(body string) []byte {
	id := crypto.NewMessageID()
	sealed, err := crypto.SealMessage(r.id, &crypto.Message{Group: r.gid, ID: id, Time: time.Now().UnixNano(), Body: []byte(body)}, r.key, r.members)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.entry(r.id, crypto.TypeChat, &state.ChatBody{ID: id[:], Sealed: sealed})
}

// entry signs a log entry as signer.
func (r *rogue) entry(signer *identity.Identity, t crypto.Type, body any) []byte {
	payload, err := state.Encode(body)
	if err != nil {
		r.t.Fatal(err)
	}
	f, err := crypto.Sign(signer, &crypto.Envelope{Type: t, Group: r.gid, Counter: r.next(), Time: time.Now().UnixNano(), Payload: payload})
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

func (r *rogue) next() uint64 { return r.counter.Add(1) }

// propose is a batch frame for the host with one proposal of entries.
func (r *rogue) propose(host *identity.Identity, entries ...[]byte) []byte {
	m := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(state.RaftID(r.id.Public().Sign)), To: proto.Uint64(state.RaftID(host.Public().Sign))}
	for _, e := range entries {
		m.Entries = append(m.Entries, &pb.Entry{Type: pb.EntryNormal.Enum(), Data: e})
	}
	return signBatch(r.t, r.id, r.gid, host.Public().Sign, r.next(), m)
}

// TestHostDropsProposals: the host drops, before they enter the log, the
// entries a member forwards that could only be rejected: another member's
// entry, a message over the member's quota, one already committed, and a
// malformed one. Each is counted under its reason, and the log holds only
// what was accepted.
func TestHostDropsProposals(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4, 22, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(4)
	c.setSettings(0, node.GroupSettings{MsgsPerMinute: 2})
	h := c.waitHost(-1)
	// The rogue is a member other than the host and the admin; its node
	// goes down so that the test can sign as it.
	ri := 3
	if h == 3 {
		ri = 2
	}
	stats, err := node.GroupLogStats(c.Node(h), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []*identity.Identity
	for _, m := range c.Members() {
		ids = append(ids, m.ID)
	}
	c.Crash(ri)
	host := c.Node(h)
	hostID := c.Member(h).ID
	r := newRogue(t, c.Member(ri).ID, c.GroupID, stats.Epoch, ids)
	other := c.Member(0).ID
	if h == 0 {
		other = c.Member(1).ID
	}

	first, second, third := r.chat("one"), r.chat("two"), r.chat("three")
	junk := []byte("not an envelope")
	cases := []struct {
		name    string
		entries [][]byte
		reason  string
	}{
		{"another member's entry", [][]byte{r.entry(other, crypto.TypeAddress, &state.AddressBody{URL: "http://elsewhere.example"})}, "proposal of an entry signed by another member"},
		{"a malformed entry", [][]byte{junk}, "proposal of a malformed entry"},
		// Two fit in the minute, the third does not: dropped while the
		// first two are on their way.
		{"over the quota", [][]byte{first, second, third}, "proposal over the member's quota"},
		{"already on its way or committed", [][]byte{first}, "proposal of a message already committed or on its way"},
	}
	for _, tc := range cases {
		before := host.Status().Rejected[tc.reason]
		if _, err := host.HandleFrame(ctxT(t, 10*time.Second), r.propose(hostID, tc.entries...)); err != nil {
			t.Fatalf("%s: the batch was refused: %v", tc.name, err)
		}
		c.Eventually(t, 20*time.Second, tc.name+" dropped by the host", func() bool {
			return host.Status().Rejected[tc.reason] > before
		})
	}
	c.Eventually(t, 20*time.Second, "the rogue's two messages committed", func() bool {
		return tallyOf(chatOutcomes(t, host, c.GroupID), r.id).accepted == 2
	})
	// Through a host that has applied them: still refused.
	before := host.Status().Rejected[cases[3].reason]
	if _, err := host.HandleFrame(ctxT(t, 10*time.Second), r.propose(hostID, second)); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 20*time.Second, "a committed message dropped by the host", func() bool {
		return host.Status().Rejected[cases[3].reason] > before
	})
	c.send(0, "after the rogue", 20*time.Second)
	ct := tallyOf(chatOutcomes(t, host, c.GroupID), r.id)
	if ct.accepted != 2 || ct.rejected != 0 {
		t.Fatalf("the rogue's messages in the log: %d accepted, %d rejected (%v); want 2 and none", ct.accepted, ct.rejected, ct.reasons)
	}
	entries, err := host.LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if bytes.Equal(e.Frame, junk) || bytes.Equal(e.Frame, cases[0].entries[0]) || bytes.Equal(e.Frame, third) {
			t.Fatalf("a dropped entry is in the log at %d", e.Index)
		}
	}
}
