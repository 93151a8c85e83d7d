package node

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

// restartGroup rebuilds a group from the store. With a snapshot (see
// maybeSnapshot), the state machine is restored from it, and raft applies
// only the committed entries after it; what the node keeps about the
// messages before it is restored from the board stored with the snapshot,
// or else rebuilt from the stored log without applying it again
// (restoreHistory, boardstore.go). Without one, every committed entry is applied
// again from the first, which rebuilds the state machine (membership,
// messages) exactly as before. Only the log after the snapshot is loaded
// into memory; raft reads older entries from the store when it needs them.
func (n *Node) restartGroup(gid crypto.GroupID, info groupInfo) (*group, error) {
	g := n.newGroup(gid, info)
	// The sender keys come from the key store (keys.go), not from the
	// log's key headers.
	for _, k := range n.keys.keptKeys(gid) {
		g.keys.Add(k)
		g.hist.keys[k.Ref()] = k
	}
	hs, err := n.store.HardState(gid[:])
	if err != nil {
		return nil, err
	}
	if g.fromBackup, err = n.store.Restored(gid[:]); err != nil {
		return nil, err
	}
	if g.fromBackup {
		g.restoredSince = time.Now()
		n.log.Warn().Str("group", gid.String()).Msg("this node's copy of the group was restored from a backup: it takes part in no election until it has caught up")
	}
	first, last, err := n.store.LogBounds(gid[:])
	if err != nil {
		return nil, err
	}
	mem := raft.NewMemoryStorage()
	snap, st, ids, err := n.loadSnapshot(gid)
	switch {
	case err == nil && snap != nil:
		// The memory keeps where the snapshot is, not its data (see
		// maybeSnapshot).
		if err := mem.ApplySnapshot(&pb.Snapshot{Metadata: snap.GetMetadata()}); err != nil {
			return nil, fmt.Errorf("apply the snapshot at %d: %w", snap.GetMetadata().GetIndex(), err)
		}
		g.st, g.ids, g.confState = st, ids, snap.GetMetadata().GetConfState()
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
		g.noteConfTail(ents)
		g.noteConfHold(ents)
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
	g.storedCommit = hs.GetCommit()
	if g.storage, err = newLogStore(mem, n.store, gid[:]); err != nil {
		return nil, err
	}
	// raft reports the term in a Ready only when it changes, and pings carry
	// it (attest.go): start from the stored one.
	g.term = hs.GetTerm()
	if snap != nil {
		start := time.Now()
		g.afterConf(state.Result{})
		if err := g.restoreHistory(first, g.restoredFrom); err != nil {
			return nil, err
		}
		n.log.Info().Str("group", gid.String()).Uint64("index", g.restoredFrom).Uint64("commit", hs.GetCommit()).
			Int("messages", len(g.hist.msgs)).Bool("stored_board", g.blog.restored).Int("opened", g.blog.opened).Dur("took", time.Since(start)).
			Msg("restored the group's state from its snapshot; applying the log after it")
	}
	// Until the log is applied up to the commit index on disk, the state
	// is behind this node's own disk (view.replayed).
	g.replayTo = hs.GetCommit()
	g.publish()
	outbox, err := n.store.Outbox(gid[:])
	if err != nil {
		return nil, err
	}
	if g.rn, err = raft.NewRawNode(n.raftConfig(g.raftID, g.storage, g.restoredFrom)); err != nil {
		return nil, err
	}
	// A queued message may be sealed under a sender key that only the
	// log's key headers hold: restore the outbox once the log is replayed.
	// After the raft node exists: sealing a message again proposes it.
	g.restored, g.replayTo = outbox, hs.GetCommit()
	if g.maybeRestoreOutbox() && snap != nil {
		// Restored from a snapshot at the commit index: nothing is to be
		// applied before the outbox can be checked against the state, as
		// handleReady does after the replay.
		g.resealOutbox()
	}
	g.run0()
	return g, nil
}

// loadSnapshot loads a group's stored snapshot, if any, and restores the
// state machine from it, with the group's stored message ids. On an error,
// snap is the snapshot if it could be read at all.
func (n *Node) loadSnapshot(gid crypto.GroupID) (snap *pb.Snapshot, st *state.State, ids *store.IDRuns, err error) {
	snap, err = n.store.LoadSnapshot(gid[:])
	if err != nil || snap == nil {
		return nil, nil, nil, err
	}
	if st, ids, err = n.restoreSnapshot(gid, snap); err != nil {
		return snap, nil, nil, fmt.Errorf("restore the state at %d from the snapshot: %w", snap.GetMetadata().GetIndex(), err)
	}
	return snap, st, ids, nil
}

// restoreSnapshot restores the state machine from snap and the message ids
// stored with the snapshots, and checks that it is the state at snap's
// index. A store written before the ids were kept in runs holds them in
// chunks (store.IDChunks) beside a snapshot of an older version: the state
// then holds them all in memory, until its next snapshot stores them as a
// run.
func (n *Node) restoreSnapshot(gid crypto.GroupID, snap *pb.Snapshot) (*state.State, *store.IDRuns, error) {
	chunks, err := n.store.IDChunks(gid[:])
	if err != nil {
		return nil, nil, err
	}
	if len(chunks) == 0 {
		ids, err := n.store.IDRuns(gid[:])
		if err != nil {
			return nil, nil, err
		}
		st, err := state.RestoreStored(gid, snap.GetData(), ids)
		if !errors.Is(err, state.ErrSnapshotVersion) {
			return st, ids, atIndex(snap, st, err)
		}
	}
	st, err := state.RestoreWithIDs(gid, snap.GetData(), chunks)
	if err != nil {
		return nil, nil, err
	}
	ids := n.store.IDRunsToReplace(gid[:])
	st.KeepIDsIn(ids)
	return st, ids, atIndex(snap, st, nil)
}

// The store keeps the records state.FreshIDs gives as they are: a build
// where the two sizes differ does not compile.
const _ = uint(state.IDRecordSize-store.IDRecordSize) + uint(store.IDRecordSize-state.IDRecordSize)

// atIndex returns err, the error of restoring st from snap, or if there
// is none, an error when st is not the state at snap's index.
func atIndex(snap *pb.Snapshot, st *state.State, err error) error {
	if err == nil && st.Applied != snap.GetMetadata().GetIndex() {
		err = fmt.Errorf("%w: it holds the state at %d", state.ErrBadSnapshot, st.Applied)
	}
	return err
}

// rebuildHistory rebuilds, for a state restored from the snapshot at upto,
// what this node derived from the chat messages up to there and the state
// machine does not keep, when no usable board was stored with the snapshot
// (restoreHistory): the messages it lists, and the sender keys it
// opened (its own ones, which a queued message may be sealed under, the
// others' keys of the current epoch, which later messages without a key
// header are sealed under, and every key of a message it can read, which
// opens the message again when a page asks for it). It reads the stored log
// from first and learns the key of each message that the state accepted at
// its index, without applying anything again; it opens only the newest
// messages, those of the window of messages in memory (history.go),
// exactly as afterEntry did when they were applied.
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
	// The newest messages this node can read, to open once the log is
	// read; trimmed as history trims its window.
	type chatAt struct {
		c      *state.Chat
		author *state.Member
	}
	var recent []chatAt
	window := g.hist.window
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
			author := g.st.MemberOrFormer(c.Sender)
			// afterEntry opens only while this node is a member; here
			// every message is tried, but one from a time this node was
			// not a member is sealed under a key it was never given,
			// which is passed over silently, as afterEntry does.
			key, err := g.chatKey(c)
			switch {
			case err == nil:
				g.hist.keys[key.Ref()] = key
				if g.hist.first == 0 {
					g.hist.first = c.Index
				}
				// Each message is opened, to build the board again: a
				// change (changes.go) changes messages of any age, and
				// is not listed itself.
				var by string
				if author != nil {
					by = g.idText(author.ID)
				}
				g.blog.opened++
				if g.openChange(c, key, by) {
					continue
				}
				recent = append(recent, chatAt{c, author})
				if len(recent) >= 2*window {
					recent = append([]chatAt(nil), recent[len(recent)-window:]...)
				}
			case !errors.Is(err, crypto.ErrNotRecipient) && !errors.Is(err, crypto.ErrKeyDeleted):
				g.deliver(c, author) // which logs and counts why
			}
		}
		lo += uint64(len(ents))
	}
	for _, r := range recent[max(0, len(recent)-window):] {
		g.blog.opened++
		g.deliver(r.c, r.author)
	}
	return nil // restoreHistory forgets the past epochs' keys again
}

