package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

// view is an immutable snapshot of a group's state, published by the group's
// goroutine after every change, for the transport and for status readers.
type view struct {
	name    string
	members map[[32]byte]viewMember
	byRaft  map[uint64][32]byte
	invites map[[32]byte]bool
	leader  uint64
	term    uint64
	role    string
	applied uint64
	self    bool // this node is a current member (false after leaving)
	queued  int
	pref    []string
	edges   []Edge
	rtt     map[[32]byte]float64
	online  map[[32]byte]bool
	// provVoters are the voters of a joiner's provisional member list (the
	// join reply's), which it trusts until its own log names the members;
	// empty once it does.
	provVoters map[[32]byte]bool
}

type viewMember struct {
	id     identity.PublicID
	raftID uint64
	url    string
	voter  bool
	name   string
	order  int
}

// group is one chat group on this node. Fields below the line are owned by
// the run goroutine.
type group struct {
	n      *Node
	id     crypto.GroupID
	raftID uint64
	// rn is the group's raft state machine. Only run's goroutine touches
	// it (tick, step, propose, Ready, Advance), as etcd raft's rawnode.go
	// intends: there is no second owner to coordinate with.
	rn      *raft.RawNode
	storage *logStore
	view    atomic.Pointer[view]
	reqc    chan func()
	stopc   chan struct{}
	donec   chan struct{}
	// stepc carries batches of peers' raft messages from the transport, and
	// unreachc the raft ids of members a peer queue failed to reach, to run.
	stepc    chan []*pb.Message
	unreachc chan uint64
	// changed is closed and replaced at every publish, so that whoever waits
	// for the view to reach some state wakes when it changes (waitView).
	changed atomic.Pointer[chan struct{}]
	// attested is the latest raft view each member reported in a ping or
	// pong, published by run (see attest.go); attc and pullc carry reports
	// and requests for more to run.
	attested atomic.Pointer[map[[32]byte]raftView]
	attc     chan attestation
	pullc    chan struct{}

	// ---- owned by run ----
	st           *state.State
	info         groupInfo
	provisional  map[[32]byte]viewMember
	bootstrap    bool // created here: campaign once the bootstrap entry applied
	campaigned   bool
	outbox       map[[16]byte]*pending
	messages     []Message
	msgIndex     map[string]int
	leader       uint64
	term         uint64
	role         raft.StateType
	left         bool
	pl           placementState
	outboxDone   [][]byte                     // committed ids to drop from the stored outbox
	outboxPut    []*pending                   // queued messages to write to the stored outbox
	unsavedHS    *pb.HardState                // a newer hard state that differs only in its commit index, not written yet
	wrote        bool                         // something was written since the last retry tick
	idTexts      map[identity.PublicID]string // see idText
	lastAddress  time.Time
	lastCheck    time.Time
	entries      uint64 // applied entries other than checkpoints
	checkEntries uint64 // the value of entries at this node's last checkpoint
	urlHint      map[[32]byte]string
	rttc         chan rttSample

	// Sender keys (see crypto.SenderKey and docs/PROTOCOL.md): none is
	// ever written to disk; they are learnt again from the key headers in
	// the log when it is replayed at start.
	myKey     *crypto.SenderKey              // this node's key for sealing, if any yet
	ownKeys   map[[16]byte]*crypto.SenderKey // this node's keys, by id, of every epoch it sealed in
	keys      map[keyRef]*crypto.SenderKey   // every member's keys of the current epoch, for opening
	keysEpoch uint64                         // the epoch of keys
	restored  map[string][]byte              // outbox frames to restore once the log is replayed
	replayTo  uint64                         // the commit index at start: the end of the replay
	attests   map[[32]byte]raftView          // the map attested points to
	lastPull  time.Time                      // the last time pullAttestations pinged the voters

	// Snapshots (see maybeSnapshot).
	confState *pb.ConfState // raft's configuration after the last applied entry
	snapIndex uint64        // the index of the latest stored snapshot
	// restoredFrom is the index of the snapshot this run of the group
	// started from (0: it applied the log from the start), and appliedHere
	// counts the entries it applied since: what tests look at to tell that
	// a restart applied only the entries after the snapshot.
	restoredFrom uint64
	appliedHere  uint64
}

// keyRef names a sender key: a message names the key it is sealed under by
// its sender, epoch and key id.
type keyRef struct {
	sender [32]byte
	epoch  uint64
	id     [crypto.KeyIDSize]byte
}

type pending struct {
	leader   uint64 // the leader when last proposed
	id       [16]byte
	text     string
	sentAt   time.Time
	frame    []byte
	proposed time.Time
	waiters  []chan struct{}
	// durable is closed once the message is on this node's disk: in the
	// stored outbox, or committed. A send is acknowledged only then.
	durable chan struct{}
	stored  bool
}

// markDurable records that p is on disk and tells whoever waits for that.
func (p *pending) markDurable() {
	if p.stored {
		return
	}
	p.stored = true
	if p.durable != nil {
		close(p.durable)
	}
}

// maxAppendBytes bounds the entry data of one append, as raft sends it and
// as coalesce merges them.
const maxAppendBytes = 1 << 20

// maxInflightAppends is how many appends the host has on their way to one
// member before it waits for an answer. Entries proposed meanwhile wait at
// the host and go in the next append together: under load a member then
// writes and answers fewer, larger appends (five processes on two cores: about
// 11% less CPU per message than with 256 in flight, in six paired runs). A
// member catching up still gets 2 MiB per round trip.
const maxInflightAppends = 2

// raftConfig is the raft configuration of a group; applied is the index up
// to which the group's state is restored already (raft hands over the
// committed entries after it only).
func (n *Node) raftConfig(id uint64, storage raft.Storage, applied uint64) *raft.Config {
	return &raft.Config{
		ID:                id,
		ElectionTick:      n.cfg.Timing.ElectionTicks,
		HeartbeatTick:     n.cfg.Timing.HeartbeatTicks,
		Storage:           storage,
		Applied:           applied,
		MaxSizePerMsg:     maxAppendBytes,
		MaxInflightMsgs:   maxInflightAppends,
		CheckQuorum:       true,
		PreVote:           true,
		StepDownOnRemoval: true,
		Logger:            raftLogger{n.log},
	}
}

