package adversary

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// group is a cluster of real nodes talking HTTP over loopback. Which of them
// are honest and which malicious is each test's business: a malicious member
// is a real node whose operator also uses the hooks of node/rogue.go.
type group struct {
	t   testing.TB
	c   *nodetest.Cluster
	id  string // the group id's text form
	gid crypto.GroupID
	// host, when set by keepHost, is the member that commitWith makes the
	// host again before each proposal, followed by the honest nodes that
	// must see it so.
	host []int
}

// options say how a test's nodes run.
type options struct {
	// pings has members measure their latencies, so that they commit
	// latency maps (and placement may move the host); without them the
	// host and the voters follow join order and never move.
	pings bool
	// heads has members ping each other (so that they exchange their
	// signed chain heads) without committing latency maps, so that the
	// host still follows join order and never moves.
	heads bool
	// pingInterval, with heads, replaces their 100 ms ping interval (a
	// benchmark measures with the default, 1 s).
	pingInterval time.Duration
	// tweak changes node i's configuration before it starts (a test
	// wraps a malicious node's link this way).
	tweak map[int]func(*node.Config)
	// handler wraps node i's peer handler (a malicious host drops what it
	// receives this way).
	handler map[int]func(http.Handler) http.Handler
}

func testLogger(t testing.TB) zerolog.Logger { return testutil.Logger(t) }

// newGroup starts size nodes, none of them in a group yet.
func newGroup(t testing.TB, size int, o options) *group {
	t.Helper()
	cfg := node.Config{Logger: testLogger(t), RetryInterval: 100 * time.Millisecond, PingInterval: time.Hour}
	if o.pings {
		cfg.PingInterval = 100 * time.Millisecond
		cfg.LatencyInterval = 300 * time.Millisecond
		cfg.CheckpointInterval = 300 * time.Millisecond
	}
	if o.heads {
		cfg.CensorAfter = time.Second
		cfg.PingInterval = 100 * time.Millisecond
		if o.pingInterval > 0 {
			cfg.PingInterval = o.pingInterval
		}
		cfg.LatencyInterval = time.Hour
	}
	wrap := func(i int, h http.Handler) http.Handler {
		if fn := o.handler[i]; fn != nil {
			return fn(h)
		}
		return h
	}
	nc, err := nodetest.New(nodetest.Options{Size: size, HTTP: true, Dir: t.TempDir(), Config: cfg, Handler: wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if a := nc.Alerts(); a != "" {
			t.Log("alerts:\n" + a)
		}
	})
	for i, fn := range o.tweak {
		nc.Member(i).Tweak = fn
	}
	if err := nc.StartAll(); err != nil {
		t.Fatal(err)
	}
	return &group{t: t, c: nc}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// form has node members[0] create the group and invite the others, who
// join one after the other; it returns once every member counts them all
// as voters (a group of up to five has no learners).
func (g *group) form(members ...int) {
	g.t.Helper()
	ctx := ctxT(g.t, 90*time.Second)
	info, err := g.node(members[0]).CreateGroup(ctx, "adversary")
	if err != nil {
		g.t.Fatal(err)
	}
	g.id, g.c.GroupID = info.GroupID, info.GroupID
	if g.gid, err = crypto.ParseGroupID(info.GroupID); err != nil {
		g.t.Fatal(err)
	}
	for _, i := range members[1:] {
		g.join(members[0], i)
	}
	g.waitVoters(len(members), members...)
}

// join has node inviter invite node i, and i join.
func (g *group) join(inviter, i int) {
	g.t.Helper()
	ctx := ctxT(g.t, 60*time.Second)
	code, err := g.node(inviter).Invite(ctx, g.id, g.pub(i).String())
	if err != nil {
		g.t.Fatalf("invite node%d: %v", i, err)
	}
	if _, err := g.node(i).Join(ctx, code); err != nil {
		g.t.Fatalf("join node%d: %v", i, err)
	}
}

func (g *group) node(i int) *node.Node { return g.c.Node(i) }

func (g *group) pub(i int) identity.PublicID { return g.c.Member(i).ID.Public() }

func (g *group) ident(i int) *identity.Identity { return g.c.Member(i).ID }

// waitVoters waits until each of the nodes sees k voters and k members.
func (g *group) waitVoters(k int, nodes ...int) {
	g.t.Helper()
	g.c.Eventually(g.t, 60*time.Second, fmt.Sprintf("%d members, all voters, on nodes %v", k, nodes), func() bool {
		for _, i := range nodes {
			st, ok := g.c.Status(i)
			if !ok || len(st.Members) != k || g.c.Voters(i) != k {
				return false
			}
		}
		return true
	})
}

// view renders what node i's status and invite list show of the group's
// state: the members with their names, addresses, voter and admin roles, the
// settings, the open invites. It leaves out what moves on its own (the host,
// the term, latencies, who is online).
func (g *group) view(i int) string {
	g.t.Helper()
	st, ok := g.c.Status(i)
	if !ok {
		g.t.Fatalf("node%d is down or not in the group", i)
	}
	var b strings.Builder
	for _, m := range st.Members {
		fmt.Fprintf(&b, "member %s %s url=%s voter=%v admin=%v\n", m.Fingerprint, m.Name, m.PeerURL, m.Voter, m.Admin)
	}
	fmt.Fprintf(&b, "settings members_invite=%v\n", st.Settings.MembersInvite)
	invs, err := g.node(i).Invites(g.id)
	if err != nil {
		g.t.Fatal(err)
	}
	for _, inv := range invs {
		fmt.Fprintf(&b, "invite %s by %s until %s\n", inv.Fingerprint, inv.InviterName, inv.ExpiresAt.Format(time.RFC3339Nano))
	}
	return b.String()
}

// settled waits until the honest nodes show the same state, and returns it.
func (g *group) settled(honest ...int) string {
	g.t.Helper()
	var ref string
	g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("nodes %v to agree on the group's state", honest), func() bool {
		ref = g.view(honest[0])
		for _, i := range honest[1:] {
			if g.view(i) != ref {
				return false
			}
		}
		return true
	})
	return ref
}

