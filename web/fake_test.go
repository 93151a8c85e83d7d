package web

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/testutil"
)

// fakeWorld is an in-memory stand-in for the nodes of a few people and the
// groups between them, so that handlers (and browsers) can talk through it:
// a message sent by one fakeNode reaches the other members as an event.
// Tests steer it: cut a group's quorum, hold joins, fail a call.
type fakeWorld struct {
	mu       sync.Mutex
	groups   map[string]*fakeGroup
	nodes    map[string]*fakeNode // by name
	invites  map[string]fakeInvite
	joinGate chan struct{} // when set, Join waits until it is closed
	// reads are the read marks by group and node, receiptsOff the nodes
	// whose person turned read receipts off (fakereceipts_test.go).
	reads       map[string]map[*fakeNode]uint64
	receiptsOff map[*fakeNode]bool
	// reach and paths are what the nodes say of their reachability and
	// of how they reach each other (fakereach_test.go).
	reach map[*fakeNode]*api.Reachability
	paths map[[2]*fakeNode]string
}

type fakeGroup struct {
	id, name string
	members  []*fakeNode // in preference order: the host first
	former   []*fakeNode // who left or was removed: they keep the group, read-only
	admins   map[*fakeNode]bool
	settings api.GroupSettings
	log      []api.Message
	board    content.Board  // the changes to the messages in log (fakechanges_test.go)
	outbox   []*fakePending // queued messages of all members, oldest first
	quorum   bool
	// overQuota holds every new message of the group back, as a node
	// holds its own over the member's quota (fakequota_test.go).
	overQuota bool
	term      uint64
	// removedBy is, for a member an admin removed, that admin.
	removedBy map[*fakeNode]*fakeNode
	// fork and censor are the alerts each member's node shows, if any.
	fork   map[*fakeNode]*api.ForkAlert
	censor map[*fakeNode]*api.CensorAlert
	// continues is set for a successor: what it continues
	// (fakereform_test.go).
	continues *api.Continuation
	// keys, forwardSecrecy and noPrekey are what the members' nodes say
	// of the group's keys (fakekeys_test.go).
	keys           map[*fakeNode]*api.KeysAlert
	forwardSecrecy bool
	noPrekey       []string
	// restored is what the members' nodes restored from a backup say
	// while they catch up (fakekeys_test.go).
	restored map[*fakeNode]string
}

type fakePending struct {
	msg       api.Message
	from      *fakeNode
	committed chan struct{} // closed at commit
}

type fakeInvite struct {
	groupID, publicID string
	inviter           *fakeNode
	expires           time.Time
	seq               int  // creation order
	closed            bool // used, revoked or replaced
	revoked           bool
}

// fakeNode is one person's node in a fakeWorld. It implements Backend and
// Control.
type fakeNode struct {
	w       *fakeWorld
	name    string
	pub     identity.PublicID
	latency float64 // ms; the RTT between two nodes is the sum of theirs

	// Guarded by w.mu.
	subs         map[chan api.Event]struct{}
	stopped      bool
	failNext     error            // returned by the next call that can fail
	lastWait     float64          // the wait of the last Send, in seconds
	lastKeeper   string           // the target of the last AddKeeper
	lastKeeperID string           // and the keeper's id it was given
	lastTTL      time.Duration    // the ttl of the last InviteFor
	failOps      map[string]error // the next call of a membership method returns this error
	// largestPage is the most messages one MessagePage answered: what
	// the page asked the node for at most.
	largestPage int
	// beforePage, when set, runs (unlocked) at the start of each
	// MessagePage asking for a page before a message.
	beforePage func()
}

var (
	_ Backend = (*fakeNode)(nil)
	_ Control = (*fakeNode)(nil)
)

func newFakeWorld() *fakeWorld {
	return &fakeWorld{
		groups:  map[string]*fakeGroup{},
		nodes:   map[string]*fakeNode{},
		invites: map[string]fakeInvite{},
	}
}

// newFriends returns a world with alice, bob and carol in the group
// "friends" (alice hosts), and dave, who is in no group yet.
func newFriends(t testing.TB) (*fakeWorld, string) {
	t.Helper()
	w := newFakeWorld()
	alice := w.addNode(t, "alice", 3)
	bob := w.addNode(t, "bob", 8)
	carol := w.addNode(t, "carol", 21)
	w.addNode(t, "dave", 5)
	g, err := alice.CreateGroup(context.Background(), "friends")
	if err != nil {
		t.Fatal(err)
	}
	w.addMember(g.GroupID, bob)
	w.addMember(g.GroupID, carol)
	t.Cleanup(w.close)
	return w, g.GroupID
}