// startGroup creates a group's runtime. With a genesis frame it bootstraps a
// new group with this node as the only voter; with a provisional member list
// it starts an empty log that the group's leader will fill (a join).
func (n *Node) startGroup(gid crypto.GroupID, info groupInfo, genesis []byte, prov []provisionalMember) (*group, error) {
	g := n.newGroup(gid, info)
	storage, err := newLogStore(raft.NewMemoryStorage(), n.store, gid[:])
	if err != nil {
		return nil, err
	}
	g.storage = storage
	if g.rn, err = raft.NewRawNode(n.raftConfig(g.raftID, g.storage, 0)); err != nil {
		return nil, err
	}
	if genesis != nil {
		g.bootstrap = true
		if err := g.rn.Bootstrap([]raft.Peer{{ID: g.raftID, Context: genesis}}); err != nil {
			return nil, err
		}
	}
	g.run0()
	return g, nil
}

// restartGroup rebuilds a group from the store. With a snapshot (see
// maybeSnapshot), the state machine is restored from it, and raft applies
// only the committed entries after it; what the node keeps about the
// messages before it is rebuilt from the stored log without applying it
// again (rebuildHistory). Without one, every committed entry is applied
// again from the first, which rebuilds the state machine (membership,
// messages) exactly as before. Only the log after the snapshot is loaded
// into memory; raft reads older entries from the store when it needs them.
func (n *Node) restartGroup(gid crypto.GroupID, info groupInfo) (*group, error) {
	g := n.newGroup(gid, info)
	hs, err := n.store.HardState(gid[:])
	if err != nil {
		return nil, err
	}
	first, last, err := n.store.LogBounds(gid[:])
	if err != nil {
		return nil, err
	}
	mem := raft.NewMemoryStorage()
	snap, st, err := n.loadSnapshot(gid)
	switch {
	case err == nil && snap != nil:
		if err := mem.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("apply the snapshot at %d: %w", snap.GetMetadata().GetIndex(), err)
		}
		g.st, g.confState = st, snap.GetMetadata().GetConfState()
		g.snapIndex, g.restoredFrom = st.Applied, st.Applied
	case err != nil && first == 1:
		// The whole log is there: apply it again, as without a snapshot.
		// The next snapshot replaces this one.
		n.log.Error().Err(err).Str("group", gid.String()).
			Msg("cannot restore the group's state from its snapshot; applying the whole log again")
		g.snapIndex, snap = snap.GetMetadata().GetIndex(), nil
	case err != nil:
		return nil, err
	}
	// The memory holds the log after the snapshot (all of it without one).
	if from := g.restoredFrom + 1; last >= from {
		ents, err := n.store.Entries(gid[:], max(from, first), last+1, math.MaxUint64)
		if err != nil {
			return nil, err
		}
		if err := mem.Append(ents); err != nil {
			return nil, err
		}
	}
	// A snapshot is committed; the hard state written before it says so,
	// except after a crash between installing a snapshot from the host and
	// the next write (see installSnapshot).
	if hs.GetCommit() < g.restoredFrom {
		hs.Commit = proto.Uint64(g.restoredFrom)
	}
	if err := mem.SetHardState(hs); err != nil {
		return nil, err
	}
	if g.storage, err = newLogStore(mem, n.store, gid[:]); err != nil {
		return nil, err
	}
	// raft reports the term in a Ready only when it changes, and pings carry
	// it (attest.go): start from the stored one.
	g.term = hs.GetTerm()
	if snap != nil {
		start := time.Now()
		g.afterConf(state.Result{})
		if err := g.rebuildHistory(first, g.restoredFrom); err != nil {
			return nil, err
		}
		n.log.Info().Str("group", gid.String()).Uint64("index", g.restoredFrom).Uint64("commit", hs.GetCommit()).
			Int("messages", len(g.messages)).Dur("took", time.Since(start)).
			Msg("restored the group's state from its snapshot; applying the log after it")
	}
	g.publish()
	outbox, err := n.store.Outbox(gid[:])
	if err != nil {
		return nil, err
	}
	// A queued message may be sealed under a sender key that only the
	// log's key headers hold: restore the outbox once the log is replayed.
	g.restored, g.replayTo = outbox, hs.GetCommit()
	if g.maybeRestoreOutbox() && snap != nil {
		// Restored from a snapshot at the commit index: nothing is to be
		// applied before the outbox can be checked against the state, as
		// handleReady does after the replay.
		g.resealOutbox()
	}
	if g.rn, err = raft.NewRawNode(n.raftConfig(g.raftID, g.storage, g.restoredFrom)); err != nil {
		return nil, err
	}
	g.run0()
	return g, nil
}

// loadSnapshot loads a group's stored snapshot, if any, and restores the
// state machine from it. On an error, snap is the snapshot if it could be
// read at all.
func (n *Node) loadSnapshot(gid crypto.GroupID) (snap *pb.Snapshot, st *state.State, err error) {
	snap, err = n.store.LoadSnapshot(gid[:])
	if err != nil || snap == nil {
		return nil, nil, err
	}
	if st, err = restoreSnapshot(gid, snap); err != nil {
		return snap, nil, fmt.Errorf("restore the state at %d from the snapshot: %w", snap.GetMetadata().GetIndex(), err)
	}
	return snap, st, nil
}

// restoreSnapshot restores the state machine from snap and checks that it is
// the state at snap's index.
func restoreSnapshot(gid crypto.GroupID, snap *pb.Snapshot) (*state.State, error) {
	st, err := state.Restore(gid, snap.GetData())
	if err == nil && st.Applied != snap.GetMetadata().GetIndex() {
		err = fmt.Errorf("%w: it holds the state at %d", state.ErrBadSnapshot, st.Applied)
	}
	return st, err
}

// rebuildHistory rebuilds, for a state restored from the snapshot at upto,
// what this node derived from the chat messages up to there and the state
// machine does not keep: the messages it lists, and the sender keys it
// opened (its own ones, which a queued message may be sealed under, and the
// others' keys of the current epoch, which later messages without a key
// header are sealed under). It reads the stored log from first and opens
// each message that the state accepted at its index exactly as afterEntry
// did when it was applied, without applying anything again.
//
// The envelopes' signatures are not checked again (see
// state.State.AcceptedChat): they were when the entries were applied, and the
// log and the snapshot are this node's own store, so whoever could change
// one could change the other. Each opened message's own signature, by its
// author, is still checked.
//
// A message lists the author's display name the state has now, which differs
// from the one of its time only for a member who left and joined again
// under another name.
func (g *group) rebuildHistory(first, upto uint64) error {
	if first == 0 {
		return nil
	}
	for lo := first; lo <= upto; {
		ents, err := g.n.store.Entries(g.id[:], lo, upto+1, 4<<20)
		if err != nil {
			return fmt.Errorf("rebuild the history before the snapshot at %d: %w", upto, err)
		}
		for _, e := range ents {
			if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 {
				continue
			}
			c := g.st.AcceptedChat(e.GetIndex(), e.GetData())
			if c == nil {
				continue
			}
			author := g.st.Members[c.Sender]
			if author == nil {
				author = g.st.Former[c.Sender]
			}
			// afterEntry opens only while this node is a member; here
			// deliver tries every message, but one from a time this node
			// was not a member is sealed under a key it was never given,
			// which deliver passes over silently, as afterEntry does.
			g.deliver(c, author)
		}
		lo += uint64(len(ents))
	}
	// Keys of earlier epochs open nothing that is still to come.
	for ref := range g.keys {
		if ref.epoch != g.st.Epoch {
			delete(g.keys, ref)
		}
	}
	return nil
}

