package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Catching up from anyone (docs/PROTOCOL.md). A member that was away while
// the group changed may come back to find that every member it knew is gone
// and that every member still there is one it never heard of: their frames
// are refused as "sender is not a member", so raft alone never catches it
// up. Instead, such a frame from a stranger is answered with a signed
// "behind" notice (TypeBehind: the index this node applied and where it
// listens). A member that holds more of the log answers the notice by
// pushing the committed entries that follow, in TypeCatchUp envelopes.
//
// The pusher is trusted for nothing. Its entries are applied, in order, to
// a copy of this node's state, the same state machine that applies the
// log: every entry's signature is checked and every join, invite, removal
// and role change must be authorised by the chain of membership as this
// node already knew it. Only once the copy has reached the end of what the
// pusher holds does this node trust the members the copy names, as
// provisional members (like a joiner trusts its join reply), so that the
// current host's appends are admitted and raft catches it up in the normal
// way; the provisional trust ends when its own log has applied as far.
// A stranger who is no member in that chain stays one.

// Limits of catching up.
const (
	// probeInterval is how often a frame of a stranger is checked at all:
	// a member behind needs only one to ask for the log, and an outsider's
	// flood should cost little.
	probeInterval = 200 * time.Millisecond
	// behindInterval is how often this node sends a behind notice for a
	// group, at most.
	behindInterval = time.Second
	// pusherWindow is how long after a behind notice its addressee may
	// push entries; reconnectWindow the same for anyone after a reconnect.
	pusherWindow    = time.Minute
	reconnectWindow = time.Minute
	// catchUpLimit bounds one session of catching up from one member.
	catchUpLimit = 10 * time.Minute
	// catchUpChunk bounds the entries of one catch-up envelope.
	catchUpChunk = maxAppendBytes
)

// behindBody is the payload of a behind notice.
type behindBody struct {
	_ struct{} `cbor:",toarray"`
	// Applied is the last index the member applied; it asks for the
	// entries after it.
	Applied uint64
	// URL is where the member listens now (it may have moved while away).
	URL string
}

// catchUpHead is the first item of a catch-up envelope's payload (a batch,
// see crypto.EncodeBatch); the others are raft entries (raftpb.Entry).
type catchUpHead struct {
	_ struct{} `cbor:",toarray"`
	// Commit is the last index the pusher has applied: how far there is
	// to go.
	Commit uint64
}

// catchUps is a node's state of catching up, its own and others'.
type catchUps struct {
	// apply serialises the application of pushed entries (takeCatchUp),
	// which is long; mu guards the rest, briefly.
	apply     sync.Mutex
	mu        sync.Mutex
	lastProbe time.Time
	// pushers are the members this node asked for the log, until when
	// their pushes are taken; anyone is the same for every signer of a
	// group (after a reconnect, whose answerer's key is not known).
	pushers map[[32]byte]time.Time
	anyone  map[crypto.GroupID]time.Time
	// sessions are the copies of groups' states entries are applied to
	// (guarded by apply).
	sessions map[crypto.GroupID]*catchUpSession
	// pushing are the pushes this node runs for others, one per group and
	// member.
	pushing map[pushKey]bool
	// noticed is when this node last sent a behind notice, per group.
	noticed map[crypto.GroupID]time.Time
}

type pushKey struct {
	group  crypto.GroupID
	member [32]byte
}

// catchUpSession is one run of catching up from one pusher.
type catchUpSession struct {
	from    [32]byte
	st      *state.State // a copy of the group's state, advanced by the pushed entries
	started time.Time
	entries int
}

func (c *catchUps) init() {
	c.pushers = map[[32]byte]time.Time{}
	c.anyone = map[crypto.GroupID]time.Time{}
	c.sessions = map[crypto.GroupID]*catchUpSession{}
	c.pushing = map[pushKey]bool{}
	c.noticed = map[crypto.GroupID]time.Time{}
}