func (w *fakeWorld) addNode(t testing.TB, name string, latency float64) *fakeNode {
	t.Helper()
	seed := bytes.Repeat([]byte(name[:1]), 32)
	id, err := identity.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{w: w, name: name, pub: id.Public(), latency: latency, subs: map[chan api.Event]struct{}{}}
	w.mu.Lock()
	w.nodes[name] = n
	w.mu.Unlock()
	return n
}

func (w *fakeWorld) node(name string) *fakeNode {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nodes[name]
}

func (w *fakeWorld) addMember(gid string, n *fakeNode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[gid]
	g.members = append(g.members, n)
	w.notifyStatusLocked(g)
}

// setQuorum cuts or restores a group's quorum. Restoring it commits the
// queued messages in order, as the real outbox does.
func (w *fakeWorld) setQuorum(gid string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[gid]
	g.quorum = ok
	g.term++
	if ok {
		w.commitOutboxLocked(g)
	}
	w.notifyStatusLocked(g)
}

// commitOutboxLocked commits g's queued messages in order, as the real
// outbox does once the group can (and the quota allows).
func (w *fakeWorld) commitOutboxLocked(g *fakeGroup) {
	for _, p := range g.outbox {
		p.msg.Held = false
		w.commitLocked(g, p.msg)
		close(p.committed)
	}
	g.outbox = nil
}

// setLatency changes n's share of every round-trip time and tells the
// members of n's groups that their status changed, as a ping round does.
func (w *fakeWorld) setLatency(n *fakeNode, ms float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n.latency = ms
	for _, g := range w.groups {
		w.notifyStatusLocked(g)
	}
}

// setAlerts sets the fork and censorship alerts n's node shows for group
// gid (nil: none), and tells the members.
func (w *fakeWorld) setAlerts(gid string, n *fakeNode, fork *api.ForkAlert, censor *api.CensorAlert) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[gid]
	if g.fork == nil {
		g.fork, g.censor = map[*fakeNode]*api.ForkAlert{}, map[*fakeNode]*api.CensorAlert{}
	}
	g.fork[n], g.censor[n] = fork, censor
	w.notifyStatusLocked(g)
}

// holdJoins makes Join wait until the returned func is called.
func (w *fakeWorld) holdJoins() (release func()) {
	gate := make(chan struct{})
	w.mu.Lock()
	w.joinGate = gate
	w.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// close ends every subscription, so event streams end with the test.
func (w *fakeWorld) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.nodes {
		n.closeSubsLocked()
	}
}

// commitLocked appends m to g's log and tells every member.
func (w *fakeWorld) commitLocked(g *fakeGroup, m api.Message) api.Message {
	m.State = api.StateCommitted
	m.Index = uint64(len(g.log) + 1)
	g.log = append(g.log, m)
	shown := m
	g.markNameLocked(&shown)
	for _, mem := range g.members {
		mem.notifyLocked(api.Event{Kind: "message", GroupID: g.id, Message: &shown})
	}
	return m
}

func (w *fakeWorld) notifyStatusLocked(g *fakeGroup) {
	for _, mem := range g.members {
		mem.notifyLocked(api.Event{Kind: "status", GroupID: g.id})
	}
}

func (n *fakeNode) notifyLocked(ev api.Event) {
	if n.stopped {
		return
	}
	for ch := range n.subs {
		select {
		case ch <- ev:
		default: // a slow reader loses events, as the contract allows
		}
	}
}

func (n *fakeNode) closeSubsLocked() {
	for ch := range n.subs {
		close(ch)
		delete(n.subs, ch)
	}
}

// failNextCall makes the next call that can fail return err.
func (n *fakeNode) failNextCall(err error) {
	n.w.mu.Lock()
	n.failNext = err
	n.w.mu.Unlock()
}

// checkLocked returns the error a call fails with before doing anything.
func (n *fakeNode) checkLocked() error {
	if err := n.failNext; err != nil {
		n.failNext = nil
		return err
	}
	if n.stopped {
		return api.ErrStopped
	}
	return nil
}

func (n *fakeNode) groupLocked(gid string) (*fakeGroup, error) {
	g := n.w.groups[gid]
	if g == nil || !g.isMember(n) {
		return nil, fmt.Errorf("group %q: %w", gid, api.ErrNotFound)
	}
	return g, nil
}