func (n *Node) newGroup(gid crypto.GroupID, info groupInfo) *group {
	g := &group{
		n:           n,
		id:          gid,
		raftID:      state.RaftID(n.self.Sign),
		reqc:        make(chan func()),
		stopc:       make(chan struct{}),
		donec:       make(chan struct{}),
		st:          state.New(gid),
		info:        info,
		provisional: map[[32]byte]viewMember{},
		outbox:      map[[16]byte]*pending{},
		msgIndex:    map[string]int{},
		ownKeys:     map[[16]byte]*crypto.SenderKey{},
		keys:        map[keyRef]*crypto.SenderKey{},
		stepc:       make(chan []*pb.Message, 64),
		unreachc:    make(chan uint64, 64),
		rttc:        make(chan rttSample, 64),
		attc:        make(chan attestation, 64),
		pullc:       make(chan struct{}, 1),
		attests:     map[[32]byte]raftView{},
		urlHint:     map[[32]byte]string{},
		pl:          placementState{peers: map[[32]byte]*peerLatency{}, started: time.Now()},
	}
	for _, p := range info.Provisional {
		id, err := identity.ParsePublicID(p.PublicID)
		if err != nil {
			continue
		}
		g.provisional[id.Sign] = viewMember{id: id, raftID: state.RaftID(id.Sign), url: p.URL, voter: p.Voter}
	}
	g.publish()
	return g
}

func (g *group) run0() {
	g.n.wg.Add(1)
	go func() {
		defer g.n.wg.Done()
		defer close(g.donec)
		g.run()
	}()
}

func (g *group) stop() {
	select {
	case <-g.stopc:
	default:
		close(g.stopc)
	}
	<-g.donec
}

// do runs fn on the group's goroutine and waits for it.
func (g *group) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case g.reqc <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopc:
		return fmt.Errorf("group %s: %w", g.id, ErrStopped)
	}
	select {
	case <-done:
		return nil
	case <-g.stopc:
		return fmt.Errorf("group %s: %w", g.id, ErrStopped)
	}
}

func (g *group) run() {
	tick := time.NewTicker(g.n.cfg.Timing.Tick)
	defer tick.Stop()
	retry := time.NewTicker(g.n.cfg.RetryInterval)
	defer retry.Stop()
	ping := time.NewTicker(g.n.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-g.stopc:
			// Messages sent since the last write would be lost from the
			// outbox otherwise (their senders are not acknowledged yet).
			if !g.n.crashed.Load() {
				_ = g.flushOutbox(true)
			}
			return
		case <-tick.C:
			g.rn.Tick()
		case msgs := <-g.stepc:
			g.stepAll(msgs)
		case id := <-g.unreachc:
			g.rn.ReportUnreachable(id)
		case <-retry.C:
			// What was put off rides with the next write while the group
			// is busy; once it has written nothing for a whole interval,
			// it is written here, so that a restart finds the commit
			// index and the outbox up to date. Not at every tick: in a
			// group that writes now and then (a message every few hundred
			// milliseconds) that would be a second fsync per message.
			all := !g.wrote
			g.wrote = false
			if err := g.flushOutbox(all); err != nil {
				g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot persist the outbox; stopping the group")
				return
			}
			g.retryOutbox()
			g.placeVoters()
			g.maybeUpdateAddress()
			g.maybeCheckpoint()
		case <-ping.C:
			g.placementTick()
		case s := <-g.rttc:
			g.onRTT(s)
		case a := <-g.attc:
			g.onAttestation(a)
		case <-g.pullc:
			g.pullAttestations()
		case fn := <-g.reqc:
			fn()
		}
		// Whatever happened may have given raft something to persist,
		// send or apply.
		for g.rn.HasReady() {
			if err := g.handleReady(g.rn.Ready()); err != nil {
				// A node that cannot persist must not acknowledge anything:
				// stop this group rather than go on with a diverging state.
				g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot persist raft state; stopping the group")
				return
			}
		}
	}
}

// stepAll hands peers' raft messages (checked by admit) to raft. A proposal
// raft does not take (this node knows no host) is dropped at once: its
// author proposes it again from its outbox.
func (g *group) stepAll(msgs []*pb.Message) {
	for _, m := range msgs {
		if err := g.rn.Step(m); err != nil {
			g.n.log.Debug().Err(err).Str("type", m.GetType().String()).Msg("raft step")
		}
	}
}