// applied waits until each of the nodes has applied the log up to idx (not
// in a test that failed already: an attack that succeeded may have removed
// them).
func (g *group) applied(idx uint64, nodes ...int) {
	g.t.Helper()
	if g.t.Failed() {
		return
	}
	g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("nodes %v to apply the log up to %d", nodes, idx), func() bool {
		for _, i := range nodes {
			if st, ok := g.c.Status(i); !ok || st.Committed < idx {
				return false
			}
		}
		return true
	})
}

// unchanged fails the test unless every honest node shows the state want.
func (g *group) unchanged(want string, honest ...int) {
	g.t.Helper()
	for _, i := range honest {
		if got := g.view(i); got != want {
			g.t.Errorf("node%d's state changed under the attack:\n--- before\n%s--- after\n%s", i, want, got)
		}
	}
}

// rejections sums node i's counts of rejections (Status().Rejected) whose
// reason contains reason.
func (g *group) rejections(i int, reason string) int64 {
	var sum int64
	for k, v := range g.node(i).Status().Rejected {
		if strings.Contains(k, reason) || (reason == refusedJoin && strings.Contains(k, refusedAtTheDoor)) {
			sum += v
		}
	}
	return sum
}

// counts is what rejections returns on each honest node, before an attack.
type counts struct {
	reason string
	before map[int]int64
}

func (g *group) count(reason string, honest ...int) counts {
	c := counts{reason: reason, before: map[int]int64{}}
	for _, i := range honest {
		c.before[i] = g.rejections(i, reason)
	}
	return c
}

// rose waits until each node's count has risen by at least k. A test that
// failed already (an attack that succeeded) does not wait: its rejections
// may never come.
func (g *group) rose(c counts, k int64) {
	g.t.Helper()
	if g.t.Failed() {
		return
	}
	for i, b := range c.before {
		g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("node%d to count %d more rejections for %q", i, k, c.reason), func() bool {
			return g.rejections(i, c.reason) >= b+k
		})
	}
}

