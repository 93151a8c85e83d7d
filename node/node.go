// Package node runs a DeMeS node: the member's groups, each a raft group
// (go.etcd.io/raft/v3) whose leader is the group's host; the signed peer
// transport; the durable store; the outbox; invites and joins; and the events
// the UI shows.
//
// # Ownership
//
// Each group's state belongs to one goroutine (group.run), built around
// raft's Ready loop: persist (fsync), send, apply, Advance. Other goroutines
// talk to it through a request channel, or read an immutable view it
// publishes after each change. The peer transport never touches group state
// directly: it checks an envelope against the published view and hands the
// raft message to raft.Node.Step, which is safe for concurrent use.
//
// # What reaches the disk
//
// The store (package store) holds raft entries (signed envelopes with sealed
// payloads), the outbox (the same), and each group's latest snapshot of its
// state machine (ids, keys, hashes, membership). Plaintext exists only in
// memory, after a member opens a message sealed to it.
package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/election"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

// Link carries a signed frame to a peer's URL and returns the peer's answer.
// The HTTP implementation is [HTTPLink]; tests use package simnet.
type Link interface {
	Post(ctx context.Context, url string, frame []byte) ([]byte, error)
}

// Timing is the raft timing profile. The LAN default (50 ms ticks, an
// election after 10 silent ticks) fails over in well under a second; slow or
// lossy networks want longer ticks.
type Timing struct {
	Tick           time.Duration
	ElectionTicks  int
	HeartbeatTicks int
}

// LAN is the default timing profile.
var LAN = Timing{Tick: 50 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1}

// Config configures a node.
type Config struct {
	// Dir holds the store (store.db). It must exist.
	Dir      string
	Identity *identity.Identity
	// Name is the display name other members see.
	Name string
	// URL is the peer URL other nodes reach this node at.
	URL    string
	Link   Link
	Logger zerolog.Logger
	Timing Timing
	// MaxVoters caps the voters of groups this node creates (default 5).
	MaxVoters int
	// PingInterval is how often peers are pinged to measure latency (default 1 s).
	PingInterval time.Duration
	// RetryInterval is how often queued messages are proposed again (default 500 ms).
	RetryInterval time.Duration
	// LatencyInterval is the least time between two latency maps this node
	// commits (default 5 s).
	LatencyInterval time.Duration
	// TransferCooldown is the least time between two leadership transfers
	// (default 3 s).
	TransferCooldown time.Duration
	// Hysteresis is how much better a member must be to take over as host
	// (default election.DefaultHysteresis).
	Hysteresis election.Hysteresis
	// events, when set, is shared with a Service so that subscriptions
	// survive a restart of the node.
	events *broadcaster
	// CheckpointEntries and CheckpointInterval rate-limit this node's signed
	// checkpoints of the transcript chain (defaults 100 entries, 60 s).
	CheckpointEntries  uint64
	CheckpointInterval time.Duration
	// MaxSkew is the clock difference tolerated on peer envelopes (default 5 min).
	MaxSkew time.Duration
	// SnapshotEntries is how many applied entries a group goes between two
	// snapshots of its state (default 10,000). A restart restores the
	// latest snapshot and applies only the log after it.
	SnapshotEntries uint64
	// SnapshotKeep is how many entries before its latest snapshot a group
	// keeps in memory, for members a little behind (default 1,000). Older
	// entries are read back from the store: the store keeps the whole log.
	SnapshotKeep uint64
}

// Node is a running DeMeS node.
type Node struct {
	cfg     Config
	id      *identity.Identity
	self    identity.PublicID
	selfID  string // self.String(), which is bech32 work: one per message shown
	log     zerolog.Logger
	store   *store.Store
	counter *crypto.Counter
	replay  *crypto.ReplayFilter
	// peerHandler is built once: a Service asks for it on every request.
	peerHandlerOnce sync.Once
	peerHandler     http.Handler
	// joinReplay is the replay filter of invitees, kept apart from members'.
	joinReplay *crypto.ReplayFilter
	events     *broadcaster
	rejects    *rejectCounter
	// verified holds the envelopes of log entries checked ahead of their
	// application, by a goroutine that reads the entries to check from
	// checkc (verified.go).
	verified verifiedFrames
	checkc   chan []*pb.Message

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards groups, peers and challenges (registries, not group state)
	groups map[crypto.GroupID]*group
	peers  map[string]*peer
	nonces map[string]nonceInfo
	closed bool

	ownEvents bool
	crashed   atomic.Bool // set by Crash: stop without writing anything more
}

