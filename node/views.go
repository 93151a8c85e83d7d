package node

import (
	"slices"
	"sort"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// view is an immutable snapshot of a group's state, published by the group's
// goroutine after every change, for the transport and for status readers.
type view struct {
	name    string
	members map[[32]byte]viewMember
	byRaft  map[uint64][32]byte
	invites map[[32]byte]state.Invite
	// settings, admin and canInvite: the group's settings and what this
	// node may do under them.
	settings  state.Settings
	admin     bool
	canInvite bool
	leader    uint64
	term      uint64
	role      string
	applied   uint64
	epoch     uint64 // the membership epoch (a new one at every change of members and rekey)
	prekey    []byte // this node's signed prekey as the log has it (keys.go); never changed in place
	self      bool   // this node is a current member (false after leaving)
	queued    int
	held      int // of the queued, those the quota holds back
	tentative int // other members' tentative messages held here
	pref      []string
	edges     []Edge
	rtt       map[[32]byte]float64
	online    map[[32]byte]bool
	// removedBy and removedByName: who removed this node, when it was
	// removed (role "left"; groupInfo).
	removedBy, removedByName string
	// holds is how far each member's device holds the history, by the
	// latest signed statement of its that matched this node's (receipts.go).
	holds map[[32]byte]uint64
	// provVoters are the voters of a joiner's provisional member list (the
	// join reply's), which it trusts until its own log names the members;
	// empty once it does.
	provVoters map[[32]byte]bool
	// fork is the alert when this node found the group's history forked;
	// censor the one while the host is suspected of censorship.
	fork   *api.ForkAlert
	censor *api.CensorAlert
	keys   *api.KeysAlert // this node lost its keys (keys_group.go)
	// restored is set while the group, restored from a backup, catches
	// up (restored.go).
	restored bool
	// restoredAlone is set while it waits for its other members before
	// it elects itself, its restored copy's only voter (restoredHoldsTick);
	// restoredLeads once it leads, still restored, and restoredStranger
	// is then a member it does not know that sent the group's traffic
	// (noteRestoredStranger), or nil.
	restoredAlone    bool
	restoredLeads    bool
	restoredStranger *[32]byte
	// pairWith is the other voter when this node's applied configuration
	// has exactly two voters, itself and that one, and its log holds no
	// membership change after it (pairOf); zero otherwise.
	pairWith [32]byte
	// noPrekey are the members with no valid prekey in the log
	// (keys_group.go), for status; empty unless this node is a member.
	noPrekey []string
	// nextRekey is when this node may have its next rekey accepted (unix
	// nanoseconds; 0: now), state.RekeyInterval after its last.
	nextRekey int64
	// joinedAt is the log index of this node's join, 0 while not a member.
	joinedAt uint64
	// former are the members that left or were removed.
	former map[[32]byte]bool
	// namesakes are the members and former members whose display names
	// look alike (names.go), for the member list.
	namesakes namesakes
	// replayed is set once this node has applied, since it started, the
	// log it had committed before: until then its state is behind its own
	// disk (it may not even know it is a member yet).
	replayed bool
}

type viewMember struct {
	id     identity.PublicID
	raftID uint64
	url    string
	voter  bool
	admin  bool
	name   string
	order  int
	keeper bool
	joined uint64 // the log index of its join
}

// publish refreshes the view other goroutines read.
func (g *group) publish() {
	g.publishDue = false
	v := &view{
		name:      g.st.Name,
		members:   map[[32]byte]viewMember{},
		byRaft:    map[uint64][32]byte{},
		invites:   map[[32]byte]state.Invite{},
		settings:  g.st.Settings,
		admin:     g.st.IsAdmin(g.n.self.Sign),
		canInvite: g.st.CanInvite(g.n.self.Sign),
		leader:    g.leader,
		term:      g.term,
		role:      roleName(g.role),
		applied:   g.st.Applied,
		epoch:     g.st.Epoch,
		prekey:    g.st.Prekey(g.n.self.Sign),
		nextRekey: g.st.NextRekey(g.n.self.Sign),
		self:      g.st.Members[g.n.self.Sign] != nil,
		replayed:  g.st.Applied >= g.replayTo,
		queued:    len(g.outbox),
		tentative: len(g.tent),
	}
	for _, p := range g.outbox {
		if p.held {
			v.held++
		}
	}
	if v.name == "" {
		v.name = g.info.Name
	}
	v.pref = append([]string(nil), g.pl.ranking.Preference...)
	for _, e := range g.pl.ranking.Edges {
		v.edges = append(v.edges, Edge{A: e.A, B: e.B, RTTMillis: e.RTT})
	}
	v.rtt = map[[32]byte]float64{}
	v.online = map[[32]byte]bool{}
	now := time.Now()
	for k := range g.tentSeen {
		v.online[k] = g.answers(k, now)
	}
	for k, p := range g.pl.peers {
		if x, ok := p.est.Value(); ok {
			v.rtt[k] = x
		}
		v.online[k] = g.answers(k, now)
	}
	provisional := func() {
		for k, p := range g.provisional {
			v.members[k] = p
			v.byRaft[p.raftID] = k
			if p.voter {
				if v.provVoters == nil {
					v.provVoters = map[[32]byte]bool{}
				}
				v.provVoters[k] = true
			}
		}
	}
	if g.provUntil == 0 {
		provisional()
	}
	for k, m := range g.st.Members {
		v.members[k] = viewMember{id: m.ID, raftID: m.RaftID, url: ownURL(k, m.URL), voter: m.Voter, admin: m.Admin, name: m.Name, order: m.Order, keeper: m.Keeper, joined: m.JoinedAt}
		v.byRaft[m.RaftID] = k
	}
	if g.provUntil > 0 {
		// A chain checked while catching up (catchup.go) is newer than
		// the log applied here: it has the last word.
		provisional()
	}
	pending := 0
	for _, p := range g.outbox {
		if !p.held && !p.proposed.IsZero() {
			pending++
		}
	}
	g.fig.pending.Store(uint64(pending))
	v.holds = make(map[[32]byte]uint64, len(g.heard))
	for k, c := range g.heard {
		v.holds[k] = c.index
	}
	if len(g.st.Former) > 0 {
		v.former = make(map[[32]byte]bool, len(g.st.Former))
		for k := range g.st.Former {
			v.former[k] = true
		}
	}
	v.namesakes = g.namesakes()
	if len(g.provisional) > 0 {
		// The list shows members the state does not name yet: their
		// names count too.
		names := make(map[identity.PublicID]string, len(v.members)+len(g.st.Former))
		for _, m := range g.st.Former {
			names[m.ID] = m.Name
		}
		for _, m := range v.members {
			names[m.id] = m.name
		}
		v.namesakes = namesakesOf(names)
	}
	for k, inv := range g.st.Invites {
		v.invites[k] = inv
	}
	if me := g.st.Members[g.n.self.Sign]; me != nil && !me.Voter && v.role == "follower" {
		v.role = "learner"
	}
	if g.left {
		v.role = "left"
	}
	if g.fork != nil {
		v.role = "halted"
		v.fork = g.forkAlert(v)
	}
	if v.role == "left" {
		v.removedBy, v.removedByName = g.info.RemovedBy, v.namesakes.label(g.info.RemovedBy, g.info.RemovedByName)
	}
	v.censor = g.censorAlert(v)
	v.keys = g.keysAlert
	v.restored = g.fromBackup
	v.restoredAlone = g.restoredHoldsTick(time.Now())
	v.restoredLeads = g.fromBackup && g.role == raft.StateLeader
	v.restoredStranger = g.restoredStranger.Load()
	v.pairWith = g.pairOf()
	if v.self && !g.left {
		v.noPrekey = g.prekeyGaps()
	}
	if me := g.st.Members[g.n.self.Sign]; me != nil {
		v.joinedAt = me.JoinedAt
	}
	if old := g.view.Swap(v); old == nil || old.self != v.self || !slices.Equal(old.settings.Relays, v.settings.Relays) {
		g.n.pokeRelays()
	}
	next := make(chan struct{})
	if old := g.changed.Swap(&next); old != nil {
		close(*old)
	}
}

// invited reports whether k has an open invite that has not expired by this
// node's clock (the state machine's clock may lag; a member does not act on
// an invite it knows to be expired).
func (v *view) invited(k [32]byte) bool {
	inv, ok := v.invites[k]
	return ok && time.Now().UnixNano() < inv.Expires
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	}
	return "follower"
}