// admitStranger decides whether a frame from signer k, who is no member,
// provisional member or invitee of any group here, is read and checked at
// all: a pusher this node asked, or, while some group here knows no host
// (as a member that was away finds), one probe per probeInterval: this
// frame may be the only sign that the group moved on without it.
func (n *Node) admitStranger(k [32]byte, now time.Time) bool {
	c := &n.catchUps
	c.mu.Lock()
	if now.Before(c.pushers[k]) {
		c.mu.Unlock()
		return true
	}
	for gid, until := range c.anyone {
		if now.Before(until) {
			c.mu.Unlock()
			return true
		}
		delete(c.anyone, gid)
	}
	due := now.Sub(c.lastProbe) >= probeInterval
	c.mu.Unlock()
	if !due || !n.hostless() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.lastProbe) < probeInterval {
		return false
	}
	c.lastProbe = now
	return true
}

// hostless reports whether some group this node is a member of knows no
// host: a group that has one is not behind in a way a stranger can mend.
// Or whose restored copy leads it alone (restoredLeads): a stranger's
// traffic may be the only sign that it split from the group.
func (n *Node) hostless() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.groups {
		if v := g.view.Load(); v.self && v.fork == nil && (v.leader == 0 || v.restoredLeads) {
			return true
		}
	}
	return false
}

// fromStranger handles a checked envelope of group g whose signer this node
// does not know as a member. A catch-up this node asked for is applied; a
// batch or ping (the traffic of a member that knows this one) is answered
// with a behind notice, at most one per behindInterval, unless the signer
// is a member this node saw leave or removed; anything else is refused.
func (n *Node) fromStranger(ctx context.Context, g *group, env *crypto.Envelope) ([]byte, error) {
	v := g.view.Load()
	switch {
	case env.Type == crypto.TypeCatchUp:
		return n.takeCatchUp(ctx, g, env)
	case env.Type != crypto.TypeBatch && env.Type != crypto.TypePing:
	case !v.self || v.fork != nil || v.former[env.Sender]:
	default:
		if v.restoredLeads {
			if g.noteRestoredStranger(env.Sender) {
				_ = g.do(ctx, func() { g.publishDue = true })
			}
			// Not asked for the log: its chain of membership does not
			// follow from this copy's state, which refuses it (restored.go).
			break
		}
		if err := n.askForLog(g, v, env.Sender, reasonAskedForLog, "a stranger sent a group's traffic: asking it for the log, in case this node is behind"); err != nil {
			return nil, err
		}
	}
	// Counted and logged by reason alone, as a frame refused unread is:
	// strangers may use any number of keys.
	return nil, n.rejectAnonymous("sender is not a member", nil)
}

// askForLog answers member k of group g with a behind notice (a
// *behindError), so that k pushes the log from this node's applied index,
// and lets k push for pusherWindow: at most one notice per behindInterval
// and group, nil when none is due. The refusal that carries the notice is
// counted under reason and logged as what.
func (n *Node) askForLog(g *group, v *view, k [32]byte, reason, what string) error {
	now := time.Now()
	c := &n.catchUps
	c.mu.Lock()
	due := now.Sub(c.noticed[g.id]) >= behindInterval
	if due {
		c.noticed[g.id] = now
		c.pushers[k] = now.Add(pusherWindow)
	}
	c.mu.Unlock()
	if !due {
		return nil
	}
	n.countReject(reason, what)
	notice, err := n.behindNotice(g, v, k)
	if err != nil {
		return err
	}
	return &behindError{notice: notice}
}

// reasonAskedForLog is the reason a stranger's frame is refused with a behind
// notice, as counted.
const reasonAskedForLog = "sender is not a member: asked it for the log"

// behindNotice signs a notice that this node applied g's log up to v's
// applied index, for to (zero: anyone).
func (n *Node) behindNotice(g *group, v *view, to [32]byte) ([]byte, error) {
	body, err := state.Encode(&behindBody{Applied: v.applied, URL: n.URL()})
	if err != nil {
		return nil, err
	}
	return n.sign(&crypto.Envelope{Type: crypto.TypeBehind, Group: g.id, To: to, Payload: body})
}