type nonceInfo struct {
	joiner  [32]byte
	group   crypto.GroupID
	expires time.Time
}

// Open opens the node's store, restarts every group in it, and starts serving.
func Open(cfg Config) (*Node, error) {
	if cfg.Identity == nil {
		return nil, errors.New("open node: no identity")
	}
	if cfg.Timing.Tick == 0 {
		cfg.Timing = LAN
	}
	if cfg.MaxVoters == 0 {
		cfg.MaxVoters = state.DefaultMaxVoters
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Second
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 500 * time.Millisecond
	}
	if cfg.LatencyInterval == 0 {
		cfg.LatencyInterval = 5 * time.Second
	}
	if cfg.TransferCooldown == 0 {
		cfg.TransferCooldown = 3 * time.Second
	}
	if cfg.Hysteresis == (election.Hysteresis{}) {
		cfg.Hysteresis = election.DefaultHysteresis()
	}
	if cfg.CheckpointEntries == 0 {
		cfg.CheckpointEntries = 100
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Minute
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = 5 * time.Minute
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = 10_000
	}
	if cfg.SnapshotKeep == 0 {
		cfg.SnapshotKeep = 1_000
	}
	ownEvents := cfg.events == nil
	if ownEvents {
		cfg.events = newBroadcaster()
	}
	if cfg.Link == nil {
		cfg.Link = NewHTTPLink()
	}
	st, err := store.Open(filepath.Join(cfg.Dir, "store.db"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:     cfg,
		id:      cfg.Identity,
		self:    cfg.Identity.Public(),
		selfID:  cfg.Identity.Public().String(),
		log:     cfg.Logger,
		store:   st,
		counter: crypto.NewCounter(),
		replay:  crypto.NewReplayFilter(cfg.MaxSkew),

		joinReplay: crypto.NewReplayFilter(cfg.MaxSkew),
		events:     cfg.events,
		rejects:    newRejectCounter(),
		ctx:        ctx,
		cancel:     cancel,
		groups:     map[crypto.GroupID]*group{},
		peers:      map[string]*peer{},
		nonces:     map[string]nonceInfo{},
		checkc:     make(chan []*pb.Message, 256),

		ownEvents: ownEvents,
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.checkEntries()
	}()
	infos, err := st.Groups()
	if err != nil {
		st.Close()
		cancel()
		return nil, fmt.Errorf("open node: %w", err)
	}
	for k, raw := range infos {
		var gid crypto.GroupID
		copy(gid[:], k)
		info, err := decodeGroupInfo(raw)
		if err != nil {
			n.log.Error().Err(err).Str("group", gid.String()).Msg("skipping group with unreadable metadata")
			continue
		}
		g, err := n.restartGroup(gid, info)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("restart group %s: %w", gid, err)
		}
		n.groups[gid] = g
	}
	return n, nil
}

// Close stops every group and the transport, and closes the store. Everything
// acknowledged is already on disk; queued messages stay in the outbox.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	groups := make([]*group, 0, len(n.groups))
	for _, g := range n.groups {
		groups = append(groups, g)
	}
	n.mu.Unlock()
	n.cancel()
	for _, g := range groups {
		g.stop()
	}
	n.wg.Wait()
	if n.ownEvents {
		n.events.close()
	}
	return n.store.Close()
}

// Crash stops the node as a crash at this instant would, for fault
// injection in tests and benchmarks: like Close, but nothing more is
// written to the store (Close writes what was put off: messages sent since
// the last write, the latest commit index).
func (n *Node) Crash() error {
	n.crashed.Store(true)
	return n.Close()
}

// Self returns this node's public id.
func (n *Node) Self() identity.PublicID { return n.self }

// URL returns this node's peer URL.
func (n *Node) URL() string { return n.cfg.URL }