func (g *group) status() GroupStatus {
	v := g.view.Load()
	gs := GroupStatus{
		GroupID: g.id.String(), Name: v.name, Term: v.term, Role: v.role,
		Committed: v.applied, Queued: v.queued, Held: v.held, Preference: []string{}, Members: []Member{}, Edges: []Edge{},
		Settings: settingsOf(v.settings), Admin: v.admin, CanInvite: v.canInvite, Fork: v.fork, Censorship: v.censor, JoinedAt: v.joinedAt, Keys: v.keys, Restored: v.restoredText(),
		NoPrekey: v.noPrekey, ForwardSecrecy: v.self && v.role != "left" && len(v.noPrekey) == 0,
		RemovedBy: v.removedBy, RemovedByName: v.removedByName,
	}
	if k, ok := v.byRaft[v.leader]; ok && v.leader != raft.None {
		gs.Host = v.members[k].id.String()
	}
	gs.HasQuorum = gs.Host != ""
	gs.Tentative = v.tentative
	if v.self {
		gs.Waiting = waiting(v, gs.HasQuorum, g.n.self.Sign)
	}
	ms := make([]viewMember, 0, len(v.members))
	for _, m := range v.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].order < ms[j].order })
	self := g.n.self
	for _, m := range ms {
		mm := Member{
			PublicID: m.id.String(), Name: m.name, Fingerprint: m.id.Fingerprint(),
			Voter: m.voter, Admin: m.admin, Host: m.raftID == v.leader, Self: m.id == self, PeerURL: m.url, Keeper: m.keeper, JoinedAt: m.joined,
		}
		if m.id != self {
			mm.SafetyNum = identity.SafetyNumber(self, m.id)
		}
		_, mm.NameShared = v.namesakes[mm.PublicID]
		mm.Online = mm.Self || v.online[m.id.Sign]
		mm.RTTMillis = v.rtt[m.id.Sign]
		if !mm.Self && g.n.cfg.Path != nil {
			mm.Path = g.n.cfg.Path(m.id.Sign)
		}
		g.receipts(v, &mm, m.id.Sign)
		gs.Members = append(gs.Members, mm)
	}
	// The preference list as the ranking gives it, with the host first
	// (during a handover the host may not be the top candidate yet).
	if gs.Host != "" {
		gs.Preference = append(gs.Preference, gs.Host)
	}
	for _, p := range v.pref {
		if p != gs.Host {
			gs.Preference = append(gs.Preference, p)
		}
	}
	gs.Edges = append(gs.Edges, v.edges...)
	g.n.reformStatus(g, v, &gs)
	return gs
}