// maybeSnapshot takes a snapshot every SnapshotEntries applied entries, or
// sooner once SnapshotBytes of entry data were applied since the last: the
// state machine's state and raft's configuration at the applied index,
// stored (fsync) as the group's stored applied index, from which a restart
// restores the state instead of applying the whole log again. Then it drops
// from memory the log before the last SnapshotKeep entries; the store keeps
// the whole log, which raft reads back when a lagging member needs it.
// Between these, snapshotForWork takes one once applying took 50 times
// what the last snapshot took, at most every half second.
//
// A failure is logged and changes nothing else: the log is intact, and a
// restart applies more of it again.
func (g *group) maybeSnapshot() {
	applied := g.st.Applied
	if applied < g.snapIndex+g.n.cfg.SnapshotEntries && g.snapBytes < g.n.cfg.SnapshotBytes {
		g.snapshotForWork(time.Now())
		return
	}
	g.snapshot()
}

// snapshotForWork takes a snapshot once the group spent, applying entries
// since the last one, snapshotCostShare times what that one took, and the
// last is at least snapshotEvery old, so that a crash, while the group is
// busy too, applies (verifies, opens) again at most about that much work at
// its restart, instead of up to SnapshotEntries entries (issue 16: "a
// stored applied index, so a restart applies and opens nothing it already
// did"), and snapshots cost a group at most about a fiftieth of what
// applying costs it. A snapshot encodes the state but the message ids,
// which grows with the members (milliseconds at 100 members), stores the
// board (boardstore.go), which grows with the reactions and edits, and is
// two or three fsynced writes. Taken every half second whatever they cost,
// they made a member of a group of 100 that receives a few messages a
// second spend 60% more CPU a message (`demes bench scale`, 100 members in
// one process), and with a twentieth about 15%; with a fiftieth, within
// the scatter. With 3 members under load it is about one every half
// second.
//
// A busy group also takes one once the last is snapshotMaxAge old: one
// slow snapshot (a write that waited on a busy disk: 57 ms where the
// others took 3 to 35, in a run of TestCrashWhileBusyAppliesLittleAgain)
// would otherwise put the next off by fifty times that much work, minutes
// of a group's applying.
func (g *group) snapshotForWork(now time.Time) {
	if g.fork != nil || g.st.Applied <= g.snapIndex || !snapshotForWorkDue(g.snapWork, g.snapTook, now.Sub(g.snapAt)) {
		return
	}
	g.snapshot()
}