// takeCatchUp applies the entries of a catch-up envelope to the session's
// copy of g's state, and answers with a behind notice for the next ones,
// or with nothing once the copy reached the pusher's end (and this node
// then trusts the members the copy names).
func (n *Node) takeCatchUp(ctx context.Context, g *group, env *crypto.Envelope) ([]byte, error) {
	now := time.Now()
	c := &n.catchUps
	c.mu.Lock()
	asked := now.Before(c.pushers[env.Sender]) || now.Before(c.anyone[g.id])
	c.mu.Unlock()
	if !asked {
		return nil, n.reject(env, "catch-up nobody asked for", nil)
	}
	items, err := crypto.DecodeBatch(env.Payload)
	if err != nil || len(items) == 0 {
		return nil, n.reject(env, "malformed catch-up", err)
	}
	var head catchUpHead
	if err := state.Decode(items[0], &head); err != nil {
		return nil, n.reject(env, "malformed catch-up", err)
	}
	c.apply.Lock()
	defer c.apply.Unlock()
	s := c.sessions[g.id]
	if s == nil || s.from != env.Sender || now.Sub(s.started) > catchUpLimit {
		if s != nil && s.from == env.Sender {
			// Over the limit (a pusher that never ends): this one is
			// asked for nothing more, until this node asks it again.
			delete(c.sessions, g.id)
			c.mu.Lock()
			delete(c.pushers, env.Sender)
			c.mu.Unlock()
			return nil, n.reject(env, "catch-up took too long", nil)
		}
		var st *state.State
		if err := g.do(ctx, func() { st, err = g.st.Copy() }); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("catch up: copy the group's state: %w", err)
		}
		s = &catchUpSession{from: env.Sender, st: st, started: now}
		c.sessions[g.id] = s
	}
	// c.sessions is guarded by c.apply, held here.
	for _, it := range items[1:] {
		e := &pb.Entry{}
		if err := proto.Unmarshal(it, e); err != nil {
			return nil, n.reject(env, "malformed catch-up entry", err)
		}
		if e.GetIndex() <= s.st.Applied {
			continue // applied already
		}
		if e.GetIndex() != s.st.Applied+1 {
			break // a gap: ask again from where the copy is
		}
		applyToCopy(s.st, e)
		s.entries++
	}
	if s.st.Applied < head.Commit {
		c.mu.Lock()
		c.pushers[env.Sender] = now.Add(pusherWindow)
		c.mu.Unlock()
		return n.behindNotice(g, &view{applied: s.st.Applied}, env.Sender)
	}
	delete(c.sessions, g.id)
	c.mu.Lock()
	delete(c.pushers, env.Sender)
	c.mu.Unlock()
	st, entries := s.st, s.entries
	if st.Members[env.Sender] == nil {
		return nil, n.reject(env, "catch-up from a member the chain does not name", nil)
	}
	n.log.Info().Str("group", g.id.String()).Str("from", shortKey(env.Sender)).Int("entries", entries).Uint64("index", st.Applied).Int("members", len(st.Members)).Msg("checked the chain of membership a member sent; catching up")
	if err := g.do(ctx, func() { g.trustChain(st) }); err != nil {
		return nil, err
	}
	return nil, nil
}

// applyToCopy applies committed entry e to st, a copy of a group's state
// that no raft follows.
func applyToCopy(st *state.State, e *pb.Entry) {
	switch e.GetType() {
	case pb.EntryNormal:
		st.ApplyEntry(e.GetIndex(), e.GetData())
	case pb.EntryConfChange, pb.EntryConfChangeV2:
		applyConfEntry(st, e)
	default:
		st.ApplyEntry(e.GetIndex(), nil)
	}
}

// trustChain makes the members st names (a copy of the group's state,
// advanced by checked entries) provisional members until this node's own
// log has applied as far, so that their raft messages are admitted.
func (g *group) trustChain(st *state.State) {
	if st.Applied <= g.st.Applied {
		return
	}
	g.provisional = map[[32]byte]viewMember{}
	for k, m := range st.Members {
		g.provisional[k] = viewMember{id: m.ID, raftID: m.RaftID, url: ownURL(k, m.URL), voter: m.Voter, admin: m.Admin, name: m.Name, order: m.Order}
	}
	g.provUntil = st.Applied
	g.publish()
}