func (n *Node) group(gid crypto.GroupID) *group {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.groups[gid]
}

func (n *Node) groupByText(s string) (*group, error) {
	gid, err := crypto.ParseGroupID(s)
	if err != nil {
		return nil, fmt.Errorf("group %q: %w", s, ErrNotFound)
	}
	g := n.group(gid)
	if g == nil {
		return nil, fmt.Errorf("group %s: %w", s, ErrNotFound)
	}
	return g, nil
}

func (n *Node) sortedGroups() []*group {
	n.mu.Lock()
	out := make([]*group, 0, len(n.groups))
	for _, g := range n.groups {
		out = append(out, g)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id.String() < out[j].id.String() })
	return out
}

// sign signs an envelope as this node with the next counter and current time.
func (n *Node) sign(e *crypto.Envelope) ([]byte, error) {
	e.Counter = n.counter.Next()
	e.Time = time.Now().UnixNano()
	return crypto.Sign(n.id, e)
}

// CreateGroup creates a group with this node as its only member and host.
func (n *Node) CreateGroup(ctx context.Context, name string) (GroupInfo, error) {
	if name == "" || len(name) > 100 {
		return GroupInfo{}, fmt.Errorf("group name must be 1 to 100 characters: %w", ErrInvalid)
	}
	gid := crypto.NewGroupID()
	body, err := state.Encode(&state.Genesis{
		Name: name, Creator: n.self.Bytes(), RaftID: state.RaftID(n.self.Sign),
		URL: n.cfg.URL, Nickname: n.cfg.Name, MaxVoters: n.cfg.MaxVoters,
	})
	if err != nil {
		return GroupInfo{}, err
	}
	frame, err := n.sign(&crypto.Envelope{Type: crypto.TypeGenesis, Group: gid, Payload: body})
	if err != nil {
		return GroupInfo{}, err
	}
	info := groupInfo{Name: name}
	if err := n.store.CreateGroup(gid[:], encodeGroupInfo(info)); err != nil {
		return GroupInfo{}, fmt.Errorf("create group: %w", err)
	}
	g, err := n.startGroup(gid, info, frame, nil)
	if err != nil {
		return GroupInfo{}, fmt.Errorf("create group: %w", err)
	}
	n.mu.Lock()
	n.groups[gid] = g
	n.mu.Unlock()
	// Return once this node leads its new group, so the next command can use it.
	if err := g.waitView(ctx, func(v *view) bool { return v.leader == g.raftID && v.applied >= 1 }); err != nil {
		return GroupInfo{}, fmt.Errorf("create group: waiting to become host: %w", err)
	}
	n.events.publish(Event{Kind: "status", GroupID: gid.String()})
	return GroupInfo{GroupID: gid.String(), Name: name}, nil
}

// Groups lists this node's groups.
func (n *Node) Groups() []GroupInfo {
	out := []GroupInfo{}
	for _, g := range n.sortedGroups() {
		out = append(out, GroupInfo{GroupID: g.id.String(), Name: g.view.Load().name})
	}
	return out
}

// Status returns the node's state and every group's.
func (n *Node) Status() Status {
	s := Status{
		PublicID:    n.selfID,
		Name:        n.cfg.Name,
		Fingerprint: n.self.Fingerprint(),
		PeerURL:     n.cfg.URL,
		Running:     true,
		Groups:      []GroupStatus{},
		Rejected:    n.rejects.snapshot(),
	}
	for _, g := range n.sortedGroups() {
		s.Groups = append(s.Groups, g.status())
	}
	return s
}

// Messages returns a group's committed messages in order, then the queued ones.
func (n *Node) Messages(groupID string) ([]Message, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	var out []Message
	err = g.do(context.Background(), func() { out = g.messageList() })
	return out, err
}