// snapshotForWorkDue reports whether a group that applied entries since its
// last snapshot, which took took and is age old, takes one now, having
// spent work applying since (snapshotForWork).
func snapshotForWorkDue(work, took, age time.Duration) bool {
	return age >= snapshotEvery && (work >= snapshotCostShare*took || age >= snapshotMaxAge)
}

const (
	// snapshotEvery is the least time between two snapshots taken for
	// the work since the last one (snapshotForWork): each is at least two
	// fsyncs, whatever it costs the group's goroutine.
	snapshotEvery = 500 * time.Millisecond
	// snapshotCostShare: a snapshot for work is taken once applying
	// entries took this many times what the last snapshot took.
	snapshotCostShare = 50
	// snapshotMaxAge: a busy group takes a snapshot for work at least
	// this often, whatever the last one took: a crash then applies again
	// at most this long's entries.
	snapshotMaxAge = 30 * time.Second
)

// snapshotWhenIdle takes a snapshot once the group has applied nothing for
// snapshotIdleAfter, when it applied anything since the last one, at most
// once per snapshotIdleEvery, so that a crash while it stands idle (most
// groups, most of the time) finds nothing to apply again: snapshotForWork
// leaves the last few entries of a quiet spell to it.
func (g *group) snapshotWhenIdle(now time.Time) {
	if g.fork != nil || g.st.Applied <= g.snapIndex || now.Sub(g.appliedAt) < snapshotIdleAfter ||
		!g.idleSnap.IsZero() && now.Sub(g.idleSnap) < snapshotIdleEvery {
		return
	}
	g.idleSnap = now
	g.snapshot()
}

const (
	// snapshotIdleAfter is how long a group applies nothing before it
	// takes a snapshot for idleness.
	snapshotIdleAfter = 5 * time.Second
	// snapshotIdleEvery bounds how often it does.
	snapshotIdleEvery = time.Minute
)