// log returns the committed entries node i holds.
func (g *group) log(i int) []transcript.Entry {
	g.t.Helper()
	es, err := g.node(i).LogFrames(g.id)
	if err != nil {
		g.t.Fatal(err)
	}
	return es
}

func last(es []transcript.Entry) uint64 {
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Index
}

// commit has node m propose frame as a normal entry until honest node h's
// log holds it after where the log ended before, and returns its index
// there. A proposal can be dropped (no host known, or the host changed);
// a second copy that commits too is a replay like any other.
func (g *group) commit(m, h int, frame []byte) uint64 {
	g.t.Helper()
	return g.commitWith(h, frame, transcript.KindEntry, func(ctx context.Context) error {
		return g.node(m).ProposeRaw(ctx, g.id, frame)
	})
}

// signedFresh returns the index at which honest node h's log holds what
// commitSigned (a frame newly signed by m, and committed) gives, signing and
// committing again while the state machine rejects it as stale. M's own
// node goes on signing its upkeep (latency maps, checkpoints) with the same
// counters: one it signed after the frame and committed before it makes the
// frame stale, whatever else is wrong with it. An attacker would sign again,
// and so does this, so that a test sees the check it targets.
func (g *group) signedFresh(h int, commitSigned func() uint64) uint64 {
	g.t.Helper()
	for try := 1; ; try++ {
		at := commitSigned()
		res, _ := g.outcomes(h)
		if r := res[at]; try == 5 || r.Err == nil || !strings.Contains(r.Err.Error(), "replayed or stale") {
			return at
		}
		g.t.Logf("index %d was stale: %v; signing it again", at, res[at].Err)
	}
}

// commitConf is commit for a membership change of kind for the raft node
// nodeID, authorised by frame. raft takes one such change at a time.
func (g *group) commitConf(m, h int, frame []byte, kind state.ConfKind, nodeID uint64) uint64 {
	g.t.Helper()
	return g.commitWith(h, frame, transcript.KindConf, func(ctx context.Context) error {
		return g.node(m).ProposeConfRaw(ctx, g.id, frame, kind, nodeID)
	})
}