// Send seals text to the group's members and proposes it. It returns once
// the message is committed, or when wait runs out (or at once for a wait of
// 0): the message then stays queued in the durable outbox and is sent
// later, exactly once. Either way it returns only once the message is on
// this node's disk, in the log or in the outbox; an error means it may or
// may not be sent.
func (n *Node) Send(ctx context.Context, groupID, text string, wait time.Duration) (Message, error) {
	if text == "" {
		return Message{}, fmt.Errorf("empty message: %w", ErrInvalid)
	}
	if len(text) > crypto.MaxBody {
		return Message{}, fmt.Errorf("message is %d bytes, the limit is %d: %w", len(text), crypto.MaxBody, ErrInvalid)
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return Message{}, err
	}
	var (
		msg           Message
		durable, done chan struct{}
		serr          error
	)
	if err := g.do(ctx, func() { msg, durable, done, serr = g.enqueue(text) }); err != nil {
		return Message{}, err
	}
	if serr != nil {
		return Message{}, serr
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-done:
			// Committed, so in this node's log on disk.
			var m Message
			_ = g.do(context.Background(), func() { m = g.messageByID(msg.ID) })
			if m.ID != "" {
				return m, nil
			}
			msg.State = StateCommitted
			return msg, nil
		case <-t.C:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("send: %w (the message may still be sent)", ctx.Err())
		case <-g.stopc:
		}
	}
	// Acknowledged as queued: it must be on disk first. Its outbox write
	// rides with the group's next write; this one makes it now.
	var derr error
	if err := g.do(ctx, func() { derr = g.makeDurable(durable) }); err != nil && !errors.Is(err, ErrStopped) {
		return Message{}, fmt.Errorf("send: %w (the message may still be sent)", err)
	}
	if derr != nil {
		return Message{}, fmt.Errorf("send: %w", derr)
	}
	select {
	case <-durable:
		return msg, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("send: %w (the message may still be sent)", ctx.Err())
	case <-g.donec:
		return Message{}, fmt.Errorf("group %s stopped before the message was stored: %w", g.id, ErrStopped)
	}
}

// Subscribe returns a channel of events (new messages, status changes) and a
// function to stop them. A slow subscriber misses events rather than slowing
// the node; the UI refreshes its state on each event anyway.
func (n *Node) Subscribe() (<-chan Event, func()) { return n.events.subscribe() }

// PeerHandler returns the HTTP handler of the peer listener.
func (n *Node) PeerHandler() http.Handler {
	n.peerHandlerOnce.Do(func() { n.peerHandler = newPeerHandler(n) })
	return n.peerHandler
}

// rejectCounter counts rejected envelopes by reason, for status.
type rejectCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func newRejectCounter() *rejectCounter { return &rejectCounter{m: map[string]int64{}} }

func (r *rejectCounter) add(reason string) {
	r.mu.Lock()
	r.m[reason]++
	r.mu.Unlock()
}

func (r *rejectCounter) snapshot() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.m))
	for k, v := range r.m {
		out[k] = v
	}
	return out
}

// broadcaster fans events out to subscribers.
type broadcaster struct {
	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed atomic.Bool
}

func newBroadcaster() *broadcaster { return &broadcaster{subs: map[chan Event]struct{}{}} }

func (b *broadcaster) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	b.mu.Lock()
	if b.closed.Load() {
		close(ch)
		b.mu.Unlock()
		return ch, func() {}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			if _, ok := b.subs[ch]; ok {
				delete(b.subs, ch)
				close(ch)
			}
			b.mu.Unlock()
		})
	}
}

func (b *broadcaster) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed.Store(true)
	for ch := range b.subs {
		close(ch)
		delete(b.subs, ch)
	}
}

// groupInfo is the per-group metadata kept in the store beside the log.
type groupInfo struct {
	Name string `json:"name"`
	// Provisional is the member list a joiner trusts until its log has caught
	// up far enough to know the members itself.
	Provisional []provisionalMember `json:"provisional,omitempty"`
}

type provisionalMember struct {
	PublicID string `json:"public_id"`
	URL      string `json:"url"`
	Voter    bool   `json:"voter"`
}

func encodeGroupInfo(i groupInfo) []byte {
	b, _ := jsonMarshal(i)
	return b
}

func decodeGroupInfo(b []byte) (groupInfo, error) {
	var i groupInfo
	err := jsonUnmarshal(b, &i)
	return i, err
}

func shortKey(k [32]byte) string { return hex.EncodeToString(k[:4]) }