// snapshotAtStop takes a snapshot as the node closes, when anything was
// applied since the last one, so that the next start applies nothing it
// applied already (issue 16: a restart opened up to SnapshotEntries
// entries again, verifying and decrypting each). A crash has no such
// chance: its restart applies what follows the last snapshot, which
// snapshotForWork keeps to about 50 times what a snapshot takes. A halted
// group keeps the state it halted with on disk as it was.
func (g *group) snapshotAtStop() {
	if g.fork == nil {
		g.snapshot()
	}
}

// snapshot takes the snapshot at the applied index (maybeSnapshot), unless
// nothing was applied since the last one or raft's configuration is not
// known yet.
func (g *group) snapshot() {
	applied := g.st.Applied
	if g.confState == nil || applied <= g.snapIndex {
		return
	}
	start := time.Now()
	defer func() { g.snapAt = time.Now(); g.snapTook, g.snapWork = g.snapAt.Sub(start), 0 }()
	log := g.n.log.With().Str("group", g.id.String()).Uint64("index", applied).Logger()
	// The ids are stored apart, those accepted since the last snapshot
	// beside it (state/snapshot_ids.go): a snapshot of them all cost
	// 155 ms at 1,000,000 messages.
	data, err := g.st.SnapshotWithoutIDs()
	if err != nil {
		log.Error().Err(err).Msg("cannot take a snapshot")
		return
	}
	// The memory records where the snapshot is (raft reads its index,
	// term and configuration) but not its data, which only a restart
	// reads, from the store: raft would read it only to send it to a
	// member, which DeMeS never does (see logStore.Snapshot).
	snap, err := g.storage.mem.CreateSnapshot(applied, g.confState, nil)
	if err != nil {
		log.Error().Err(err).Msg("cannot take a snapshot")
		return
	}
	ids, replace := g.st.FreshIDs()
	if err := g.ids.SaveSnapshot(&pb.Snapshot{Metadata: snap.GetMetadata(), Data: data}, ids, replace); err != nil {
		log.Error().Err(err).Msg("cannot store a snapshot")
		return
	}
	g.st.DropFreshIDs()
	g.snapIndex, g.snapBytes = applied, 0
	g.saveBoard(applied) // boardstore.go
	if applied > g.n.cfg.SnapshotKeep {
		if err := g.storage.compact(applied - g.n.cfg.SnapshotKeep); err != nil {
			log.Error().Err(err).Msg("cannot compact the log in memory")
		}
	}
	log.Debug().Int("bytes", len(data)).Dur("took", time.Since(start)).Dur("applying_since_the_last", g.snapWork).Msg("snapshot taken")
}

// installSnapshot installs a snapshot that raft received from the host
// (rd.Snapshot): the state machine is restored from it and the stored log
// replaced by it. DeMeS never sends one (a host's log is never compacted,
// and the transport refuses snapshot messages), so this only keeps the
// node consistent should one ever come: the messages between what this
// node had applied and the snapshot are then missing here.
func (g *group) installSnapshot(snap *pb.Snapshot) error {
	md := snap.GetMetadata()
	// A snapshot that travels holds its message ids (state.Restore reads
	// no other version); the ids stored here are dropped with the log,
	// and the next snapshot stores all of them again.
	st, err := state.Restore(g.id, snap.GetData())
	if err := atIndex(snap, st, err); err != nil {
		return fmt.Errorf("install the snapshot at %d from the host: %w", md.GetIndex(), err)
	}
	if err := g.n.store.InstallSnapshot(g.id[:], snap); err != nil {
		return err
	}
	g.ids = g.n.store.IDRunsToReplace(g.id[:])
	st.KeepIDsIn(g.ids)
	if err := g.storage.install(snap); err != nil {
		return fmt.Errorf("install the snapshot at %d from the host: %w", md.GetIndex(), err)
	}
	g.n.log.Warn().Str("group", g.id.String()).Uint64("index", md.GetIndex()).Uint64("applied", g.st.Applied).
		Msg("installed a snapshot from the host: the history before it is not available on this node")
	g.st, g.confState, g.snapIndex = st, md.GetConfState(), md.GetIndex()
	g.afterConf(state.Result{})
	return nil
}