func (g *group) commitWith(h int, frame []byte, kind transcript.Kind, propose func(context.Context) error) uint64 {
	g.t.Helper()
	after := last(g.log(h))
	ctx := ctxT(g.t, 60*time.Second)
	var at uint64
	found := func() bool {
		for _, e := range g.log(h) {
			if e.Index > after && e.Kind == kind && bytes.Equal(e.Frame, frame) {
				at = e.Index
				return true
			}
		}
		return false
	}
	for {
		if len(g.host) > 0 {
			g.makeHost(g.host[0], g.host[1:]...)
		}
		if err := propose(ctx); err != nil {
			g.t.Logf("proposal: %v (proposing again)", err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := testutil.Poll(wctx, 50*time.Millisecond, "the frame in the log", found)
		cancel()
		if err == nil {
			return at
		}
		if ctx.Err() != nil {
			g.t.Fatalf("the frame never reached node%d's log", h)
		}
	}
}

// outcomes applies honest node h's log to a new state machine, as h applied
// it, and returns each entry's result by index and the state after the last.
func (g *group) outcomes(h int) (map[uint64]state.Result, *state.State) {
	g.t.Helper()
	st := state.New(g.gid)
	out := map[uint64]state.Result{}
	for _, e := range g.log(h) {
		if e.Kind == transcript.KindConf {
			out[e.Index] = st.ApplyConf(e.Index, e.NodeID, e.Change, e.Frame)
		} else {
			out[e.Index] = st.ApplyEntry(e.Index, e.Frame)
		}
	}
	return out, st
}

// attempt is an entry an attack committed: what it is, the index it took in
// an honest log, and the reason it must have been rejected for.
type attempt struct {
	what, reason string
	at           uint64
}

// allRejected fails the test unless honest node h's state machine rejected
// every attempt for its reason.
func (g *group) allRejected(h int, tries []attempt) {
	g.t.Helper()
	res, _ := g.outcomes(h)
	for _, tr := range tries {
		g.rejected(res, tr.at, tr.what, tr.reason)
	}
}

// rejected fails the test unless the entry at idx was rejected, with a
// reason containing reason.
func (g *group) rejected(res map[uint64]state.Result, idx uint64, what, reason string) {
	g.t.Helper()
	r, ok := res[idx]
	switch {
	case !ok:
		g.t.Errorf("%s: no entry at index %d", what, idx)
	case r.Err == nil:
		g.t.Errorf("%s (index %d) was accepted", what, idx)
	case !strings.Contains(r.Err.Error(), reason):
		g.t.Errorf("%s (index %d) was rejected for %q, want %q", what, idx, r.Err, reason)
	}
}

// readable returns the texts of the accepted chat messages in node h's log
// that id's keys open from the ciphertext alone, every key header in the log
// included: what the holder of id could read, whatever its node shows.
func (g *group) readable(h int, id *identity.Identity) map[string]bool {
	g.t.Helper()
	res, _ := g.outcomes(h)
	// What a thief of that member's device has: its identity and, when it
	// runs a node here, the keys its key store holds.
	dir := ""
	for _, m := range g.c.Members() {
		if m.ID.Public() == id.Public() {
			dir = m.Dir
		}
	}
	loot := &nodetest.Loot{ID: id}
	if dir != "" {
		var err error
		if loot, err = nodetest.TakeLoot(dir, id); err != nil {
			g.t.Fatal(err)
		}
	}
	out := map[string]bool{}
	for idx, o := range loot.Read(g.gid, g.log(h)) {
		if res[idx].Chat != nil {
			out[string(o.Body)] = true
		}
	}
	return out
}

// send sends text from node i and waits for its commit.
func (g *group) send(i int, text string) {
	g.t.Helper()
	m, err := g.node(i).Send(ctxT(g.t, 40*time.Second), g.id, text, 30*time.Second)
	if err != nil || m.State != node.StateCommitted {
		g.t.Fatalf("send %q from node%d: %v (state %q)", text, i, err, m.State)
	}
}

// signAs signs an envelope of type t with body (a state body, or raw bytes)
// for the group as id, with a counter of the current time: for identities
// that have no node, or whose node must not know.
func (g *group) signAs(id *identity.Identity, t crypto.Type, body any) []byte {
	g.t.Helper()
	payload, ok := body.([]byte)
	if !ok {
		var err error
		if payload, err = state.Encode(body); err != nil {
			g.t.Fatal(err)
		}
	}
	now := time.Now().UnixNano()
	frame, err := crypto.Sign(id, &crypto.Envelope{Type: t, Group: g.gid, Counter: uint64(now), Time: now, Payload: payload})
	if err != nil {
		g.t.Fatal(err)
	}
	return frame
}

// signBy signs an envelope of type t with body as node m itself, with its
// next counter: a fresh entry of m's.
func (g *group) signBy(m int, t crypto.Type, body any) []byte {
	g.t.Helper()
	payload, ok := body.([]byte)
	if !ok {
		var err error
		if payload, err = state.Encode(body); err != nil {
			g.t.Fatal(err)
		}
	}
	frame, err := g.node(m).SignRaw(&crypto.Envelope{Type: t, Group: g.gid, Payload: payload})
	if err != nil {
		g.t.Fatal(err)
	}
	return frame
}

// joinFrame is a join of id's, as its node would send it to a member.
func (g *group) joinFrame(id *identity.Identity) []byte {
	g.t.Helper()
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		g.t.Fatal(err)
	}
	return g.signAs(id, crypto.TypeJoin, &state.JoinBody{PublicID: id.Public().Bytes(), RaftID: state.RaftID(id.Public().Sign), Name: "outsider", Nonce: nonce})
}

// challenge sends node h a join challenge signed by id, over HTTP, as an
// invitee's node opens a join, and returns what h answered.
func (g *group) challenge(h int, id *identity.Identity) error {
	g.t.Helper()
	link := node.NewHTTPLink()
	defer link.CloseIdle()
	_, err := link.Post(ctxT(g.t, 10*time.Second), g.c.Member(h).URL, g.signAs(id, crypto.TypeChallenge, []byte{}))
	return err
}

// outsider returns an identity with no node, from a seed of its own.
func outsider(t testing.TB, seed byte) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// isMember reports whether node i lists key among the group's members.
func (g *group) isMember(i int, key identity.PublicID) bool {
	st, _ := g.c.Status(i)
	for _, m := range st.Members {
		if m.PublicID == key.String() {
			return true
		}
	}
	return false
}

// refusedJoin is the reason a member gives an identity that asks to join
// without an open invite.
const refusedJoin = "join attempt without a committed invite"

// refusedAtTheDoor is the reason a node gives a frame whose signer is no
// member or invitee of any of its groups, before it checks the signature:
// where that is the joiner, its join is refused there, and rejections
// counts it under refusedJoin too.
const refusedAtTheDoor = "sender is not a member"

// tryJoin has node joiner join with code, through whichever members the
// code names, until each honest node has refused it (counted under
// refusedJoin) or the join succeeds, and reports whether it did. The
// joiner's node gives up at once when the code's first member, its inviter,
// refuses (the invite is closed there); the joiner then asks each honest
// node that has not refused it yet for a challenge itself, as a joiner
// would that tries every member it can.
func (g *group) tryJoin(joiner int, code string, honest ...int) bool {
	g.t.Helper()
	refused := g.count(refusedJoin, honest...)
	ctx, cancel := context.WithCancel(ctxT(g.t, 60*time.Second))
	defer cancel()
	var joined, gaveUp atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := g.node(joiner).Join(ctx, code)
		joined.Store(err == nil)
		gaveUp.Store(err != nil)
	}()
	allRefused := func() bool {
		for i, b := range refused.before {
			if g.rejections(i, refusedJoin) <= b {
				return false
			}
		}
		return true
	}
	g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("the honest members to refuse node%d, it to give up, or it to join", joiner), func() bool {
		return joined.Load() || gaveUp.Load() || allRefused()
	})
	if gaveUp.Load() {
		for i, b := range refused.before {
			if g.rejections(i, refusedJoin) > b {
				continue
			}
			if err := g.challenge(i, g.ident(joiner)); err == nil {
				g.t.Errorf("node%d answered the challenge of node%d, whose invite is closed", i, joiner)
			}
		}
		g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("the honest members to refuse node%d", joiner), allRefused)
	}
	cancel()
	<-done
	return joined.Load()
}