func (g *group) handleReady(rd raft.Ready) error {
	// A Ready is written to disk (one bbolt transaction, fsynced) when it
	// has entries or a new term or vote, or when it commits a membership
	// change. Each write carries everything put off meanwhile: the outbox
	// writes of messages sent since the last one (group commit: one fsync
	// for all of them; see enqueue) and deletes. A Ready that only
	// moves the commit index otherwise writes nothing; the new index rides
	// with the next write. raft allows that: a commit index is never needed
	// for safety, a restarted member learns it again from the host. But
	// raft rebuilds its configuration at start from the membership changes
	// up to the stored commit index (after the snapshot's configuration,
	// if there is one), so that index must cover every change applied: a
	// member that forgot a join could count itself the only voter and lead
	// alone (the fault-schedule runner found exactly that when every
	// commit-only Ready was skipped). Deletes of committed messages from
	// the outbox ride along too: a lost delete is harmless, since at start
	// a queued message that the state (replayed, or restored from a
	// snapshot) has accepted is dropped (maybeRestoreOutbox).
	//
	// A leader sends its appends and heartbeats before its own write, so
	// that the followers' writes overlap the leader's (raft thesis 10.2.1;
	// etcd does the same). That is safe because raft counts the leader's
	// own copy of an entry only at Advance, after the write below, and
	// because nothing it sends early depends on a term or vote that is
	// not yet on disk: early sending is off in a Ready that changes them.
	//
	// Forwarded proposals (MsgProp) leave early too, from any member: they
	// carry a signed message and nothing of this node's raft state.
	msgs := g.sendEarly(rd.Messages, g.leadsWithSameVote(rd))
	hs := rd.HardState
	if hs != nil && raft.IsEmptyHardState(hs) {
		hs = nil
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		// Before the entries, which follow it.
		if err := g.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	write := len(rd.Entries) > 0 || hasConfChange(rd.CommittedEntries)
	if hs != nil && !write && g.keepsVote(hs) {
		g.unsavedHS = proto.Clone(hs).(*pb.HardState)
	} else if hs != nil || write {
		if err := g.persist(hs, rd.Entries); err != nil {
			return err
		}
	}
	if hs != nil {
		if err := g.storage.mem.SetHardState(hs); err != nil {
			return err
		}
	}
	// Into memory only once in the store: an entry raft reads below the
	// memory's first index must be in the store (see logStore).
	if err := g.storage.mem.Append(rd.Entries); err != nil {
		return err
	}
	g.noteTransferCampaign(rd.Messages)
	g.sendRaft(msgs)
	changed := false
	if rd.SoftState != nil {
		if g.leader != rd.SoftState.Lead || g.role != rd.SoftState.RaftState {
			changed = true
		}
		g.leader, g.role = rd.SoftState.Lead, rd.SoftState.RaftState
	}
	if rd.HardState != nil && rd.HardState.GetTerm() != g.term && rd.HardState.GetTerm() != 0 {
		g.term = rd.HardState.GetTerm()
		changed = true
	}
	if len(rd.CommittedEntries) > 0 {
		g.apply(rd.CommittedEntries)
		if g.maybeRestoreOutbox() {
			g.resealOutbox()
		}
		changed = true
	}
	g.rn.Advance(rd)
	g.maybeSnapshot()
	if g.bootstrap && !g.campaigned && g.st.Applied >= 1 {
		// Campaign is ignored until raft knows the bootstrap configuration
		// is applied, which it learns at Advance (see GOTCHAS.md); now it
		// does, so the creator leads at once instead of after an election
		// timeout.
		g.campaigned = true
		_ = g.rn.Campaign()
	}
	if changed {
		g.publish()
		g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	}
	return nil
}

// leadsWithSameVote reports whether this node leads after rd and rd leaves
// the persisted term and vote as they are, which is when the leader may send
// its replication messages before its own write.
func (g *group) leadsWithSameVote(rd raft.Ready) bool {
	role := g.role
	if rd.SoftState != nil {
		role = rd.SoftState.RaftState
	}
	if role != raft.StateLeader {
		return false
	}
	return rd.HardState == nil || raft.IsEmptyHardState(rd.HardState) || g.keepsVote(rd.HardState)
}

// keepsVote reports whether hs, a Ready's hard state not yet handed to the
// storage, leaves the term and vote as they are: the storage's are those
// on disk, since every Ready that changes them is written.
func (g *group) keepsVote(hs *pb.HardState) bool {
	prev, _, err := g.storage.InitialState()
	return err == nil && prev.GetTerm() == hs.GetTerm() && prev.GetVote() == hs.GetVote()
}

// sendEarly sends the messages among msgs that need not wait for this
// Ready's write (forwarded proposals, and a leader's appends and heartbeats
// when replicate is set) and returns the others.
func (g *group) sendEarly(msgs []*pb.Message, replicate bool) []*pb.Message {
	var early, rest []*pb.Message
	for _, m := range msgs {
		switch t := m.GetType(); {
		case t == pb.MsgProp, replicate && (t == pb.MsgApp || t == pb.MsgHeartbeat):
			early = append(early, m)
		default:
			rest = append(rest, m)
		}
	}
	if len(early) > 0 {
		g.sendRaft(early)
	}
	return rest
}

// outboxItems returns the outbox writes waiting for the next transaction:
// the queued messages sent (or sealed again) since the last one.
func (g *group) outboxItems() []store.OutboxItem {
	items := make([]store.OutboxItem, 0, len(g.outboxPut))
	for _, p := range g.outboxPut {
		if g.outbox[p.id] == p {
			items = append(items, store.OutboxItem{ID: p.id[:], Frame: p.frame})
		}
	}
	return items
}

// outboxWritten acknowledges the messages whose outbox write has just been
// committed to disk.
func (g *group) outboxWritten() {
	for _, p := range g.outboxPut {
		if p.stored {
			continue
		}
		p.markDurable()
		if g.outbox[p.id] == p {
			m := g.pendingMessage(p)
			g.n.events.publish(Event{Kind: "message", GroupID: g.id.String(), Message: &m})
		}
	}
	g.outboxPut = g.outboxPut[:0]
}

// persist writes, in one fsynced transaction, the hard state hs (or, when
// nil, one whose write was put off) and entries, with the outbox writes
// and deletes waiting, and acknowledges the messages written.
func (g *group) persist(hs *pb.HardState, entries []*pb.Entry) error {
	if hs == nil {
		hs = g.unsavedHS
	}
	if err := g.n.store.SaveRaft(g.id[:], hs, entries, g.outboxItems(), g.outboxDone); err != nil {
		return err
	}
	g.unsavedHS = nil
	g.wrote = true
	g.outboxDone = g.outboxDone[:0]
	g.outboxWritten()
	return nil
}

// hasConfChange reports whether entries hold a membership change.
func hasConfChange(entries []*pb.Entry) bool {
	for _, e := range entries {
		if e.GetType() != pb.EntryNormal {
			return true
		}
	}
	return false
}

// makeDurable writes the waiting outbox writes now unless durable, the
// channel of one of them, says it is on disk already: a send is about to
// be acknowledged as queued.
func (g *group) makeDurable(durable chan struct{}) error {
	select {
	case <-durable:
		return nil
	default:
	}
	return g.flushOutbox(false)
}

// flushOutbox writes the waiting outbox writes now (for a send about to be
// acknowledged as queued), and with all set, everything put off: the latest
// commit index and the outbox deletes (at the retry tick and a clean stop).
func (g *group) flushOutbox(all bool) error {
	if len(g.outboxPut) == 0 && (!all || (len(g.outboxDone) == 0 && g.unsavedHS == nil)) {
		return nil
	}
	if err := g.persist(nil, nil); err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	return nil
}

// maybeSnapshot takes a snapshot every SnapshotEntries applied entries: the
// state machine's state and raft's configuration at the applied index,
// stored (fsync) as the group's stored applied index, from which a restart
// restores the state instead of applying the whole log again. Then it drops
// from memory the log before the last SnapshotKeep entries; the store keeps
// the whole log, which raft reads back when a lagging member needs it.
//
// A failure is logged and changes nothing else: the log is intact, and a
// restart applies more of it again.
func (g *group) maybeSnapshot() {
	applied := g.st.Applied
	if applied < g.snapIndex+g.n.cfg.SnapshotEntries || g.confState == nil {
		return
	}
	log := g.n.log.With().Str("group", g.id.String()).Uint64("index", applied).Logger()
	data, err := g.st.Snapshot()
	if err != nil {
		log.Error().Err(err).Msg("cannot take a snapshot")
		return
	}
	snap, err := g.storage.mem.CreateSnapshot(applied, g.confState, data)
	if err != nil {
		log.Error().Err(err).Msg("cannot take a snapshot")
		return
	}
	if err := g.n.store.SaveSnapshot(g.id[:], snap); err != nil {
		log.Error().Err(err).Msg("cannot store a snapshot")
		return
	}
	g.snapIndex = applied
	if applied > g.n.cfg.SnapshotKeep {
		if err := g.storage.mem.Compact(applied - g.n.cfg.SnapshotKeep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			log.Error().Err(err).Msg("cannot compact the log in memory")
		}
	}
	log.Debug().Int("bytes", len(data)).Msg("snapshot taken")
}

// installSnapshot installs a snapshot that raft received from the host
// (rd.Snapshot): the state machine is restored from it and the stored log
// replaced by it. DeMeS never sends one (a host's log is never compacted,
// and the transport refuses snapshot messages), so this only keeps the
// node consistent should one ever come: the messages between what this
// node had applied and the snapshot are then missing here.
func (g *group) installSnapshot(snap *pb.Snapshot) error {
	md := snap.GetMetadata()
	st, err := restoreSnapshot(g.id, snap)
	if err != nil {
		return fmt.Errorf("install the snapshot at %d from the host: %w", md.GetIndex(), err)
	}
	if err := g.n.store.InstallSnapshot(g.id[:], snap); err != nil {
		return err
	}
	if err := g.storage.install(snap); err != nil {
		return fmt.Errorf("install the snapshot at %d from the host: %w", md.GetIndex(), err)
	}
	g.n.log.Warn().Str("group", g.id.String()).Uint64("index", md.GetIndex()).Uint64("applied", g.st.Applied).
		Msg("installed a snapshot from the host: the history before it is not available on this node")
	g.st, g.confState, g.snapIndex = st, md.GetConfState(), md.GetIndex()
	g.afterConf(state.Result{})
	return nil
}

func (g *group) apply(entries []*pb.Entry) {
	g.appliedHere += uint64(len(entries))
	for _, e := range entries {
		idx := e.GetIndex()
		switch e.GetType() {
		case pb.EntryNormal:
			var res state.Result
			if env := g.n.verified.take(e.GetData()); env != nil {
				res = g.st.ApplyEntryEnv(idx, e.GetData(), env, nil)
			} else {
				res = g.st.ApplyEntry(idx, e.GetData())
			}
			if len(e.GetData()) > 0 && (res.Env == nil || res.Env.Type != crypto.TypeCheckpoint) {
				g.entries++
			}
			g.afterEntry(idx, res)
		case pb.EntryConfChange:
			cc := &pb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				g.n.log.Error().Err(err).Uint64("index", idx).Msg("undecodable conf change")
				cc = &pb.ConfChange{}
			}
			res := g.st.ApplyConf(idx, cc.GetNodeId(), confKind(cc.GetType()), cc.GetContext())
			g.logReject(idx, res)
			cc.NodeId = proto.Uint64(res.Conf.NodeID)
			g.confState = g.rn.ApplyConfChange(cc)
			g.afterConf(res)
		case pb.EntryConfChangeV2:
			cc := &pb.ConfChangeV2{}
			var res state.Result
			if err := proto.Unmarshal(e.GetData(), cc); err != nil || len(cc.GetChanges()) != 1 {
				res = g.st.ApplyConf(idx, 0, 0, nil)
				for _, c := range cc.GetChanges() {
					c.NodeId = proto.Uint64(0)
				}
			} else {
				c := cc.GetChanges()[0]
				res = g.st.ApplyConf(idx, c.GetNodeId(), confKind(c.GetType()), cc.GetContext())
				c.NodeId = proto.Uint64(res.Conf.NodeID)
			}
			g.logReject(idx, res)
			g.confState = g.rn.ApplyConfChange(cc)
			g.afterConf(res)
		}
	}
}