// sortedGroupsLocked returns the groups by name, so lists are stable.
func (w *fakeWorld) sortedGroupsLocked() []*fakeGroup {
	out := make([]*fakeGroup, 0, len(w.groups))
	for _, g := range w.groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *fakeGroup) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.id, b.id))
	})
	return out
}

func (g *fakeGroup) isMember(n *fakeNode) bool {
	for _, m := range g.members {
		if m == n {
			return true
		}
	}
	return false
}

func rtt(a, b *fakeNode) float64 { return a.latency + b.latency }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Status implements Backend.
func (n *fakeNode) Status() api.Status {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	s := api.Status{
		PublicID:    n.pub.String(),
		Name:        n.name,
		Fingerprint: n.pub.Fingerprint(),
		PeerURL:     "http://" + n.name + ".invalid:7000",
		Running:     !n.stopped,
		Rejected:    map[string]int64{"bad signature": 0},
	}
	s.ReadReceipts = !n.w.receiptsOff[n]
	s.Reachability = n.w.reach[n]
	if n.stopped {
		return s
	}
	for _, g := range n.w.sortedGroupsLocked() {
		if !g.isMember(n) && !g.isFormer(n) {
			continue
		}
		gs := api.GroupStatus{
			GroupID:   g.id,
			Name:      g.name,
			Term:      g.term,
			Committed: uint64(len(g.log)),
			HasQuorum: g.quorum,
			Role:      "follower",
			Settings:  g.settings,
			Admin:     g.admins[n],
			CanInvite: g.isMember(n) && (g.admins[n] || g.settings.MembersInvite),
			Fork:      g.fork[n],
		}
		for i, m := range g.members {
			if m == n {
				gs.JoinedAt = uint64(1 + 3*i) // the creator at the genesis, the others after
			}
		}
		gs.Censorship = g.censor[n]
		n.w.keysStatusLocked(g, n, &gs)
		if g.quorum && len(g.members) > 0 {
			gs.Host = g.members[0].pub.String()
			if g.members[0] == n {
				gs.Role = "leader"
			}
		}
		if g.isFormer(n) {
			gs.Role = "left"
			if by := g.removedBy[n]; by != nil {
				gs.RemovedBy, gs.RemovedByName = by.pub.String(), by.name
			}
		}
		for _, p := range g.outbox {
			if p.from == n {
				gs.Queued++
			}
		}
		shared := g.namesakesLocked()
		for i, m := range g.members {
			gs.Preference = append(gs.Preference, m.pub.String())
			mem := api.Member{
				PublicID:    m.pub.String(),
				Name:        m.name,
				Fingerprint: m.pub.Fingerprint(),
				Voter:       i < 3,
				Online:      !m.stopped,
				Host:        g.quorum && i == 0,
				Self:        m == n,
				PeerURL:     "http://" + m.name + ".invalid:7000",
				Admin:       g.admins[m],
				Path:        n.w.paths[[2]*fakeNode{n, m}],
				NameShared:  shared[m],
			}
			if m != n {
				mem.SafetyNum = identity.SafetyNumber(n.pub, m.pub)
				if !m.stopped {
					mem.RTTMillis = rtt(n, m)
				}
			}
			n.w.receiptsLocked(g, n, m, &mem)
			gs.Members = append(gs.Members, mem)
			for _, o := range g.members[i+1:] {
				if !m.stopped && !o.stopped {
					gs.Edges = append(gs.Edges, api.Edge{A: m.pub.String(), B: o.pub.String(), RTTMillis: rtt(m, o)})
				}
			}
		}
		n.w.reformStatusLocked(g, n, &gs)
		s.Groups = append(s.Groups, gs)
	}
	return s
}

// Groups implements Backend.
func (n *fakeNode) Groups() []api.GroupInfo {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	var out []api.GroupInfo
	if n.stopped {
		return out
	}
	for _, g := range n.w.sortedGroupsLocked() {
		if g.isMember(n) || g.isFormer(n) {
			out = append(out, api.GroupInfo{GroupID: g.id, Name: g.name})
		}
	}
	return out
}

// CreateGroup implements Backend.
func (n *fakeNode) CreateGroup(ctx context.Context, name string) (api.GroupInfo, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return api.GroupInfo{}, err
	}
	g := &fakeGroup{id: randomHex(8), name: name, members: []*fakeNode{n}, admins: map[*fakeNode]bool{n: true}, quorum: true, term: 1}
	n.w.groups[g.id] = g
	n.notifyLocked(api.Event{Kind: "status", GroupID: g.id})
	return api.GroupInfo{GroupID: g.id, Name: g.name}, nil
}