// keepHost makes node i the host (makeHost) and has commitWith make it the
// host again before each proposal. Where placement runs (options.pings),
// it may move the host away from a malicious member after makeHost: the
// malicious node's own placement hands over to a member that measures
// better (on loopback, by noise), at once after a membership change. An
// honest host then drops the normal entries the malicious member forwards
// but did not sign, and a replay through it would never reach the log.
func (g *group) keepHost(i int, watch ...int) {
	g.t.Helper()
	g.host = append([]int{i}, watch...)
	g.makeHost(i, watch...)
}

// makeHost has the group's current host hand leadership to node i (honest
// members may elect a malicious member by its latency), and waits until
// every node in watch sees i as the host. An honest host drops normal
// entries that the member forwarding them did not sign; a malicious host
// puts them in the log, where the state machine must stop them.
func (g *group) makeHost(i int, watch ...int) {
	g.t.Helper()
	ctx := ctxT(g.t, 60*time.Second)
	want := g.pub(i).String()
	hostIs := func(j int) bool { st, _ := g.c.Status(j); return st.Host == want }
	for !hostIs(i) {
		st, _ := g.c.Status(i)
		h := g.c.Index(st.Host)
		if h < 0 {
			g.c.Eventually(g.t, 30*time.Second, "a host", func() bool { st, _ := g.c.Status(i); return st.Host != "" })
			continue
		}
		if err := g.node(h).HandOver(ctx, g.id, want); err != nil {
			g.t.Fatal(err)
		}
	}
	g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("node%d as the host on every node", i), func() bool {
		for _, j := range watch {
			if !hostIs(j) {
				return false
			}
		}
		return true
	})
}