func confKind(t pb.ConfChangeType) state.ConfKind {
	switch t {
	case pb.ConfChangeAddNode:
		return state.AddVoter
	case pb.ConfChangeAddLearnerNode:
		return state.AddLearner
	case pb.ConfChangeRemoveNode:
		return state.Remove
	}
	return 0
}

func (g *group) logReject(idx uint64, res state.Result) {
	if res.Err == nil {
		return
	}
	// The log is replayed at every start: an entry up to the commit index
	// found on disk was rejected, logged and counted when it was first
	// applied, so it is only noted at debug level.
	ev := g.n.log.Warn()
	if idx <= g.replayTo {
		ev = g.n.log.Debug()
	}
	ev = ev.Str("group", g.id.String()).Uint64("index", idx).Str("reason", res.Err.Error())
	if res.Env != nil {
		ev = ev.Str("sender", shortKey(res.Env.Sender)).Str("type", res.Env.Type.String())
	}
	ev.Msg("rejected log entry")
	if idx > g.replayTo {
		g.n.rejects.add("log entry: " + reasonKey(res.Err))
	}
}

func (g *group) afterConf(res state.Result) {
	if res.Err != nil {
		return
	}
	g.n.log.Debug().Str("group", g.id.String()).Uint64("index", g.st.Applied).Int("members", len(g.st.Members)).Int("voters", len(g.st.Voters())).Msg("membership changed")
	// Once the log names the members, the provisional trust of a join is
	// no longer needed.
	if g.st.Members[g.n.self.Sign] != nil && len(g.provisional) > 0 {
		g.provisional = map[[32]byte]viewMember{}
		g.info.Provisional = nil
		_ = g.n.store.CreateGroup(g.id[:], encodeGroupInfo(g.info))
	}
	if g.st.Members[g.n.self.Sign] == nil && g.st.Former[g.n.self.Sign] != nil && !g.left {
		g.left = true
		g.n.log.Info().Str("group", g.id.String()).Msg("this node is no longer a member of the group")
	}
	if g.keysEpoch != g.st.Epoch {
		// The member set changed: no message of the old epoch can be
		// accepted any more, so their keys are of no use for opening.
		clear(g.keys)
		g.keysEpoch = g.st.Epoch
		if g.restored == nil {
			// Nor for restoring the outbox, once it is restored:
			// resealOutbox below seals what it holds under a new key.
			for id, k := range g.ownKeys {
				if k.Epoch != g.st.Epoch {
					delete(g.ownKeys, id)
				}
			}
		}
	}
	// Queued messages were sealed under a key of the old epoch; re-seal them
	// now rather than have each rejected once.
	g.resealOutbox()
}