// Send implements Backend: it commits at once when the group has a quorum,
// and otherwise queues the message and waits for a commit up to wait.
func (n *fakeNode) Send(ctx context.Context, groupID, text string, wait time.Duration) (api.Message, error) {
	n.w.mu.Lock()
	n.lastWait = wait.Seconds()
	if err := n.checkLocked(); err != nil {
		n.w.mu.Unlock()
		return api.Message{}, err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		n.w.mu.Unlock()
		return api.Message{}, err
	}
	m := api.Message{
		ID:      randomHex(16),
		Author:  n.pub.String(),
		Name:    n.name,
		Text:    text,
		SentAt:  time.Now().UTC().Truncate(time.Millisecond),
		State:   api.StateTentative,
		GroupID: g.id,
	}
	if g.overQuota {
		return n.holdLocked(ctx, g, m, wait)
	}
	if g.quorum {
		m = n.w.commitLocked(g, m)
		n.w.mu.Unlock()
		return m, nil
	}
	// Not committed: tentative, and handed directly to the other members
	// (the fake's members all reach each other), as the node does.
	m.Order = uint64(len(g.log) + len(g.outbox) + 1)
	m.Others = len(g.members) - 1
	m.Delivered = m.Others
	p := &fakePending{msg: m, from: n, committed: make(chan struct{})}
	g.outbox = append(g.outbox, p)
	for _, mem := range g.members {
		mm := m
		if mem != n {
			mm.Delivered, mm.Others = 0, 0
		}
		g.markNameLocked(&mm)
		mem.notifyLocked(api.Event{Kind: "message", GroupID: g.id, Message: &mm})
	}
	n.notifyLocked(api.Event{Kind: "status", GroupID: g.id})
	n.w.mu.Unlock()
	return n.awaitCommit(ctx, g, p.committed, m, wait), nil
}

// awaitCommit waits up to wait for m, queued in g, to commit (committed
// closed), as a send does, and returns it as committed, or as queued if it
// was not. It is called without the world's lock.
func (n *fakeNode) awaitCommit(ctx context.Context, g *fakeGroup, committed <-chan struct{}, m api.Message, wait time.Duration) api.Message {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-committed:
		n.w.mu.Lock()
		defer n.w.mu.Unlock()
		for _, c := range g.log {
			if c.ID == m.ID {
				return c
			}
		}
		panic("fake: committed message missing from the log")
	case <-timer.C:
	case <-ctx.Done():
	}
	return m
}

// Subscribe implements Backend.
func (n *fakeNode) Subscribe() (<-chan api.Event, func()) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	ch := make(chan api.Event, 256)
	if n.stopped {
		close(ch)
		return ch, func() {}
	}
	n.subs[ch] = struct{}{}
	return ch, func() {
		n.w.mu.Lock()
		defer n.w.mu.Unlock()
		if _, ok := n.subs[ch]; ok {
			delete(n.subs, ch)
			close(ch)
		}
	}
}

// testUI is a handler on a real loopback listener.
type testUI struct {
	URL   string // http://127.0.0.1:PORT
	Addr  string
	Token string
	h     *handler
	logs  *testutil.LockedBuffer
}

// PageURL is what `demes serve` prints: the UI with the token in the fragment.
func (u *testUI) PageURL() string { return u.URL + "/#token=" + u.Token }

// startUI serves a handler for b (and c, if not nil) until the test ends.
func startUI(t testing.TB, b Backend, c Control) *testUI {
	t.Helper()
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return startUIWithToken(t, b, c, token)
}

// startUIWithToken is startUI with the token given: a serve of a home whose
// token another serve had (the token is in the home's files).
func startUIWithToken(t testing.TB, b Backend, c Control, token string) *testUI {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	logs := &testutil.LockedBuffer{}
	cfg := Config{Backend: b, Token: token, Addr: srv.Listener.Addr().String(), Logger: zerolog.New(logs)}
	if c != nil {
		cfg.Control = c
	}
	h := newHandler(cfg)
	base, cancel := context.WithCancel(context.Background())
	srv.Config.Handler = h
	// Event streams end when this context does; without it srv.Close
	// would wait for the browser to hang up.
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	t.Cleanup(func() {
		cancel()
		srv.Close()
	})
	return &testUI{URL: srv.URL, Addr: srv.Listener.Addr().String(), Token: token, h: h, logs: logs}
}
