package node_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/state"
)

// knownBugs runs the bad-input cases that show a node bug not fixed yet (see
// the bug field of the table in TestPeerBadInput); some of them crash the
// test binary.
var knownBugs = os.Getenv("DEMES_KNOWN_BUGS") != ""

// httpPeer is a node behind a real loopback HTTP server. The server records
// every verified frame it receives before the node sees it, so that a test
// can replay real traffic and pick envelope counters the node has not seen.
type httpPeer struct {
	i    int
	name string
	id   *identity.Identity
	url  string
	link *node.HTTPLink
	logs *testutil.LockedBuffer
	n    *node.Node
}

// httpGroup is a group of nodes talking real HTTP over loopback.
type httpGroup struct {
	t     *testing.T
	c     *nodetest.Cluster
	peers []*httpPeer
	gid   string

	mu     sync.Mutex
	seen   map[[2][32]byte]map[uint64]bool // (receiver, sender) -> counters received
	high   map[[32]byte]uint64             // sender -> highest counter seen anywhere
	frames map[[2][32]byte][][]byte        // (receiver, sender) -> frames accepted
}

func newHTTPGroup(t *testing.T, size, maxVoters int) *httpGroup {
	c := &httpGroup{t: t, seen: map[[2][32]byte]map[uint64]bool{}, high: map[[32]byte]uint64{}, frames: map[[2][32]byte][][]byte{}}
	nc, err := nodetest.New(nodetest.Options{
		Size: size, HTTP: true, Dir: t.TempDir(),
		Identity: func(i int) (*identity.Identity, error) {
			return identity.FromSeed(bytes.Repeat([]byte{byte(0x40 + i)}, 32))
		},
		Config: node.Config{
			MaxVoters: maxVoters, RetryInterval: 100 * time.Millisecond,
			// No pings: without latency maps the ranking falls back to
			// join order, so the voter set does not move during the test.
			PingInterval: time.Hour,
		},
		Handler: func(i int, h http.Handler) http.Handler {
			receiver := c.peers[i].id.Public().Sign
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, crypto.MaxFrame+2))
				if err != nil {
					http.Error(w, "cannot read", http.StatusBadRequest)
					return
				}
				c.record(receiver, body, false)
				r.Body = io.NopCloser(bytes.NewReader(body))
				sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
				h.ServeHTTP(sw, r)
				if sw.code == http.StatusOK {
					c.record(receiver, body, true)
				}
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.c = nc
	for i, m := range nc.Members() {
		p := &httpPeer{i: i, name: m.Name, id: m.ID, url: m.URL, logs: &testutil.LockedBuffer{}}
		m.Tweak = func(cfg *node.Config) {
			cfg.Logger = zerolog.New(p.logs).Level(zerolog.InfoLevel).With().Str("node", p.name).Logger()
		}
		c.peers = append(c.peers, p)
	}
	if err := nc.StartAll(); err != nil {
		t.Fatal(err)
	}
	for i, p := range c.peers {
		p.n, p.link = nc.Node(i), nc.Member(i).Link()
	}
	return c
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// record notes a verified frame arriving at receiver, and once the node
// accepted it, keeps it for replays.
func (c *httpGroup) record(receiver [32]byte, frame []byte, accepted bool) {
	env, err := crypto.Verify(frame)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2][32]byte{receiver, env.Sender}
	if accepted {
		if env.Type == crypto.TypeBatch {
			c.frames[k] = append(c.frames[k], frame)
		}
		return
	}
	if c.seen[k] == nil {
		c.seen[k] = map[uint64]bool{}
	}
	c.seen[k][env.Counter] = true
	c.high[env.Sender] = max(c.high[env.Sender], env.Counter)
}

// freshCounter returns a counter of sender's that receiver has not seen and
// that sender itself will never use: below the highest counter sender has
// used so far, in a gap left by envelopes sent elsewhere. Counters far
// ahead would push the sender's real envelopes out of the receiver's replay
// window, which is a different test. It starts some way below the highest:
// the sender's own envelopes just below it may still be on their way to
// the receiver (concurrent connections reorder them), and one arriving
// after the test's with the same counter made the test's look replayed
// (seen in CI).
func (c *httpGroup) freshCounter(receiver *httpPeer, sender *identity.Identity) uint64 {
	c.t.Helper()
	key := [2][32]byte{receiver.id.Public().Sign, sender.Public().Sign}
	c.mu.Lock()
	defer c.mu.Unlock()
	hi := c.high[sender.Public().Sign]
	if hi == 0 {
		// Never seen: any counter is new to the receiver, and one from the
		// past is one the sender will not use again.
		return uint64(time.Now().Add(-time.Minute).UnixNano())
	}
	for ctr := hi - 64; ctr > hi-crypto.ReplayWindow/2; ctr-- {
		if !c.seen[key][ctr] {
			if c.seen[key] == nil {
				c.seen[key] = map[uint64]bool{}
			}
			c.seen[key][ctr] = true
			return ctr
		}
	}
	c.t.Fatalf("no fresh counter of %s for %s", sender.Public().Fingerprint(), receiver.name)
	return 0
}

// form creates the group on peer 0 and has the others join through invites.
func (c *httpGroup) form() {
	c.t.Helper()
	if err := c.c.Form(ctxT(c.t, 60*time.Second), nodetest.FormOptions{Name: "http"}); err != nil {
		c.t.Fatal(err)
	}
	c.gid = c.c.GroupID
}

// roles waits until every peer agrees on the members, the voters and the
// host, and returns them: the host, the voters and the learners.
func (c *httpGroup) roles(wantVoters int) (host *httpPeer, voters, learners []*httpPeer) {
	c.t.Helper()
	testutil.Eventually(c.t, 30*time.Second, fmt.Sprintf("%d voters and one host agreed by every peer", wantVoters), func() bool {
		var ref string
		for _, p := range c.peers {
			st := p.n.Status()
			if len(st.Groups) != 1 || st.Groups[0].Host == "" || len(st.Groups[0].Members) != len(c.peers) {
				return false
			}
			g := st.Groups[0]
			s := g.Host
			nv := 0
			for _, m := range g.Members {
				if m.Voter {
					s += " " + m.PublicID
					nv++
				}
			}
			if nv != wantVoters || (ref != "" && s != ref) {
				return false
			}
			ref = s
		}
		return true
	})
	g := c.peers[0].n.Status().Groups[0]
	voter := map[string]bool{}
	for _, m := range g.Members {
		voter[m.PublicID] = m.Voter
	}
	for _, p := range c.peers {
		switch id := p.id.Public().String(); {
		case id == g.Host:
			host = p
			voters = append(voters, p)
		case voter[id]:
			voters = append(voters, p)
		default:
			learners = append(learners, p)
		}
	}
	return host, voters, learners
}

func (c *httpGroup) committed(p *httpPeer) []node.Message {
	ms, err := p.n.Messages(c.gid)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []node.Message
	for _, m := range ms {
		if m.State == node.StateCommitted {
			out = append(out, m)
		}
	}
	return out
}

// signRaw signs arbitrary body bytes as a frame, following PROTOCOL.md: the
// signature covers the domain string, the version, the sender and the body.
func signRaw(id *identity.Identity, version byte, body []byte) []byte {
	sender := id.Public().Sign
	head := append([]byte{version}, sender[:]...)
	msg := append(append([]byte("DeMeS envelope v1\x00"), head...), body...)
	return append(append(head, id.Sign(msg)...), body...)
}

// TestPeerBadInput sends malformed and hostile requests to the peer listener
// of a running group member over real HTTP (the members talk to each other
// through HTTPLink, over loopback). Each must be answered with its 4xx, logged
// with its reason and counted under that reason in Status().Rejected; none
// may move the term, the host or the messages; and the member keeps serving:
// a message sent afterwards commits everywhere.
func TestPeerBadInput(t *testing.T) {
	nodetest.ParallelTimed(t)
	c := newHTTPGroup(t, 3, 2)
	c.form()
	host, voters, learners := c.roles(2)
	if len(learners) != 1 {
		t.Fatalf("want one learner, have %d", len(learners))
	}
	learner := learners[0]
	// The target is the voter that does not lead: votes are for it to
	// grant, and the host keeps talking to it, so there is real traffic
	// to capture and replay.
	var target *httpPeer
	for _, p := range voters {
		if p != host {
			target = p
		}
	}
	if _, err := host.n.Send(ctxT(t, 20*time.Second), c.gid, "before the bad input", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the target to have the first message", func() bool { return len(c.committed(target)) == 1 })

	gid, _ := crypto.ParseGroupID(c.gid)
	tkey := target.id.Public().Sign
	traft := state.RaftID(tkey)
	raftOf := func(p *httpPeer) uint64 { return state.RaftID(p.id.Public().Sign) }
	before := target.n.Status().Groups[0]
	beforeMsgs := nodetest.Texts(c.committed(target))
	if before.Term < 2 {
		t.Fatalf("term %d: want at least 2 for a stale-term vote", before.Term)
	}
	outsider, _ := identity.FromSeed(bytes.Repeat([]byte{0xee}, 32))

	// envelope signs an envelope for the target with a fresh counter.
	envelope := func(signer *identity.Identity, e crypto.Envelope) []byte {
		e.Counter = c.freshCounter(target, signer)
		e.Time = time.Now().UnixNano()
		f, err := crypto.Sign(signer, &e)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	batch := func(signer *identity.Identity, group crypto.GroupID, to [32]byte, msgs ...*pb.Message) []byte {
		return signBatch(t, signer, group, to, c.freshCounter(target, signer), msgs...)
	}
	// raftMsg is a raft message from p to the target, at term.
	raftMsg := func(typ pb.MessageType, from *httpPeer, term uint64) *pb.Message {
		return &pb.Message{Type: typ.Enum(), From: proto.Uint64(raftOf(from)), To: proto.Uint64(traft),
			Term: proto.Uint64(term), LogTerm: proto.Uint64(term), Index: proto.Uint64(1 << 40), Commit: proto.Uint64(0)}
	}
	// captured is a real batch the host sent to the target, which it accepted.
	captured := func() []byte {
		c.mu.Lock()
		defer c.mu.Unlock()
		fs := c.frames[[2][32]byte{tkey, host.id.Public().Sign}]
		if len(fs) == 0 {
			t.Fatal("captured no frame from the host")
		}
		// The first one: long handled, so this is surely a replay.
		return append([]byte(nil), fs[0]...)
	}
	garbage := make([]byte, 300)
	rand.Read(garbage)
	garbage[0] = crypto.Version

	// A case whose bug is set shows a node bug not fixed yet; it runs only
	// with DEMES_KNOWN_BUGS=1 (those that panic the host crash the test
	// binary).
	type badInput struct {
		name   string
		frame  func() []byte
		code   int
		reason string // the counter in Status().Rejected
		logged string // what the log shows; default `"reason":"<reason>"`
		bug    string
	}
	cases := []badInput{
		{name: "empty", code: 400, reason: "bad envelope: malformed",
			frame: func() []byte { return nil }},
		{name: "truncated", code: 403, reason: "bad envelope: bad signature",
			frame: func() []byte { f := captured(); return f[:len(f)/2] }},
		{name: "oversized", code: 413, reason: "oversized request",
			frame: func() []byte { return make([]byte, crypto.MaxFrame+1) }},
		{name: "wrong version", code: 400, reason: "bad envelope: unsupported version",
			frame: func() []byte { f := captured(); f[0] = crypto.Version + 1; return f }},
		// Its random signer key is nobody's: refused before its signature
		// is checked.
		{name: "garbage", code: 403, reason: "sender is not a member",
			frame: func() []byte { return garbage }},
		{name: "signed garbage encoding", code: 400, reason: "bad envelope: malformed",
			frame: func() []byte { return signRaw(host.id, crypto.Version, []byte("\x86not cbor at all")) }},
		{name: "non-member", code: 403, reason: "sender is not a member",
			frame: func() []byte {
				m := raftMsg(pb.MsgVote, host, before.Term+5)
				m.From = proto.Uint64(state.RaftID(outsider.Public().Sign))
				return batch(outsider, gid, tkey, m)
			}},
		{name: "replay", code: 403, reason: "replayed",
			frame: captured},
		{name: "unknown group", code: 403, reason: "unknown group", logged: "rejected envelope for a group this node is not in",
			frame: func() []byte {
				return batch(host.id, crypto.NewGroupID(), tkey, raftMsg(pb.MsgHeartbeat, host, before.Term))
			}},
		{name: "addressed to another node", code: 403, reason: "addressed to another node",
			frame: func() []byte {
				return batch(host.id, gid, host.id.Public().Sign, raftMsg(pb.MsgHeartbeat, host, before.Term))
			}},
		{name: "raft message for another node", code: 403, reason: "raft message for another node",
			frame: func() []byte {
				m := raftMsg(pb.MsgHeartbeat, host, before.Term)
				m.To = proto.Uint64(raftOf(learner))
				return batch(host.id, gid, tkey, m)
			}},
		{name: "member claims another member's raft id", code: 403, reason: "raft id not owned by the signer",
			frame: func() []byte { return batch(learner.id, gid, tkey, raftMsg(pb.MsgVote, host, before.Term+5)) }},
		{name: "learner votes", code: 403, reason: "vote from a non-voter",
			frame: func() []byte { return batch(learner.id, gid, tkey, raftMsg(pb.MsgVote, learner, before.Term+5)) }},
		{name: "learner pre-votes", code: 403, reason: "vote from a non-voter",
			frame: func() []byte { return batch(learner.id, gid, tkey, raftMsg(pb.MsgPreVote, learner, before.Term+5)) }},
		{name: "learner forces an election", code: 403, reason: "vote from a non-voter",
			frame: func() []byte { return batch(learner.id, gid, tkey, raftMsg(pb.MsgTimeoutNow, learner, before.Term)) }},
		{name: "local-only raft message", code: 403, reason: "raft message type not accepted from peers",
			frame: func() []byte { return batch(host.id, gid, tkey, raftMsg(pb.MsgHup, host, before.Term)) }},
		{name: "malformed batch", code: 400, reason: "malformed batch",
			frame: func() []byte {
				return envelope(host.id, crypto.Envelope{Type: crypto.TypeBatch, Group: gid, To: tkey, Payload: []byte("not a batch")})
			}},
		{name: "malformed raft message", code: 403, reason: "malformed raft message",
			frame: func() []byte {
				payload, _ := crypto.EncodeBatch([][]byte{{0xff, 0xff, 0xff}})
				return envelope(host.id, crypto.Envelope{Type: crypto.TypeBatch, Group: gid, To: tkey, Payload: payload})
			}},
		{name: "log entry type sent directly", code: 403, reason: "unexpected envelope type",
			frame: func() []byte {
				return envelope(host.id, crypto.Envelope{Type: crypto.TypeChat, Group: gid, To: tkey, Payload: []byte{0x80}})
			}},
		{name: "stale-term vote", code: 403, reason: "stale-term vote",
			frame: func() []byte { return batch(host.id, gid, tkey, raftMsg(pb.MsgVote, host, before.Term-1)) }},
		{name: "term-0 vote", code: 403, reason: "stale-term vote",
			frame: func() []byte { return batch(host.id, gid, tkey, raftMsg(pb.MsgVote, host, 0)) }},
		{name: "empty proposal", code: 403, reason: "malformed proposal",
			frame: func() []byte {
				m := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(raftOf(learner)), To: proto.Uint64(traft)}
				return batch(learner.id, gid, tkey, m)
			}},
		{name: "undecodable configuration change", code: 403, reason: "malformed proposal",
			frame: func() []byte {
				m := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(raftOf(learner)), To: proto.Uint64(traft),
					Entries: []*pb.Entry{{Type: pb.EntryConfChangeV2.Enum(), Data: []byte{0xff, 0xff}}}}
				return batch(learner.id, gid, tkey, m)
			}},
		{name: "heartbeat commits beyond the log", code: 403, reason: "heartbeat commits beyond the log",
			frame: func() []byte {
				m := raftMsg(pb.MsgHeartbeat, host, before.Term)
				m.Commit = proto.Uint64(1 << 40)
				return batch(host.id, gid, tkey, m)
			}},
		{name: "learner pretends to lead", code: 403, reason: "leader message from a non-voter",
			frame: func() []byte { return batch(learner.id, gid, tkey, raftMsg(pb.MsgHeartbeat, learner, before.Term+5)) }},
		{name: "learner appends entries as a leader", code: 403, reason: "leader message from a non-voter",
			frame: func() []byte {
				m := raftMsg(pb.MsgApp, learner, before.Term+6)
				m.Index, m.LogTerm = proto.Uint64(0), proto.Uint64(0)
				m.Entries = []*pb.Entry{{Term: proto.Uint64(before.Term + 6), Index: proto.Uint64(1), Type: pb.EntryNormal.Enum()}}
				return batch(learner.id, gid, tkey, m)
			}},
		{name: "learner leads at the current term", code: 403, reason: "leader message from a non-voter",
			frame: func() []byte { return batch(learner.id, gid, tkey, raftMsg(pb.MsgHeartbeat, learner, before.Term)) }},
		{name: "learner answers at a higher term", code: 403, reason: "higher term from a non-voter",
			frame: func() []byte {
				return batch(learner.id, gid, tkey, raftMsg(pb.MsgHeartbeatResp, learner, before.Term+7))
			}},
		{name: "malformed ping", code: 403, reason: "malformed ping",
			frame: func() []byte {
				return envelope(learner.id, crypto.Envelope{Type: crypto.TypePing, Group: gid, To: tkey, Payload: []byte("too short")})
			}},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	// A kind of rejection is logged once (then at most once a minute), so
	// the log is looked at for the first of each reason, from the start
	// (a joining member refuses the host's first messages too).
	logged := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bug != "" && !knownBugs {
				t.Skipf("node bug: %s (run with DEMES_KNOWN_BUGS=1 to see it)", tc.bug)
			}
			count := target.n.Status().Rejected[tc.reason]
			resp, err := client.Post(target.url+node.PeerPath, "application/octet-stream", bytes.NewReader(tc.frame()))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("answered %s (%q), want %d", resp.Status, strings.TrimSpace(string(body)), tc.code)
			}
			if got := target.n.Status().Rejected[tc.reason]; got != count+1 {
				t.Errorf("status counts %d rejections for %q, want %d; all: %v", got, tc.reason, count+1, target.n.Status().Rejected)
			}
			want := tc.logged
			if want == "" {
				want = fmt.Sprintf("%q:%q", "reason", tc.reason)
			}
			if l := target.logs.String(); !logged[tc.reason] && !strings.Contains(l, want) {
				t.Errorf("the log does not show %s:\n%s", want, l)
			}
			logged[tc.reason] = true
		})
	}

	// Nothing changed: not the term, not the messages; and the node keeps
	// serving.
	after := target.n.Status().Groups[0]
	if after.Term != before.Term || after.Host != before.Host {
		t.Errorf("term and host moved from %d %s to %d %s", before.Term, before.Host, after.Term, after.Host)
	}
	if got := nodetest.Texts(c.committed(target)); got != beforeMsgs {
		t.Errorf("messages changed: %s -> %s", beforeMsgs, got)
	}
	m, err := target.n.Send(ctxT(t, 20*time.Second), c.gid, "after the bad input", 10*time.Second)
	if err != nil || m.State != node.StateCommitted {
		t.Fatalf("a send after the bad input: %+v, %v", m, err)
	}
	for _, p := range c.peers {
		testutil.Eventually(t, 30*time.Second, p.name+" to list the message sent after the bad input", func() bool {
			ms := c.committed(p)
			return len(ms) == 2 && ms[1].Text == "after the bad input"
		})
	}
}