func (g *group) afterEntry(idx uint64, res state.Result) {
	if res.Err != nil {
		g.logReject(idx, res)
		// Our own message sealed under a stale or unknown key: re-seal
		// and retry.
		if res.Env != nil && res.Env.Sender == g.n.self.Sign && res.Env.Type == crypto.TypeChat {
			g.resealOutbox()
		}
		return
	}
	// Only members list messages: a node applies entries while it is not
	// one yet (a joiner before its join) or not any more.
	if res.Chat == nil || g.st.Members[g.n.self.Sign] == nil {
		return
	}
	g.deliver(res.Chat, g.st.Members[res.Chat.Sender])
}

// idText returns id's text form, kept for the next message by the same
// author: encoding it (bech32) for every message shown cost two thirds as
// much CPU as opening the message.
func (g *group) idText(id identity.PublicID) string {
	t, ok := g.idTexts[id]
	if !ok {
		if g.idTexts == nil || len(g.idTexts) >= 4096 {
			g.idTexts = map[identity.PublicID]string{}
		}
		t = id.String()
		g.idTexts[id] = t
	}
	return t
}

// deliver opens an accepted chat message by author (a member at its index)
// and, if this node can read it, lists it and tells the UI; either way, the
// message is no longer queued here.
func (g *group) deliver(c *state.Chat, author *state.Member) {
	m := Message{
		ID:      hex.EncodeToString(c.ID[:]),
		Index:   c.Index,
		State:   StateCommitted,
		GroupID: g.id.String(),
		SentAt:  time.Unix(0, c.Time).UTC(),
	}
	if author != nil {
		m.Author, m.Name = g.idText(author.ID), author.Name
	}
	key, err := g.chatKey(c)
	var opened *crypto.Opened
	if err == nil {
		// The state machine checked the envelope's signature.
		opened, err = crypto.OpenReceived(key, g.id, c.Sealed, c.Sender, c.ID)
	}
	switch {
	case err == nil:
		m.Text = string(opened.Body)
		m.SentAt = time.Unix(0, opened.Time).UTC()
	case errors.Is(err, crypto.ErrNotRecipient):
		// A message from before we joined; not ours to read.
	default:
		g.n.log.Warn().Err(err).Str("group", g.id.String()).Uint64("index", c.Index).Msg("cannot open message")
		g.n.rejects.add("open message: " + reasonKey(err))
	}
	if err == nil {
		g.msgIndex[m.ID] = len(g.messages)
		g.messages = append(g.messages, m)
	}
	// Only members who can read a message list it.
	g.commitOutbox(c.ID)
	if err == nil {
		g.n.events.publish(Event{Kind: "message", GroupID: g.id.String(), Message: &m})
	}
}

// chatKey returns the sender key an accepted chat message is sealed under:
// from the cache, or from the message's own key header, which it then
// caches. The state machine accepted the message, so either its key was
// registered by a header this node applied in the current epoch, as a member
// and so a recipient, or the message carries the header.
func (g *group) chatKey(c *state.Chat) (*crypto.SenderKey, error) {
	ref := keyRef{sender: c.Sender, epoch: c.Epoch, id: c.KeyID}
	if k := g.keys[ref]; k != nil {
		return k, nil
	}
	self := g.n.self.Sign
	if k := g.ownKeys[c.KeyID]; c.Sender == self && k != nil && k.Epoch == c.Epoch {
		g.keys[ref] = k
		return k, nil
	}
	if !c.Header {
		return nil, fmt.Errorf("open message: %w: sender key %x of %x was never opened here", crypto.ErrNotRecipient, c.KeyID[:4], c.Sender[:4])
	}
	k, err := crypto.OpenSenderKey(g.n.id, g.id, c.Sealed, c.Sender)
	if err != nil {
		return nil, err
	}
	g.keys[ref] = k
	if c.Sender == self {
		g.ownKeys[k.ID] = k
	}
	return k, nil
}

func (g *group) commitOutbox(id [16]byte) {
	p := g.outbox[id]
	if p == nil {
		return
	}
	delete(g.outbox, id)
	g.outboxDone = append(g.outboxDone, append([]byte(nil), id[:]...))
	p.markDurable()
	for _, w := range p.waiters {
		close(w)
	}
}

