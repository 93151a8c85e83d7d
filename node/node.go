package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demes/demes/internal/version"

	"github.com/rs/zerolog"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

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
	// limits refuses peer frames from a source that keeps sending junk,
	// over any transport (handle.go).
	limits *sourceLimiter
	// joinReplay is the replay filter of invitees, kept apart from members'.
	joinReplay *crypto.ReplayFilter
	// joining counts the joins in progress: while one is, frames from
	// senders this node does not know yet are expected (see checkSender).
	joining atomic.Int32
	// readReceipts is the person's choice to share read receipts (and so
	// see the members'); receipts.go.
	readReceipts atomic.Bool
	// url is the peer URL this node advertises: cfg.URL at first, then
	// whatever SetURL was last given (a libp2p host's addresses change
	// while it runs). Read it through URL, never cfg.URL.
	url atomic.Pointer[string]
	// kept counts the joins a keeper runs for codes posted to it.
	kept keeperJoins
	// logLie is added to the index of the last log entry this node's pings
	// report while it no longer hears its host: 0 but in the adversary
	// suite's lying voter (LieAboutLog, rogue.go).
	logLie atomic.Uint64
	// startMu makes starting a joined group and registering it one step
	// (startJoined).
	startMu   sync.Mutex
	events    *broadcaster
	rejects   *rejectCounter
	rejectLog rejectLog // which rejections to log (limit.go)
	// verified holds the envelopes of log entries checked ahead of their
	// application, by a goroutine that reads the entries to check from
	// checkc (verified.go).
	verified verifiedFrames
	checkc   chan []*pb.Message
	// relaysPoke wakes watchRelays (relays.go).
	relaysPoke chan struct{}
	// joinRelaysBy are the relays of the invites of the joins under way,
	// by join (invite_relays.go).
	joinRelaysMu sync.Mutex
	joinRelaysBy map[*int][]string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards groups, peers, challenges and proposing (registries, not group state)
	groups map[crypto.GroupID]*group
	fig    *nodeFigures // running counts for the metrics (figures.go)
	peers  map[string]*peer
	nonces map[string]nonceInfo
	// proposing are the joins this node proposes, by group and joiner, to
	// the request that proposes it (handleJoin): one at a time.
	proposing map[joinKey]*int
	closed    bool

	ownEvents bool
	crashed   atomic.Bool // set by Crash: stop without writing anything more
	// catchUps is the state of catching up members that were away, this
	// node or others (catchup.go).
	catchUps catchUps
	// files are the attachments' blobs (files.go).
	files files
	// keys are the node's prekeys and kept sender keys (keys.go).
	keys *keyBook
	// reform holds what this node knows of successor groups (reform.go).
	reform reformBook
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
	cfg = cfg.withDefaults()
	ownEvents := cfg.events == nil
	if ownEvents {
		cfg.events = newBroadcaster()
	}
	if cfg.Link == nil {
		cfg.Link = NewHTTPLink()
	}
	fig := newNodeFigures()
	cfg.Link = countingLink{Link: cfg.Link, fig: fig}
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
		limits:  newSourceLimiter(),
		store:   st,
		counter: crypto.NewCounter(),
		replay:  crypto.NewReplayFilter(cfg.MaxSkew),
		fig:     fig,

		joinReplay: crypto.NewReplayFilter(cfg.MaxSkew),
		events:     cfg.events,
		rejects:    newRejectCounter(),
		ctx:        ctx,
		cancel:     cancel,
		groups:     map[crypto.GroupID]*group{},
		peers:      map[string]*peer{},
		nonces:     map[string]nonceInfo{},
		proposing:  map[joinKey]*int{},
		checkc:     make(chan []*pb.Message, 256),
		relaysPoke: make(chan struct{}, 1),

		ownEvents: ownEvents,
	}
	n.url.Store(&cfg.URL)
	if n.keys, err = openKeyBook(n); err != nil {
		st.Close()
		cancel()
		return nil, fmt.Errorf("open node: %w", err)
	}
	n.catchUps.init()
	n.files.init(n)
	if err := n.loadPrefs(); err != nil {
		st.Close()
		cancel()
		return nil, fmt.Errorf("open node: %w", err)
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
	// Restoring read each group's stored ids and more: drop those pages
	// from the process now rather than at the store's next release.
	_ = st.ReleaseMapped()
	if cfg.Relays != nil {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.watchRelays()
		}()
	}
	n.resumeKeeperOffer() // keeper.go
	return n, nil
}

