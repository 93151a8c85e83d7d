package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/election"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

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
	// closed are the members over quota whose large frames the peer
	// handler refuses unread, published by run (quota.go).
	closed atomic.Pointer[map[[32]byte]bool]
	// statement is this node's latest signed statement of its chain head,
	// published by run for pings and pongs; headc carries members'
	// statements to run; halted is set once run found a fork (fork.go).
	statement atomic.Pointer[ownStatement]
	headc     chan headClaim
	halted    atomic.Bool
	// silentView is the host (raft view) this node no longer hears, for
	// its pings and pongs, published by run; nil while it hears it
	// (cutoff.go).
	silentView atomic.Pointer[raftView]
	// silentLog is this node's last stored log entry while silentView is
	// set, for the same pings and pongs (cutoff.go).
	silentLog atomic.Pointer[election.LogPos]
	// failed is why run stopped on its own: a write to disk failed.
	failed atomic.Pointer[error]
	// suspecting is this node's own suspicion of censorship, suspected the
	// members reporting one, published by run; suspPending holds each
	// member's latest report for run, which suspWake wakes (censor.go).
	suspecting  atomic.Pointer[raftView] // the host this node suspects, nil for none
	suspected   atomic.Pointer[map[[32]byte]bool]
	suspMu      sync.Mutex
	suspPending map[[32]byte]suspicionReport
	suspWake    chan struct{}
	// pastSuspecting is the host of an ended view this node suspected
	// (nil for none), heardPast the members' latest past suspicions, both
	// published by run (censor_past.go).
	pastSuspecting atomic.Pointer[raftView]
	heardPast      atomic.Pointer[map[[32]byte]raftView]

	// fig are the group's running counts (figures.go).
	fig *groupFigures

	// ---- owned by run ----
	// turn times the goroutine's turns (turns.go).
	turn           turnWatch
	st             *state.State
	ids            *store.IDRuns // where st keeps its older message ids (state.KeepIDsIn)
	info           groupInfo
	provisional    map[[32]byte]viewMember
	provUntil      uint64                 // the index the provisional members of a catch-up hold until (catchup.go)
	removedPeers   map[uint64]removedPeer // members this host removed and keeps telling so (apply.go)
	bootstrap      bool                   // created here: campaign once the bootstrap entry applied
	campaigned     bool
	outbox         map[[16]byte]*pending
	reissued       map[[16]byte][16]byte // ids of queued messages another member's took, to the new ones (idtaken.go)
	hist           history               // the messages this node read (history.go)
	board          content.Board         // the changes to them: reactions, edits, deletes (changes.go), as far as learnt (boardnotes.go)
	learnt         map[[16]byte]struct{} // the messages whose notes board holds in full (boardnotes.go)
	blog           boardLog              // what the board and the files were built from, to store (boardstore.go)
	leader         uint64
	leaderCommit   uint64 // the highest commit index the leader's appends named (maybePublishPrekey)
	leaderCommitBy uint64 // the raft id whose appends named leaderCommit
	term           uint64
	role           raft.StateType
	left           bool
	pl             placementState
	timing         Timing                       // raft's timing now (timing.go)
	ticker         *time.Ticker                 // raft's ticks, at timing.Tick
	pr             probe                        // the probe of a silent host (gone.go)
	silent         map[[32]byte]silentReport    // members' reports that they no longer hear the host (cutoff.go)
	lastSilentPing time.Time                    // when this node last pinged the voters about a silent host
	lastHost       raftView                     // the other member this node last followed, and in which term (cutoff.go)
	lastTick       time.Time                    // the last raft tick, and until when this node's own lateness
	lateUntil      time.Time                    // keeps it from counting its host silent (cutoff.go)
	fv             forcedVote                   // the last transfer campaign asked of this node (gone.go)
	hostQuota      hostQuota                    // chat entries taken as host, not applied yet (quota.go)
	ch             confHold                     // proposals held while a membership change is unapplied (confhold.go)
	outboxDone     [][]byte                     // committed ids to drop from the stored outbox
	outboxPut      []*pending                   // queued messages to write to the stored outbox
	unsavedHS      *pb.HardState                // a newer hard state that differs only in its commit index, not written yet
	storedCommit   uint64                       // the commit index of the hard state on disk
	commitCap      uint64                       // tests only (LagCommitWrites): the commit index persist writes at most
	wrote          bool                         // something was written since the last retry tick
	publishDue     bool                         // sends changed the outbox since the last publish (enqueue)
	idTexts        map[identity.PublicID]string // see idText
	names          namesakes                    // the members whose names look alike, as of namesEpoch (names.go)
	namesEpoch     uint64
	namesOK        bool
	lastAddress    time.Time
	lastAddrURL    string // the URL proposed and announced at lastAddress
	lastCheck      time.Time
	entries        uint64 // applied entries other than checkpoints
	checkEntries   uint64 // the value of entries at this node's last checkpoint
	urlHint        map[[32]byte]string
	rttc           chan rttSample

	// Tentative delivery (tentative.go): the Lamport clock of this node's
	// messages; since when the group has known no host (zero while it
	// knows one); when it last applied an entry; other members' tentative
	// messages held here, how many per author; and the members a request
	// with this node's tentative messages is on its way to.
	lamport       uint64
	noLeaderSince time.Time
	// lostLogAt is when this node, hosting, last handed over for a member
	// that lost log entries (lostlog.go).
	lostLogAt    time.Time
	lostLogBy    map[[32]byte]time.Time // and for each member, when last
	progressAt   time.Time
	tent         map[[16]byte]*heldMessage
	tentBy       map[[32]byte]int
	tentBusy     map[[32]byte]bool
	relayBusy    bool                   // a request of relayOrphans is on its way
	tentGone     map[[32]byte]time.Time // members that did not answer tentative messages, and when
	tentSeen     map[[32]byte]time.Time // members that took tentative messages, and when
	tentRestored bool                   // the stored tentative messages are held again
	tentPut      map[string][]byte      // tentative messages to store, by id (saveTentative)
	tentDrop     [][]byte               // stored tentative messages to forget
	tentResync   bool                   // tentDrop overflowed: forget every stored one not held (forgetStored)
	tentStore    tentativeStore         // where they are stored: the node's store
	tentFailing  bool                   // the last write of tentative messages failed (logged once)

	// invq holds the invites queued while the group could not commit
	// (invitequeue.go).
	invq inviteQueue

	// Sender keys (see crypto.SenderKey and docs/PROTOCOL.md): kept in the
	// node's encrypted key store (keys.go), never in the log, which holds
	// only their headers.
	keys      *crypto.KeyRing                   // this node's own keys, and every member's of the current epoch
	keysEpoch uint64                            // the epoch keys were last trimmed to
	keyUse    map[[crypto.KeyIDSize]byte]keyUse // own sender keys' use, for rotation (sealingKey)
	// fallback are this node's keys whose header went to the members'
	// identity keys, not their prekeys (keys_group.go); lastPrekey is when
	// it last proposed its prekey; keysGen the key store's deletions seen.
	fallback   map[[crypto.KeyIDSize]byte]bool
	lastHeader sealedHeader // the key header sealed last (keyHeader)
	links      sendLinks    // links to the members' prekeys (keylinks.go)
	lastPrekey time.Time
	// prekeyTried and prekeyTerm are the prekey last proposed and the
	// term it was proposed in (maybePublishPrekey).
	prekeyTried []byte
	prekeyTerm  uint64
	keysGen     uint64
	// lostEpoch is the epoch in which this node found it had lost its
	// prekey's secret (0: it has not); lastRekey when it last asked for new
	// keys for that reason (maybeRecoverKeys).
	lostEpoch uint64
	lastRekey time.Time
	keysAlert *api.KeysAlert        // what status shows of it
	restored  map[string][]byte     // outbox frames to restore once the log is replayed
	replayTo  uint64                // the commit index at start: the end of the replay
	attests   map[[32]byte]raftView // the map attested points to
	lastPull  time.Time             // the last time pullAttestations pinged the voters

	// prekeysApplied counts the prekey entries applied, and gaps caches
	// the members without a valid prekey (keys_group.go, prekeyGaps).
	prekeysApplied uint64
	gaps           prekeyGapCache

	// ownPrekeys are the ids of the prekeys the log named as this node's,
	// with their expiry (keys_group.go, namedOwnPrekey).
	ownPrekeys map[[prekey.IDSize]byte]time.Time

	// Snapshots (see maybeSnapshot).
	confState *pb.ConfState // raft's configuration after the last applied entry
	snapIndex uint64        // the index of the latest stored snapshot
	snapBytes int           // the entry data applied since (maybeSnapshot)
	snapAt    time.Time     // when it took the latest (snapshotForWork)
	snapTook  time.Duration // how long that one took (snapshotForWork)
	snapWork  time.Duration // the time spent applying entries since (snapshotForWork)
	appliedAt time.Time     // when this node last applied an entry
	idleSnap  time.Time     // when it last took a snapshot for idleness (snapshotWhenIdle)
	// restoredFrom is the index of the snapshot this run of the group
	// started from (0: it applied the log from the start), and appliedHere
	// counts the entries it applied since: what tests look at to tell that
	// a restart applied only the entries after the snapshot.
	restoredFrom uint64
	appliedHere  uint64
	// pre is the work done ahead on the committed entries being applied,
	// if any (precheck.go); prechecked counts the messages delivered
	// meanwhile, and ownAhead this node's own messages handed to its
	// workers to open (for tests).
	pre        *precheck
	changes    changeWaits // the changes commitUntil proposes (censor.go)
	resealDue  bool        // an entry of this node's was rejected in the batch being applied: reseal after it
	prechecked uint64
	ownAhead   uint64

	// Forks (fork.go): the proof, once found (the group is then halted),
	// and the members' statements this node has not applied far enough
	// to check yet.
	fork         *forkProof
	pendingHeads map[[32]byte]headClaim
	// heard are the members' latest statements that matched this node's
	// history, for transcripts; heardDirty and heardSaved pace their
	// writes to the store.
	heard      map[[32]byte]headClaim
	heardDirty bool
	heardSaved time.Time

	// Receipts (receipts.go): how far this node's person has read the
	// group (readMu orders its writes to the store), and the members'
	// read marks from their pings. Safe from any goroutine.
	readMark atomic.Uint64
	readMu   sync.Mutex
	reads    readMarks
	// sharedFrom is this node's mark when its person last turned read
	// receipts on: what was read while they were off is not sent.
	sharedFrom atomic.Uint64

	// Censorship (censor.go): this node's own watch, the members'
	// reports by member (the host and term each suspects), and the host
	// the voters deposed, if any.
	cw         censorWatch
	suspicions map[[32]byte]raftView
	suspAt     map[[32]byte]time.Time // when each suspicion was last reported
	deposed    raftView
	// lapsing is since when fewer than a majority of the voters suspect
	// the deposed host (zero while a majority does): see lapseDeposed.
	lapsing time.Time
	// shunned are the hosts this node saw deposed, by raft id, and when:
	// placement does not hand leadership back to them for shunFor.
	shunned map[uint64]time.Time
	// pastSuspect is the host this node suspected when it left that
	// host's view with the suspicion standing, and since when; past the
	// members' reports of theirs (censor_past.go).
	pastSuspect   raftView
	pastSuspectAt time.Time
	past          map[[32]byte]pastReport
	// selfDeposed is when this node, hosting, last saw a majority of the
	// voters suspect it: it does not force its way back for shunFor
	// (cutoff.go).
	selfDeposed time.Time
	// fromBackup is set while this node's copy of the group, put back
	// from a backup, has not caught up, and restoredTarget is the commit
	// index it must reach (restored.go).
	fromBackup       bool
	restoredTarget   uint64
	restoredHost     uint64    // the latest host that sent an append or heartbeat since the restore
	restoredHostTerm uint64    // its term
	restoredAsHost   bool      // restoredTarget was set while this node led
	restoredSince    time.Time // when this node started the group, restored
	// restoredStranger is the first member this node does not know that
	// sent the group's traffic while its restored copy led alone
	// (noteRestoredStranger); safe from any goroutine.
	restoredStranger atomic.Pointer[[32]byte]
	// confTail is the index of the last membership change appended to
	// this node's log, applied or not (pairOf).
	confTail uint64
	// pairSaid is the raft id of the member whose latest ping or pong
	// said that the two are the group's only voters (pingPair), or 0;
	// safe from any goroutine (onlyOtherVoter).
	pairSaid atomic.Uint64
	// beyondLogHost is the last host whose heartbeat committed beyond
	// this node's log, which the transport refuses before raft sees it
	// (admit.go); safe from any goroutine.
	beyondLogHost atomic.Uint64
	// sendFilter, in tests only (TrimAppendsAfterChange), returns what
	// sendRaft sends of each message, if anything.
	sendFilter func(*pb.Message) *pb.Message
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