// TestProposalToHostlessMemberDoesNotStall delivers a proposal to a member
// that knows no host, in a batch with a heartbeat behind it: what a member
// forwarded to its host gets, when it arrives after the host restarted. raft
// takes no proposal without a leader, and stepping one into it waited for
// the request's whole deadline and held up every message behind it, so a
// restarted member heard nothing from the group for 2 s. Now the proposal
// is dropped (its author retries from its outbox) and the heartbeat gets
// through at once.
func TestProposalToHostlessMemberDoesNotStall(t *testing.T) {
	t.Parallel()
	c := newHTTPGroup(t, 3, 3)
	c.form()
	host, voters, _ := c.roles(3)
	var target *httpPeer
	for _, p := range voters {
		if p != host && target == nil {
			target = p
		}
	}
	// With the other two gone, the target loses its host.
	for _, p := range c.peers {
		if p != target {
			c.c.Stop(p.i)
		}
	}
	testutil.Eventually(t, 30*time.Second, "the target to know no host", func() bool { return target.n.Status().Groups[0].Host == "" })
	term := target.n.Status().Groups[0].Term

	gid, _ := crypto.ParseGroupID(c.gid)
	hraft, traft := state.RaftID(host.id.Public().Sign), state.RaftID(target.id.Public().Sign)
	prop := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(hraft), To: proto.Uint64(traft), Term: proto.Uint64(0),
		Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: []byte("a proposal for the old host")}}}
	heartbeat := &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: proto.Uint64(hraft), To: proto.Uint64(traft), Term: proto.Uint64(term), Commit: proto.Uint64(0)}
	frame := signBatch(t, host.id, gid, target.id.Public().Sign, c.freshCounter(target, host.id), prop, heartbeat)
	// The deadline is only there so that a stall fails the test rather
	// than hangs it.
	ctx := ctxT(t, 20*time.Second)
	if _, err := host.link.Post(ctx, target.url, frame); err != nil {
		t.Fatalf("the batch was not handled: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the batch was handled only at its deadline")
	}
	testutil.Eventually(t, 30*time.Second, "the target to follow the host again", func() bool {
		return target.n.Status().Groups[0].Host == host.id.Public().String()
	})
}