// groupsNow returns the node's groups at this moment, to work on without
// holding n.mu.
func (n *Node) groupsNow() []*group {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Collect(maps.Values(n.groups))
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
	if err := n.keys.close(); err != nil {
		n.log.Error().Err(err).Msg("close the key store")
	}
	if n.crashed.Load() {
		return n.store.Abandon()
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

// URL returns this node's peer URL: the one it was opened with, or the
// one SetURL last gave it.
func (n *Node) URL() string { return *n.url.Load() }

// SetURL changes the peer URL this node advertises while it runs, as when
// its network changes under it (a relay slot gained or lost, a new
// interface address, a port mapping). Each group then commits the new
// address and announces it to the members at its next upkeep, as after a
// restart on another address, and invites and notices made from then on
// name it. An empty URL, or the current one, changes nothing. SetURL is
// safe for concurrent use.
func (n *Node) SetURL(url string) {
	if url == "" {
		return
	}
	if old := n.url.Swap(&url); *old == url {
		return
	}
	n.log.Info().Str("url", url).Msg("peer URL changed")
	n.events.publish(Event{Kind: "status"})
}

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
	if n.cfg.Keeper {
		return GroupInfo{}, errKeeper
	}
	if name == "" || len(name) > 100 {
		return GroupInfo{}, fmt.Errorf("group name must be 1 to 100 characters: %w", ErrInvalid)
	}
	return n.createGroup(ctx, name, func(g state.Genesis) any { return &g })
}

// createGroup creates a group named name whose genesis body is what wrap
// makes of this node's plain genesis for it (a successor's wraps it with
// its continuation, reform.go).
func (n *Node) createGroup(ctx context.Context, name string, wrap func(state.Genesis) any) (GroupInfo, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return GroupInfo{}, err
	}
	body, err := state.Encode(wrap(state.Genesis{
		Name: name, Creator: n.self.Bytes(), RaftID: state.RaftID(n.self.Sign),
		URL: n.URL(), Nickname: n.cfg.Name, MaxVoters: n.cfg.MaxVoters, Nonce: nonce,
	}))
	if err != nil {
		return GroupInfo{}, err
	}
	gid := state.GroupIDOf(body)
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
	if err := n.register(g); err != nil {
		return GroupInfo{}, fmt.Errorf("create group: %w", err)
	}
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
		v := g.view.Load()
		out = append(out, GroupInfo{GroupID: g.id.String(), Name: v.name, Left: v.role == "left", RemovedBy: v.removedBy, RemovedByName: v.removedByName})
	}
	return out
}

// Status returns the node's state and every group's.
func (n *Node) Status() Status {
	s := Status{
		ReadReceipts: n.readReceipts.Load(),
		PublicID:     n.selfID,
		Name:         n.cfg.Name,
		Fingerprint:  n.self.Fingerprint(),
		PeerURL:      n.URL(),
		Running:      true,
		Groups:       []GroupStatus{},
		Rejected:     n.rejects.snapshot(),
		Version:      version.Get().String(),
	}
	if n.cfg.Reachability != nil {
		s.Reachability = n.cfg.Reachability()
	}
	for _, g := range n.sortedGroups() {
		s.Groups = append(s.Groups, g.status())
	}
	return s
}

// Messages returns a group's committed messages in order, then the queued ones.
func (n *Node) Messages(groupID string) ([]Message, error) {
	p, err := n.MessagePage(groupID, 0, "")
	return p.Messages, err
}

// MessagePage returns a page of a group's messages in group order (see
// [api.MessagePage]): at most limit of them (1 to [api.MaxPage]; 0: every
// one), those right before the message whose id is before, or the newest
// when before is empty. An id that is not one of the group's messages is
// an [ErrNotFound]; the id of a change (a reaction, an edit, a delete) an
// [ErrInvalid].
func (n *Node) MessagePage(groupID string, limit int, before string) (MessagePage, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return MessagePage{}, err
	}
	if limit != 0 {
		return g.page(limit, before)
	}
	// Every message: a page at a time from the newest back, so that the
	// group's goroutine reads no more than a page from the store between
	// two turns of its loop (pages end at a message, so they join up
	// whatever commits meanwhile).
	var pages [][]Message
	var events [][]api.MemberEvent
	total := 0
	for {
		p, err := g.page(api.MaxPage, before)
		if err != nil {
			return MessagePage{}, err
		}
		pages = append(pages, p.Messages)
		events = append(events, p.Events)
		total += len(p.Messages)
		if !p.More || len(p.Messages) == 0 {
			break
		}
		before = p.Messages[0].ID
	}
	out := make([]Message, 0, total)
	var evs []api.MemberEvent
	for i := len(pages) - 1; i >= 0; i-- {
		out = append(out, pages[i]...)
		evs = append(evs, events[i]...)
	}
	return MessagePage{Messages: out, Events: evs}, nil
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

func shortKey(k [32]byte) string { return hex.EncodeToString(k[:4]) }