// endTrust ends the provisional trust of trustChain once this node's own
// log has applied as far as the chain it checked.
func (g *group) endTrust() {
	if g.provUntil > 0 && g.st.Applied >= g.provUntil {
		g.provisional = map[[32]byte]viewMember{}
		g.provUntil = 0
	}
}

// onBehindAnswer handles a peer's refusal of a frame of group g, sent to
// member to, with a behind notice (see fromStranger).
func (n *Node) onBehindAnswer(g *group, to [32]byte, be *behindError) {
	env, err := crypto.Verify(be.notice)
	if err != nil || env.Type != crypto.TypeBehind || env.Group != g.id || env.Sender != to || env.To != n.self.Sign {
		n.reject(env, "malformed behind notice", err)
		return
	}
	n.onBehind(g, env)
}

// onBehind answers a member's behind notice (env, checked, from a member)
// by pushing it the log after the index it applied, unless this node has
// applied no more or already pushes to it.
func (n *Node) onBehind(g *group, env *crypto.Envelope) {
	var b behindBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.URL) > maxPeerURL {
		n.reject(env, "malformed behind notice", err)
		return
	}
	v := g.view.Load()
	m, ok := v.members[env.Sender]
	if !ok || b.Applied >= v.applied || !v.self {
		return
	}
	url := m.url
	if b.URL != "" && urlOf(env.Sender, b.URL) {
		url = b.URL
		// Like an address announcement: a member can only redirect
		// traffic meant for itself.
		_ = g.do(n.ctx, func() {
			if g.st.Members[env.Sender] != nil && g.peerURL(env.Sender, g.st.Members[env.Sender].URL) != b.URL {
				g.urlHint[env.Sender] = b.URL
			}
		})
	}
	if url == "" {
		return
	}
	k := pushKey{g.id, env.Sender}
	c := &n.catchUps
	c.mu.Lock()
	busy := c.pushing[k]
	c.pushing[k] = true
	c.mu.Unlock()
	if busy {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.pushing, k)
			c.mu.Unlock()
		}()
		if err := g.push(env.Sender, url, b.Applied); err != nil {
			n.log.Debug().Err(err).Str("group", g.id.String()).Str("member", shortKey(env.Sender)).Msg("catch-up push")
		}
	}()
}

// push sends member to (at url) the committed entries after index from, a
// chunk at a time, for as long as it asks for more.
func (g *group) push(to [32]byte, url string, from uint64) error {
	n := g.n
	for {
		commit := g.view.Load().applied
		if from >= commit {
			return nil
		}
		ents, err := g.storage.Entries(from+1, commit+1, catchUpChunk)
		if err != nil {
			if errors.Is(err, raft.ErrCompacted) {
				return fmt.Errorf("entries after %d are not held here", from)
			}
			return err
		}
		head, err := state.Encode(&catchUpHead{Commit: commit})
		if err != nil {
			return err
		}
		items := [][]byte{head}
		for _, e := range ents {
			b, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			items = append(items, b)
		}
		payload, err := crypto.EncodeBatch(items)
		if err != nil {
			return err
		}
		frame, err := n.sign(&crypto.Envelope{Type: crypto.TypeCatchUp, Group: g.id, To: to, Payload: payload})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(n.ctx, peerRequestTimeout)
		resp, err := n.cfg.Link.Post(ctx, url, frame)
		cancel()
		if err != nil || len(resp) == 0 {
			return err
		}
		env, err := crypto.Verify(resp)
		if err != nil || env.Type != crypto.TypeBehind || env.Sender != to || env.Group != g.id {
			return fmt.Errorf("unexpected answer to a catch-up: %v", err)
		}
		var b behindBody
		if err := state.Decode(env.Payload, &b); err != nil {
			return fmt.Errorf("malformed behind notice: %w", err)
		}
		if b.Applied == from {
			return errors.New("the member took none of the entries")
		}
		from = b.Applied
	}
}