// publish refreshes the view other goroutines read.
func (g *group) publish() {
	v := &view{
		name:    g.st.Name,
		members: map[[32]byte]viewMember{},
		byRaft:  map[uint64][32]byte{},
		invites: map[[32]byte]bool{},
		leader:  g.leader,
		term:    g.term,
		role:    roleName(g.role),
		applied: g.st.Applied,
		self:    g.st.Members[g.n.self.Sign] != nil,
		queued:  len(g.outbox),
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
	for k, p := range g.pl.peers {
		if x, ok := p.est.Value(); ok {
			v.rtt[k] = x
		}
		v.online[k] = time.Since(p.lastPong) < 3*g.n.cfg.PingInterval
	}
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
	for k, m := range g.st.Members {
		v.members[k] = viewMember{id: m.ID, raftID: m.RaftID, url: m.URL, voter: m.Voter, name: m.Name, order: m.Order}
		v.byRaft[m.RaftID] = k
	}
	for k := range g.st.Invites {
		v.invites[k] = true
	}
	if me := g.st.Members[g.n.self.Sign]; me != nil && !me.Voter && v.role == "follower" {
		v.role = "learner"
	}
	if g.left {
		v.role = "left"
	}
	g.view.Store(v)
	next := make(chan struct{})
	if old := g.changed.Swap(&next); old != nil {
		close(*old)
	}
}

// waitView waits until cond holds for the group's published view, waking at
// each change of it rather than polling.
func (g *group) waitView(ctx context.Context, cond func(v *view) bool) error {
	for {
		// Take the channel before the view: a change between the two
		// closes the channel taken, so it is never missed.
		ch := g.changed.Load()
		if cond(g.view.Load()) {
			return nil
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-g.donec:
			return fmt.Errorf("group %s: %w", g.id, ErrStopped)
		}
	}
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

// enqueue seals a new message and proposes it. It returns the queued
// message, a channel closed once the message is on disk (in the outbox or
// committed: its sender may be acknowledged then) and one closed once it is
// committed. Its outbox write rides with the group's next write to disk,
// which in a working group is the one that stores the message's own log
// entry: a message committed before its sender needs an acknowledgement
// costs no write of its own. makeDurable writes it at once.
func (g *group) enqueue(text string) (m Message, durable, done chan struct{}, err error) {
	if g.left || g.st.Members[g.n.self.Sign] == nil {
		return Message{}, nil, nil, fmt.Errorf("this node is not (yet) a member of group %s: %w", g.id, ErrInvalid)
	}
	p := &pending{id: crypto.NewMessageID(), text: text, sentAt: time.Now().UTC(), durable: make(chan struct{})}
	if err := g.seal(p); err != nil {
		return Message{}, nil, nil, err
	}
	g.outbox[p.id] = p
	g.outboxPut = append(g.outboxPut, p)
	done = make(chan struct{})
	p.waiters = append(p.waiters, done)
	g.propose(p)
	g.publish()
	return g.pendingMessage(p), p.durable, done, nil
}

func (g *group) pendingMessage(p *pending) Message {
	return Message{
		ID: hex.EncodeToString(p.id[:]), Author: g.n.selfID, Name: g.n.cfg.Name,
		Text: p.text, SentAt: p.sentAt, State: StateQueued, GroupID: g.id.String(),
	}
}

// seal (re)builds a pending message's signed envelope for the current
// members: under this node's sender key of the current epoch, with the key
// header until the group has registered that key (so that messages sent
// before the first one commits never wait for it).
func (g *group) seal(p *pending) error {
	m := &crypto.Message{Group: g.id, ID: p.id, Head: g.st.Chain.Head, Time: p.sentAt.UnixNano(), Body: []byte(p.text)}
	key := g.senderKey()
	var header []identity.PublicID
	if _, ok := g.st.KeyRegistered(g.n.self.Sign, key.ID); !ok {
		header = g.st.Recipients()
	}
	sealed, err := crypto.SealMessage(g.n.id, m, key, header)
	if err != nil {
		return fmt.Errorf("seal message: %w", err)
	}
	body, err := state.Encode(&state.ChatBody{ID: p.id[:], Sealed: sealed})
	if err != nil {
		return err
	}
	env := &crypto.Envelope{Type: crypto.TypeChat, Group: g.id, Payload: body}
	frame, err := g.n.sign(env)
	if err != nil {
		return err
	}
	// Signed here: no need to check the signature when it is applied.
	g.n.verified.add(frame, env)
	p.frame = frame
	return nil
}

// senderKey returns this node's sender key for the current epoch: the one it
// seals with already, or one of its keys the group registered in this epoch
// (after a restart, recovered from the log), or else a new one.
func (g *group) senderKey() *crypto.SenderKey {
	if k := g.myKey; k != nil && k.Epoch == g.st.Epoch {
		return k
	}
	self := g.n.self.Sign
	for _, k := range g.ownKeys {
		if _, ok := g.st.KeyRegistered(self, k.ID); ok && k.Epoch == g.st.Epoch {
			g.myKey = k
			return k
		}
	}
	k := crypto.NewSenderKey(g.id, self, g.st.Epoch)
	g.ownKeys[k.ID] = k
	g.myKey = k
	return k
}

// maybeRestoreOutbox restores the queued messages read from the store at
// start once the log is replayed up to the commit index of that time, when
// every sender key of this node that they may be sealed under is known
// again. Those the replay shows committed are dropped. It reports whether
// it restored the outbox now.
func (g *group) maybeRestoreOutbox() bool {
	if g.restored == nil || g.st.Applied < g.replayTo {
		return false
	}
	for _, frame := range g.restored {
		p := g.pendingFromFrame(frame)
		if p == nil {
			continue
		}
		if _, done := g.st.MsgIDs[p.id]; done {
			g.outboxDone = append(g.outboxDone, append([]byte(nil), p.id[:]...))
			continue
		}
		g.outbox[p.id] = p
	}
	g.restored = nil
	return true
}

// pendingFromFrame rebuilds a queued message after a restart by opening our
// own sealed copy: the outbox on disk holds no plaintext. The message's
// sender key is in its own key header, or in one that the log replay opened.
func (g *group) pendingFromFrame(frame []byte) *pending {
	self := g.n.self.Sign
	env, err := crypto.Verify(frame)
	if err != nil || env.Sender != self || env.Type != crypto.TypeChat {
		return nil
	}
	var b state.ChatBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.ID) != 16 {
		return nil
	}
	info, err := crypto.ReadSealed(b.Sealed)
	if err != nil {
		g.n.log.Warn().Err(err).Msg("cannot read a queued message of ours")
		return nil
	}
	key := g.ownKeys[info.KeyID]
	if key == nil || key.Epoch != info.Epoch {
		if key, err = crypto.OpenSenderKey(g.n.id, g.id, b.Sealed, self); err != nil {
			g.n.log.Warn().Err(err).Msg("cannot recover the sender key of a queued message of ours")
			return nil
		}
		g.ownKeys[key.ID] = key
	}
	o, err := crypto.OpenMessage(key, g.id, b.Sealed, self, [16]byte(b.ID))
	if err != nil {
		g.n.log.Warn().Err(err).Msg("cannot open a queued message of ours")
		return nil
	}
	return &pending{id: o.ID, text: string(o.Body), sentAt: time.Unix(0, o.Time).UTC(), frame: frame, stored: true}
}

// propose proposes a queued message. A proposal raft did not take (no
// leader, a leadership transfer) is retried from the outbox by retryOutbox;
// ids make the retries idempotent.
func (g *group) propose(p *pending) {
	p.proposed = time.Now()
	p.leader = g.leader
	_ = g.rn.Propose(p.frame)
}

func (g *group) retryOutbox() {
	if len(g.outbox) == 0 || g.leader == raft.None {
		return
	}
	// Propose again when the leader changed since the last proposal (it may
	// have been lost with the old leader), or when it has been waiting long
	// enough that it was probably dropped. A retry of a message that did
	// commit is ignored when applied (same id).
	now := time.Now()
	for _, p := range g.sortedPending() {
		if p.leader != g.leader || now.Sub(p.proposed) >= 4*g.n.cfg.RetryInterval {
			g.propose(p)
		}
	}
}

func (g *group) resealOutbox() {
	if g.left {
		return
	}
	for _, p := range g.sortedPending() {
		env, err := crypto.Verify(p.frame)
		if err == nil {
			var b state.ChatBody
			if state.Decode(env.Payload, &b) == nil {
				// Still acceptable here (under a key of this epoch that
				// is registered or that it carries): leave it be.
				if _, err := g.st.CheckSealed(env.Sender, b.Sealed); err == nil {
					continue
				}
			}
		}
		if err := g.seal(p); err != nil {
			g.n.log.Error().Err(err).Msg("cannot re-seal a queued message")
			continue
		}
		// The new frame is written with the next transaction; until then
		// the stored one (rejected if proposed) is sealed again at restart.
		g.outboxPut = append(g.outboxPut, p)
		g.propose(p)
	}
}

func (g *group) sortedPending() []*pending {
	out := make([]*pending, 0, len(g.outbox))
	for _, p := range g.outbox {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].sentAt.Equal(out[j].sentAt) {
			return out[i].sentAt.Before(out[j].sentAt)
		}
		return bytes.Compare(out[i].id[:], out[j].id[:]) < 0
	})
	return out
}

