package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/store"
)

// The reference ceiling's group: what a DeMeS group does for a message that
// the machine cannot avoid (raft, an fsynced bbolt write per raft Ready,
// an Ed25519 signature per message and per batch between nodes, each
// checked by its receiver) and nothing else: no sealing or opening, no
// state machine, no HTTP or libp2p. Its nodes talk through Go channels,
// one batch at a time per pair of nodes as a node's peer queue posts one
// request at a time (node/peer.go). See [Ceiling].
//
// The settings that shape its batches are the node's (node/config.go):
// at most 2 appends in flight per follower of at most 1 MiB, batches of at
// most 512 raft messages and 4 MiB between two nodes, queues of 4096, up
// to 256 waiting events taken into one Ready.
const (
	ceilInflight    = 2
	ceilAppendBytes = 1 << 20
	ceilBatch       = 512
	ceilBatchBytes  = 4 << 20
	ceilQueue       = 4096
	ceilDrain       = 256
	// ceilKeep is how many applied entries a node keeps in memory; older
	// ones are read back from its store, as node's logStore does, so that
	// a long run does not hold every entry five times in the heap.
	ceilKeep = 4096
)

// ceilGroupID names the ceiling's group in each node's store.
var ceilGroupID = []byte("reference-ceiling")

// ceilGroup is the ceiling's nodes and the record of which node applied
// which entry.
type ceilGroup struct {
	nodes  []*ceilNode
	dir    string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	waits map[string]*ceilWait // by the entry's signature
	err   error                // the first failure of a node or link
}

// ceilWait follows one entry: done closes once the node it was proposed on
// applied it, all once every node did (at the time last).
type ceilWait struct {
	origin  int
	applied int
	done    chan struct{}
	all     chan struct{}
	last    time.Time
}

// ceilNode is one member: a raft.RawNode owned by its run goroutine, as a
// node's group goroutine owns its own.
type ceilNode struct {
	g     *ceilGroup
	index int
	id    *identity.Identity
	rn    *raft.RawNode
	mem   *raft.MemoryStorage
	st    *store.Store
	propc chan []byte
	recvc chan []*pb.Message
	links map[uint64]chan []byte // raft id -> marshalled messages to that node
	lead  chan uint64            // the latest leader, for waitLeader
	// voted is the term and vote on disk, so that a Ready that changes
	// neither and brings no entries writes nothing (as node's handleReady).
	term, vote uint64
	leader     bool
	applied    uint64
}

// newCeilGroup starts n nodes with stores under a new temporary directory,
// has the first campaign, and waits until every node follows it.
func newCeilGroup(ctx context.Context, n int) (*ceilGroup, error) {
	dir, err := os.MkdirTemp("", "demes-ceiling-")
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	g := &ceilGroup{dir: dir, cancel: cancel, waits: map[string]*ceilWait{}}
	voters := make([]uint64, n)
	for i := range voters {
		voters[i] = uint64(i + 1)
	}
	for i := range n {
		cn, err := g.newNode(i, voters)
		if err != nil {
			g.close()
			return nil, err
		}
		g.nodes = append(g.nodes, cn)
	}
	for _, a := range g.nodes {
		for _, b := range g.nodes {
			if a != b {
				q := make(chan []byte, ceilQueue)
				a.links[uint64(b.index+1)] = q
				g.wg.Go(func() { a.link(rctx, b, q) })
			}
		}
	}
	for _, cn := range g.nodes {
		g.wg.Go(func() { cn.run(rctx, cn.index == 0) })
	}
	if err := g.waitLeader(ctx); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func (g *ceilGroup) newNode(i int, voters []uint64) (*ceilNode, error) {
	id, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(g.dir, fmt.Sprintf("node%d.db", i)))
	if err != nil {
		return nil, err
	}
	if err := st.CreateGroup(ceilGroupID, nil); err != nil {
		st.Close()
		return nil, err
	}
	// The group starts from a snapshot of its five voters at index 1, so
	// that no membership change has to commit before the first election.
	mem := raft.NewMemoryStorage()
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{
		Index: proto.Uint64(1), Term: proto.Uint64(1), ConfState: &pb.ConfState{Voters: voters},
	}}
	if err := mem.ApplySnapshot(snap); err != nil {
		st.Close()
		return nil, err
	}
	timing := node.LAN
	rn, err := raft.NewRawNode(&raft.Config{
		ID: uint64(i + 1), ElectionTick: timing.ElectionTicks, HeartbeatTick: timing.HeartbeatTicks,
		Storage: ceilStorage{mem, st}, MaxSizePerMsg: ceilAppendBytes, MaxInflightMsgs: ceilInflight,
		CheckQuorum: true, PreVote: true, Logger: ceilLogger{},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &ceilNode{
		g: g, index: i, id: id, rn: rn, mem: mem, st: st, applied: 1,
		propc: make(chan []byte, ceilQueue), recvc: make(chan []*pb.Message, 64),
		links: map[uint64]chan []byte{}, lead: make(chan uint64, 1),
	}, nil
}

// waitLeader waits until every node names the same leader.
func (g *ceilGroup) waitLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	known := make([]uint64, len(g.nodes))
	for {
		agreed := true
		for i, cn := range g.nodes {
			select {
			case l := <-cn.lead:
				known[i] = l
			default:
			}
			agreed = agreed && known[i] != 0 && known[i] == known[0]
		}
		if agreed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reference ceiling: no leader all nodes follow: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (g *ceilGroup) close() {
	g.cancel()
	g.wg.Wait()
	for _, cn := range g.nodes {
		cn.st.Close()
	}
	os.RemoveAll(g.dir)
}

// fail records the first failure, which the measurement returns.
func (g *ceilGroup) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = fmt.Errorf("reference ceiling: %w", err)
	}
}