// newState is a group's new state machine, which keeps the message ids it
// accepts in ids, the group's store of them, from its first snapshot on
// (state.KeepIDsIn).
func newState(gid crypto.GroupID, ids *store.IDRuns) *state.State {
	st := state.New(gid)
	st.KeepIDsIn(ids)
	return st
}

func (n *Node) newGroup(gid crypto.GroupID, info groupInfo) *group {
	g := &group{
		n:            n,
		id:           gid,
		raftID:       state.RaftID(n.self.Sign),
		reqc:         make(chan func()),
		stopc:        make(chan struct{}),
		donec:        make(chan struct{}),
		ids:          n.store.IDRunsToReplace(gid[:]),
		lastPrekey:   time.Now(), // a restart waits as a proposal would have (maybePublishPrekey)
		info:         info,
		timing:       n.cfg.Timing,
		provisional:  map[[32]byte]viewMember{},
		outbox:       map[[16]byte]*pending{},
		hist:         newHistory(n.cfg.MessageWindow),
		keys:         crypto.NewKeyRing(n.id, gid),
		stepc:        make(chan []*pb.Message, 64),
		unreachc:     make(chan uint64, 64),
		rttc:         make(chan rttSample, 64),
		attc:         make(chan attestation, 64),
		headc:        make(chan headClaim, 64),
		pendingHeads: map[[32]byte]headClaim{},
		heard:        map[[32]byte]headClaim{},
		suspicions:   map[[32]byte]raftView{},
		suspWake:     make(chan struct{}, 1),
		pullc:        make(chan struct{}, 1),
		attests:      map[[32]byte]raftView{},
		urlHint:      map[[32]byte]string{},
		tent:         map[[16]byte]*heldMessage{},
		tentBy:       map[[32]byte]int{},
		tentBusy:     map[[32]byte]bool{},
		tentGone:     map[[32]byte]time.Time{},
		tentSeen:     map[[32]byte]time.Time{},
		tentPut:      map[string][]byte{},
		tentStore:    n.store,
		keyUse:       map[[crypto.KeyIDSize]byte]keyUse{},
		fallback:     map[[crypto.KeyIDSize]byte]bool{},
		ownPrekeys:   map[[prekey.IDSize]byte]time.Time{},
		fig:          newGroupFigures(),
		pl:           placementState{peers: map[[32]byte]*peerLatency{}, started: time.Now()},
	}
	g.st = newState(gid, g.ids)
	g.keys.UsePrekeys(n.keys)
	for _, p := range info.Provisional {
		id, err := identity.ParsePublicID(p.PublicID)
		if err != nil {
			continue
		}
		g.provisional[id.Sign] = viewMember{id: id, raftID: state.RaftID(id.Sign), url: ownURL(id.Sign, p.URL), voter: p.Voter}
	}
	now := time.Now()
	g.noLeaderSince, g.progressAt = now, now
	g.loadFork()
	g.loadHeard()
	g.loadReadMark()
	g.publish()
	return g
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

// signEntry encodes body and signs it as a log entry of type t of this group.
func (g *group) signEntry(t crypto.Type, body any) ([]byte, error) {
	payload, err := state.Encode(body)
	if err != nil {
		return nil, err
	}
	return g.n.sign(&crypto.Envelope{Type: t, Group: g.id, Payload: payload})
}

// proposeConf proposes a membership change authorised by an envelope we sign.
func (g *group) proposeConf(t crypto.Type, body any, ct pb.ConfChangeType, nodeID uint64) error {
	frame, err := g.signEntry(t, body)
	if err != nil {
		return err
	}
	return g.proposeConfFrame(frame, ct, nodeID)
}

func (g *group) proposeConfFrame(frame []byte, ct pb.ConfChangeType, nodeID uint64) error {
	if g.fork != nil {
		return g.errHalted("propose")
	}
	cc := &pb.ConfChangeV2{
		Changes: []*pb.ConfChangeSingle{{Type: ct.Enum(), NodeId: proto.Uint64(nodeID)}},
		Context: frame,
	}
	if err := g.rn.ProposeConfChange(cc); err != nil {
		return err
	}
	g.ch.proposed = true
	return nil
}

// proposeEntry signs and proposes a normal entry.
func (g *group) proposeEntry(t crypto.Type, body any) error {
	if g.fork != nil {
		return g.errHalted("propose")
	}
	frame, err := g.signEntry(t, body)
	if err != nil {
		return err
	}
	return g.proposeFrame(frame)
}