func (g *group) messageList() []Message {
	out := make([]Message, 0, len(g.messages)+len(g.outbox))
	out = append(out, g.messages...)
	for _, p := range g.sortedPending() {
		out = append(out, g.pendingMessage(p))
	}
	return out
}

func (g *group) messageByID(id string) Message {
	if i, ok := g.msgIndex[id]; ok {
		return g.messages[i]
	}
	return Message{}
}

// proposeConf proposes a membership change authorised by an envelope we sign.
func (g *group) proposeConf(t crypto.Type, body any, ct pb.ConfChangeType, nodeID uint64) error {
	payload, err := state.Encode(body)
	if err != nil {
		return err
	}
	frame, err := g.n.sign(&crypto.Envelope{Type: t, Group: g.id, Payload: payload})
	if err != nil {
		return err
	}
	return g.proposeConfFrame(frame, ct, nodeID)
}

func (g *group) proposeConfFrame(frame []byte, ct pb.ConfChangeType, nodeID uint64) error {
	cc := &pb.ConfChangeV2{
		Changes: []*pb.ConfChangeSingle{{Type: ct.Enum(), NodeId: proto.Uint64(nodeID)}},
		Context: frame,
	}
	return g.rn.ProposeConfChange(cc)
}

// proposeEntry signs and proposes a normal entry.
func (g *group) proposeEntry(t crypto.Type, body any) error {
	payload, err := state.Encode(body)
	if err != nil {
		return err
	}
	frame, err := g.n.sign(&crypto.Envelope{Type: t, Group: g.id, Payload: payload})
	if err != nil {
		return err
	}
	return g.rn.Propose(frame)
}

func (g *group) status() GroupStatus {
	v := g.view.Load()
	gs := GroupStatus{
		GroupID: g.id.String(), Name: v.name, Term: v.term, Role: v.role,
		Committed: v.applied, Queued: v.queued, Preference: []string{}, Members: []Member{}, Edges: []Edge{},
	}
	if k, ok := v.byRaft[v.leader]; ok && v.leader != raft.None {
		gs.Host = v.members[k].id.String()
	}
	gs.HasQuorum = gs.Host != ""
	ms := make([]viewMember, 0, len(v.members))
	for _, m := range v.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].order < ms[j].order })
	self := g.n.self
	for _, m := range ms {
		mm := Member{
			PublicID: m.id.String(), Name: m.name, Fingerprint: m.id.Fingerprint(),
			Voter: m.voter, Host: m.raftID == v.leader, Self: m.id == self, PeerURL: m.url,
		}
		if m.id != self {
			mm.SafetyNum = identity.SafetyNumber(self, m.id)
		}
		mm.Online = mm.Self || v.online[m.id.Sign]
		mm.RTTMillis = v.rtt[m.id.Sign]
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
	return gs
}

// maybeUpdateAddress commits this node's new peer URL when it differs from the
// one the group knows (a restart on another address), so that the others can
// reach it again. This node can still reach them, so the proposal gets through.
func (g *group) maybeUpdateAddress() {
	me := g.st.Members[g.n.self.Sign]
	if me == nil || g.left || me.URL == g.n.cfg.URL || time.Since(g.lastAddress) < 4*g.n.cfg.RetryInterval {
		return
	}
	g.lastAddress = time.Now()
	body, err := state.Encode(&state.AddressBody{URL: g.n.cfg.URL})
	if err != nil {
		return
	}
	if g.leader != raft.None {
		if err := g.proposeEntry(crypto.TypeAddress, &state.AddressBody{URL: g.n.cfg.URL}); err != nil {
			g.n.log.Debug().Err(err).Msg("address update proposal")
		}
	}
	// Until the update is committed, the others would keep sending to the old
	// address (and this node might never hear from the leader): tell them
	// directly with a signed announcement, which they use as a hint.
	for k, m := range g.st.Members {
		if k == g.n.self.Sign || m.URL == "" {
			continue
		}
		frame, err := g.n.sign(&crypto.Envelope{Type: crypto.TypeAddress, Group: g.id, To: k, Payload: body})
		if err != nil {
			return
		}
		url := m.URL
		g.n.wg.Add(1)
		go func() {
			defer g.n.wg.Done()
			ctx, cancel := context.WithTimeout(g.n.ctx, 2*time.Second)
			defer cancel()
			_, _ = g.n.cfg.Link.Post(ctx, url, frame)
		}()
	}
}

// peerURL is where to reach a member: a signed address announcement from the
// member itself overrides the committed address until the log catches up.
func (g *group) peerURL(k [32]byte, committed string) string {
	if u, ok := g.urlHint[k]; ok {
		if u == committed {
			delete(g.urlHint, k)
		} else {
			return u
		}
	}
	return committed
}

// maybeCheckpoint signs and commits this member's view of the transcript
// chain every CheckpointEntries entries or CheckpointInterval, whichever comes
// first, so that a transcript shows who attested to which prefix: a host that
// showed members different histories would be caught by the mismatch.
func (g *group) maybeCheckpoint() {
	if g.left || g.st.Members[g.n.self.Sign] == nil || g.leader == raft.None {
		return
	}
	c := g.st.Chain
	// Count only entries that are not checkpoints: in a large group each
	// wave of checkpoints would otherwise make the next one due.
	fresh := g.entries - g.checkEntries
	if c.Index == 0 || fresh == 0 {
		return
	}
	if fresh < g.n.cfg.CheckpointEntries && time.Since(g.lastCheck) < g.n.cfg.CheckpointInterval {
		return
	}
	if err := g.proposeEntry(crypto.TypeCheckpoint, &state.CheckpointBody{Index: c.Index, Head: c.Head[:]}); err != nil {
		return
	}
	g.checkEntries, g.lastCheck = g.entries, time.Now()
}