// failed returns the first failure, if any.
func (g *ceilGroup) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// send signs an entry around payload on node origin, as a member signs the
// envelope of its chat message, proposes it there, and returns what
// follows it. counter makes the entry unique (the same payload is sent
// again and again).
func (g *ceilGroup) send(ctx context.Context, origin int, payload []byte, counter uint64) (*ceilWait, error) {
	cn := g.nodes[origin]
	frame, err := crypto.Sign(cn.id, &crypto.Envelope{Type: crypto.TypeChat, Counter: counter, Time: time.Now().UnixNano(), Payload: payload})
	if err != nil {
		return nil, err
	}
	w := &ceilWait{origin: origin, done: make(chan struct{}), all: make(chan struct{})}
	g.mu.Lock()
	g.waits[ceilKey(frame)] = w
	g.mu.Unlock()
	select {
	case cn.propc <- frame:
		return w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ceilKey names an entry by its signature, which no two entries share.
func ceilKey(frame []byte) string {
	const sigAt = 1 + 32 // after the version and the sender's key
	if len(frame) < sigAt+64 {
		return ""
	}
	return string(frame[sigAt : sigAt+64])
}

// appliedOn records that node i applied the entry frame.
func (g *ceilGroup) appliedOn(i int, frame []byte, at time.Time) {
	k := ceilKey(frame)
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.waits[k]
	if w == nil {
		return
	}
	w.applied++
	if i == w.origin {
		close(w.done)
	}
	if w.applied == len(g.nodes) {
		w.last = at
		close(w.all)
		delete(g.waits, k)
	}
}

// run is the node's Ready loop (raft's doc.go; node/ready.go): tick, step,
// propose, then persist, send, apply, Advance.
func (cn *ceilNode) run(ctx context.Context, campaign bool) {
	tick := time.NewTicker(node.LAN.Tick)
	defer tick.Stop()
	if campaign {
		_ = cn.rn.Campaign()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			cn.rn.Tick()
		case f := <-cn.propc:
			cn.propose(f)
		case msgs := <-cn.recvc:
			cn.step(msgs)
		}
		// What else waits goes into the same Ready, as node/group.go's
		// drainWaiting does: one fsync and one append for all of it.
	drain:
		for range ceilDrain {
			select {
			case f := <-cn.propc:
				cn.propose(f)
			case msgs := <-cn.recvc:
				cn.step(msgs)
			default:
				break drain
			}
		}
		for cn.rn.HasReady() {
			if err := cn.ready(cn.rn.Ready()); err != nil {
				cn.g.fail(fmt.Errorf("node %d: %w", cn.index, err))
				return
			}
		}
	}
}

// propose proposes a signed entry. A dropped proposal (no leader known) is
// not retried: the group is settled before any is made, and its sender
// times out.
func (cn *ceilNode) propose(frame []byte) { _ = cn.rn.Propose(frame) }

func (cn *ceilNode) step(msgs []*pb.Message) {
	for _, m := range msgs {
		_ = cn.rn.Step(m)
	}
}

func (cn *ceilNode) ready(rd raft.Ready) error {
	if rd.SoftState != nil {
		cn.leader = rd.SoftState.RaftState == raft.StateLeader
		if rd.SoftState.Lead != raft.None {
			select {
			case <-cn.lead:
			default:
			}
			cn.lead <- rd.SoftState.Lead
		}
	}
	hs := rd.HardState
	if hs != nil && raft.IsEmptyHardState(hs) {
		hs = nil
	}
	newVote := hs != nil && (hs.GetTerm() != cn.term || hs.GetVote() != cn.vote)
	// A leader whose term and vote stay sends its appends before its own
	// write, so that the followers' writes overlap it (node/ready.go).
	var rest []*pb.Message
	for _, m := range rd.Messages {
		if t := m.GetType(); t == pb.MsgProp || (cn.leader && !newVote && (t == pb.MsgApp || t == pb.MsgHeartbeat)) {
			cn.sendRaft(m)
		} else {
			rest = append(rest, m)
		}
	}
	if len(rd.Entries) > 0 || newVote {
		if err := cn.st.SaveRaft(ceilGroupID, hs, rd.Entries, nil, nil); err != nil {
			return err
		}
		if hs != nil {
			cn.term, cn.vote = hs.GetTerm(), hs.GetVote()
		}
	}
	if hs != nil {
		if err := cn.mem.SetHardState(hs); err != nil {
			return err
		}
	}
	if err := cn.mem.Append(rd.Entries); err != nil {
		return err
	}
	for _, m := range rest {
		cn.sendRaft(m)
	}
	now := time.Now()
	for _, e := range rd.CommittedEntries {
		if e.GetType() == pb.EntryNormal && len(e.GetData()) > 0 {
			cn.g.appliedOn(cn.index, e.GetData(), now)
		}
		cn.applied = e.GetIndex()
	}
	cn.rn.Advance(rd)
	if first, _ := cn.mem.FirstIndex(); cn.applied > first+2*ceilKeep {
		return cn.mem.Compact(cn.applied - ceilKeep)
	}
	return nil
}

// sendRaft queues m for its node; a full queue drops it, and raft sends
// again (node/peer.go: sendRaft).
func (cn *ceilNode) sendRaft(m *pb.Message) {
	data, err := proto.Marshal(m)
	if err != nil {
		return
	}
	select {
	case cn.links[m.GetTo()] <- data:
	default:
		cn.rn.ReportUnreachable(m.GetTo())
	}
}

// link carries cn's raft messages to node to, one signed batch at a time:
// it takes what waits in q (up to the node's batch limits), signs it as
// one batch envelope, and hands it to the receiving side, which checks it
// as a node's peer listener does before to's goroutine steps raft with it.
func (cn *ceilNode) link(ctx context.Context, to *ceilNode, q chan []byte) {
	toKey := to.id.Public().Sign
	for {
		var first []byte
		select {
		case <-ctx.Done():
			return
		case first = <-q:
		}
		items, size := [][]byte{first}, len(first)
	fill:
		for len(items) < ceilBatch && size < ceilBatchBytes {
			select {
			case m := <-q:
				items, size = append(items, m), size+len(m)
			default:
				break fill
			}
		}
		payload, err := crypto.EncodeBatch(items)
		if err != nil {
			continue
		}
		frame, err := crypto.Sign(cn.id, &crypto.Envelope{Type: crypto.TypeBatch, To: toKey, Time: time.Now().UnixNano(), Payload: payload})
		if err != nil {
			continue
		}
		msgs, err := to.receive(frame)
		if err != nil {
			cn.g.fail(fmt.Errorf("node %d refused a batch of node %d: %w", to.index, cn.index, err))
			continue
		}
		select {
		case to.recvc <- msgs:
		case <-ctx.Done():
			return
		}
	}
}

// receive checks a batch frame's signature and each entry's signature in
// it (every member checks every entry it receives once, off its raft
// goroutine, as node/handle.go does) and returns its raft messages.
func (cn *ceilNode) receive(frame []byte) ([]*pb.Message, error) {
	env, err := crypto.Verify(frame)
	if err != nil {
		return nil, err
	}
	if env.To != cn.id.Public().Sign {
		return nil, errors.New("batch for another node")
	}
	items, err := crypto.DecodeBatch(env.Payload)
	if err != nil {
		return nil, err
	}
	msgs := make([]*pb.Message, 0, len(items))
	for _, it := range items {
		m := &pb.Message{}
		if err := proto.Unmarshal(it, m); err != nil {
			return nil, err
		}
		for _, e := range m.GetEntries() {
			if len(e.GetData()) == 0 {
				continue
			}
			if _, err := crypto.Verify(e.GetData()); err != nil {
				return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
			}
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// ceilStorage is a node's raft.Storage: the recent log in memory, older
// entries read back from the store (a smaller node.logStore), so that raft
// never finds an entry compacted away.
type ceilStorage struct {
	*raft.MemoryStorage
	st *store.Store
}

// FirstIndex implements raft.Storage: the log starts after the group's
// initial snapshot, whatever memory dropped since.
func (s ceilStorage) FirstIndex() (uint64, error) { return 2, nil }

// Entries implements raft.Storage.
func (s ceilStorage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	ents, err := s.MemoryStorage.Entries(lo, hi, maxSize)
	if errors.Is(err, raft.ErrCompacted) {
		return s.st.Entries(ceilGroupID, lo, hi, maxSize)
	}
	return ents, err
}

// Term implements raft.Storage.
func (s ceilStorage) Term(i uint64) (uint64, error) {
	t, err := s.MemoryStorage.Term(i)
	switch {
	case !errors.Is(err, raft.ErrCompacted):
		return t, err
	case i == 1:
		return 1, nil // the initial snapshot's
	}
	return s.st.Term(ceilGroupID, i)
}

// ceilLogger discards raft's logs: the ceiling has no operator.
type ceilLogger struct{}

func (ceilLogger) Debug(...any)            {}
func (ceilLogger) Debugf(string, ...any)   {}
func (ceilLogger) Info(...any)             {}
func (ceilLogger) Infof(string, ...any)    {}
func (ceilLogger) Warning(...any)          {}
func (ceilLogger) Warningf(string, ...any) {}
func (ceilLogger) Error(...any)            {}
func (ceilLogger) Errorf(string, ...any)   {}
func (ceilLogger) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (ceilLogger) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (ceilLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (ceilLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
