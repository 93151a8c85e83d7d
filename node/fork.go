package node

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Forks (docs/PROTOCOL.md, "Forks").
//
// The host orders the group's log and relays it. A malicious host can show
// two members different entries at the same index, and raft, which trusts
// its leader, does not notice: it compares terms, not contents. So members
// compare notes directly. Every ping and pong carries its sender's signed
// statement (crypto.TypeHead) of its transcript chain head through the log
// index it has applied; a member checks each statement against its own
// chain once it has applied that far. Two signed statements of different
// heads through the same index prove that the two members hold different
// histories. Each chat record also names the head its author had seen, which
// must be one of the reader's own earlier heads.
//
// A node that finds a fork keeps the proof (both statements), halts the
// group (it proposes, steps and commits nothing more in it: whichever
// history is the true one, going on would extend the fork), keeps the proof
// across restarts and tells the user. An append from the host that
// contradicts an entry this node has committed (raft would drop it without
// a word) is such a proof too. As a last line of defence, a panic of raft
// on a peer's message halts the group rather than the whole node.
//
// A member cannot tell a host that forked the log from a member that signs a
// false statement: both end in a halt, and the proof names the member whose
// statement differs. Never going on with a forked history costs that; the
// threat model says so. A chat record's head, by contrast, is only a cue: a
// mismatch has the node ask the author for its statement at once, since
// one member must not halt the whole group with one message.

// headLookBack bounds how far back a chat record's head is looked for among
// the reader's own heads (see state.HeadBefore).
const headLookBack = 4096

// maxHeadFrame bounds the signed statement a ping or pong carries.
const maxHeadFrame = 512

// headClaim is a member's signed statement of its chain head through a log
// index, verified.
type headClaim struct {
	signer [32]byte
	index  uint64
	head   [32]byte
	frame  []byte // the signed TypeHead envelope
}

// ownStatement is this node's latest signed statement, for its pings and
// pongs.
type ownStatement struct {
	index uint64
	frame []byte
}

// forkProof is what a node keeps when it finds a fork, in the store's
// group metadata: enough for anyone to check offline that two members
// signed different heads through the same index.
type forkProof struct {
	_ struct{} `cbor:",toarray"`
	// Index is the log index through which the histories differ.
	Index uint64
	// Mine is this node's signed TypeHead statement through Index.
	Mine []byte
	// Theirs is the member's signed TypeHead statement; nil for a
	// conflicting append.
	Theirs []byte
	// Peer is the signing key of the member Theirs is from, empty if none.
	Peer []byte
	// Host is the signing key of the host when it was found, if known.
	Host []byte
	// Kind says what was found (the fork* constants).
	Kind uint8
	// At is when, in unix nanoseconds.
	At int64
}

// The kinds of fork evidence.
const (
	forkStatements uint8 = iota + 1 // two TypeHead statements differ
	_                               // reserved (a record's head alone is no proof)
	forkAppend                      // the host sent an entry conflicting with a committed one
	forkRaftPanic                   // raft refused a peer's message by panicking
)

const (
	reasonHalted     = "group halted after a fork"
	reasonRecordHead = "message names a head not in this history"
)

// errHeadStatement is wrapped by every reason to refuse a statement.
var errHeadStatement = errors.New("bad head statement")

// parseHeadClaim checks a statement that member sender carried in a ping or
// pong of group gid: a TypeHead envelope of that group, signed by sender,
// with a well-formed body.
func parseHeadClaim(gid crypto.GroupID, sender [32]byte, frame []byte) (headClaim, error) {
	if len(frame) > maxHeadFrame {
		return headClaim{}, fmt.Errorf("%w: %d bytes", errHeadStatement, len(frame))
	}
	env, err := crypto.Verify(frame)
	if err != nil {
		return headClaim{}, fmt.Errorf("%w: %w", errHeadStatement, err)
	}
	if env.Type != crypto.TypeHead || env.Group != gid || env.Sender != sender {
		return headClaim{}, fmt.Errorf("%w: a %s of group %s by another member", errHeadStatement, env.Type, env.Group)
	}
	var b state.CheckpointBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.Head) != 32 || b.Index == 0 {
		return headClaim{}, fmt.Errorf("%w: malformed body", errHeadStatement)
	}
	return headClaim{signer: sender, index: b.Index, head: [32]byte(b.Head), frame: frame}, nil
}

// signHead signs this node's statement of its chain head through index.
func (g *group) signHead(index uint64, head [32]byte) ([]byte, error) {
	body, err := state.Encode(&state.CheckpointBody{Index: index, Head: head[:]})
	if err != nil {
		return nil, err
	}
	return g.n.sign(&crypto.Envelope{Type: crypto.TypeHead, Group: g.id, Payload: body})
}

// refreshStatement signs a new statement when the applied index moved since
// the last one. It runs on the group's goroutine before each round of pings,
// so a statement costs one signature per ping interval at most.
//
// A halted group's node goes on stating its history, which is how the
// members that hold the other one learn of the fork too; it states it
// through the index of the fork, not through the last entry it applied.
// A halted node still applies the committed log it holds, while the victim
// of a host that forked may be held further back than that (the host stops
// telling it what is committed, and halted nodes tell it nothing): a
// statement past what the victim has applied is one it keeps and never
// checks, and it would see only a group without a host
// (TestForkFoundByALaggingVictim).
func (g *group) refreshStatement() {
	idx := g.st.Applied
	if p := g.fork; p != nil && p.Index > 0 && p.Index < idx {
		idx = p.Index
	}
	if idx == 0 {
		return
	}
	if cur := g.statement.Load(); cur != nil && cur.index == idx {
		return
	}
	head, _ := g.st.HeadThrough(idx)
	frame, err := g.signHead(idx, head)
	if err != nil {
		return
	}
	g.statement.Store(&ownStatement{index: idx, frame: frame})
}

// statementFrame returns this node's latest signed statement, nil if none
// yet. Safe from any goroutine.
func (g *group) statementFrame() []byte {
	if s := g.statement.Load(); s != nil {
		return s.frame
	}
	return nil
}

// noteHead hands a member's statement to the group's goroutine. Safe from
// any goroutine; never blocks: a statement lost to a full queue comes again
// with the next ping.
func (g *group) noteHead(c headClaim) {
	if g.halted.Load() {
		return
	}
	select {
	case g.headc <- c:
	default:
	}
}

// onHead checks a member's statement now if this node has applied that far,
// or else keeps it until it has. Only the oldest unchecked statement of each
// member is kept: a member ahead keeps sending newer ones, and checking the
// oldest first bounds the memory and still compares every member's history
// with this node's, one index at a time.
func (g *group) onHead(c headClaim) {
	if g.fork != nil {
		return
	}
	if c.index <= g.st.Applied {
		g.checkHead(c)
		return
	}
	if _, ok := g.pendingHeads[c.signer]; !ok {
		g.pendingHeads[c.signer] = c
	}
}

// checkPendingHeads checks the kept statements this node has now applied
// far enough for. It runs after each batch of applied entries.
func (g *group) checkPendingHeads() {
	for k, c := range g.pendingHeads {
		if g.fork != nil {
			return
		}
		if c.index <= g.st.Applied {
			delete(g.pendingHeads, k)
			g.checkHead(c)
		}
	}
}

// checkHead compares a member's statement with this node's chain through
// the same index, and halts the group when they differ.
func (g *group) checkHead(c headClaim) {
	mine, ok := g.headThrough(c.index)
	if !ok {
		return
	}
	if mine == c.head {
		g.noteAgreement(c)
		return
	}
	frame, err := g.signHead(c.index, mine)
	if err != nil {
		g.n.log.Error().Err(err).Msg("cannot sign the statement for a fork proof")
	}
	g.halt(&forkProof{Kind: forkStatements, Index: c.index, Mine: frame, Theirs: c.frame, Peer: c.signer[:]})
}

// checkRecordHead checks that an accepted chat message's record names a
// head this node's history has before the message. When it does not,
// either the host showed its author another history or the author wrote a
// false head; one member must not be able to halt the group with one
// message, so this node asks the author for its signed statement at once
// (a ping), and the statements decide (checkHead): a fork halts the group,
// a lie is counted against the message's author.
func (g *group) checkRecordHead(c *state.Chat, head [32]byte) {
	found, known := g.st.HeadBefore(head, c.Index, headLookBack)
	if found || !known {
		return
	}
	g.n.countReject(reasonRecordHead, "a message names a transcript head this node's history does not have; asking its author for its signed head")
	v := g.view.Load()
	if m, ok := v.members[c.Sender]; ok && c.Sender != g.n.self.Sign && m.url != "" {
		g.pingMembers(v, func(k [32]byte) bool { return k == c.Sender })
	}
}

// conflictingAppend returns the first entry of a leader's append that
// conflicts with an entry this node has applied (another term, or other
// bytes), 0 if none. An honest leader never sends one: a committed entry is
// in the log of every later leader, as it is. raft drops such an append
// (or, where it reaches its conflict check, panics); here it is a fork.
//
// Only applied entries count, not everything raft counts as committed: an
// entry raft has just taken in place of an uncommitted one, and committed
// in the same step, is not in the storage yet, which still holds the one it
// replaced until the next Ready is written (the fault-schedule runner found
// that, as a false fork). An applied entry was written before it was
// applied, and is never replaced.
//
// Only appends of the current term or a later one count: an old leader's
// append that arrives late may carry entries that were never committed and
// have been replaced since, and raft drops it for its term (the
// fault-schedule runner, seed 231 with 5 nodes, found that one too).
func (g *group) conflictingAppend(m *pb.Message) uint64 {
	// Most appends carry only entries past the applied index: those are
	// let through before raft's status (a copy of its hard state) is read.
	applied := g.st.Applied
	if m.GetType() != pb.MsgApp || len(m.GetEntries()) == 0 || m.GetEntries()[0].GetIndex() > applied {
		return 0
	}
	if m.GetTerm() < g.rn.BasicStatus().GetTerm() {
		return 0
	}
	for _, e := range m.GetEntries() {
		if e.GetIndex() > applied {
			return 0
		}
		t, err := g.storage.Term(e.GetIndex())
		if err != nil {
			continue // compacted or not stored yet: raft's check stands
		}
		if t != e.GetTerm() {
			return e.GetIndex()
		}
		have, err := g.storage.Entries(e.GetIndex(), e.GetIndex()+1, 0)
		if err == nil && len(have) == 1 && !bytes.Equal(have[0].GetData(), e.GetData()) {
			return e.GetIndex()
		}
	}
	return 0
}

// stepSafely steps a peer's message into raft after refusing an append that
// conflicts with a committed entry (a fork), and halts the group rather
// than the node if raft panics on it all the same.
func (g *group) stepSafely(m *pb.Message) (err error) {
	if idx := g.conflictingAppend(m); idx != 0 {
		g.halt(&forkProof{Kind: forkAppend, Index: idx})
		return fmt.Errorf("append conflicting with committed entry %d: %w", idx, ErrHalted)
	}
	if m.GetType() == pb.MsgApp && m.GetTerm() >= g.term {
		if m.GetFrom() != g.leaderCommitBy {
			g.leaderCommit, g.leaderCommitBy = 0, m.GetFrom() // the last host's word, which may have been a lie
		}
		g.leaderCommit = max(g.leaderCommit, m.GetCommit())
	}
	defer func() {
		if r := recover(); r != nil {
			g.n.log.Error().Str("group", g.id.String()).Str("type", m.GetType().String()).
				Str("panic", fmt.Sprint(r)).Msg("raft panicked on a peer's message; halting the group")
			g.halt(&forkProof{Kind: forkRaftPanic, Index: g.st.Applied})
			err = fmt.Errorf("raft refused a %s: %v: %w", m.GetType(), r, ErrHalted)
		}
	}()
	return g.rn.Step(m)
}

// halt stops the group on this node for good: it keeps the proof in the
// store, stops ticking, stepping and proposing, and tells the user.
func (g *group) halt(p *forkProof) {
	if g.fork != nil {
		return
	}
	p.At = time.Now().UnixNano()
	if k, ok := g.view.Load().byRaft[g.leader]; ok {
		p.Host = k[:]
	}
	g.fork = p
	g.halted.Store(true)
	g.pendingHeads = map[[32]byte]headClaim{}
	if b, err := state.Encode(p); err == nil {
		if err := g.n.store.SaveFork(g.id[:], b); err != nil {
			g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot store the fork proof; the group halts until the node restarts")
		}
	}
	alert := g.forkAlert(g.view.Load())
	g.n.rejects.add(reasonHalted)
	g.n.log.Error().Str("group", g.id.String()).Uint64("index", p.Index).Str("peer", alert.Peer).
		Msg("the group's history forked; halting it: " + alert.Message)
	g.publish()
	g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
}

// readyAllowed reports whether the group's goroutine may take raft's
// Readys. A halted group takes none from the network (it neither ticks nor
// steps), but still applies the committed log it holds, as at a restart,
// so that its member keeps reading its history; its Readys send nothing
// (handleReady). After a panic of raft, raft is left alone altogether.
func (g *group) readyAllowed() bool {
	return g.fork == nil || g.fork.Kind != forkRaftPanic
}

// loadFork restores a stored proof when the group starts, so that a
// halted group stays halted.
func (g *group) loadFork() {
	b, err := g.n.store.Fork(g.id[:])
	if err != nil || b == nil {
		return
	}
	var p forkProof
	if err := state.Decode(b, &p); err != nil {
		g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("the stored fork proof is unreadable; the group stays halted")
		p = forkProof{Kind: forkRaftPanic}
	}
	g.fork = &p
	g.halted.Store(true)
}

// forkAlert words g.fork for the user, in view v; nil when there is none.
func (g *group) forkAlert(v *view) *api.ForkAlert {
	p := g.fork
	if p == nil {
		return nil
	}
	a := &api.ForkAlert{Index: p.Index, Detected: time.Unix(0, p.At).UTC()}
	name := func(key []byte) (string, string) {
		if len(key) != 32 {
			return "", ""
		}
		id, who, ok := v.memberLabel([32]byte(key))
		if !ok {
			return "", "a former member"
		}
		return id.String(), who
	}
	a.Peer, a.PeerName = name(p.Peer)
	var host string
	a.Host, host = name(p.Host)
	if host == "" {
		host = "the host"
	} else {
		host += " (the host)"
	}
	tail := fmt.Sprintf(" (they differ by entry %d). This group is halted on your node: nothing more is sent or received in it.", p.Index)
	switch {
	case p.Kind == forkAppend:
		a.Message = fmt.Sprintf("%s sent you a history that contradicts entries it had already confirmed (entry %d). This group is halted on your node: nothing more is sent or received in it.", host, p.Index)
	case p.Kind == forkRaftPanic:
		a.Message = "Your node received group traffic it could not reconcile with its history. This group is halted on your node: nothing more is sent or received in it."
	case a.Peer != "" && a.Peer == a.Host:
		a.Message = fmt.Sprintf("%s states a history of this group that differs from the one it showed you", host) + tail
	default:
		a.Message = fmt.Sprintf("%s showed you and %s different histories of this group", host, a.PeerName) + tail
	}
	return a
}

// errHalted is the error for an action refused because the group is halted.
func (g *group) errHalted(action string) error {
	msg := "this group is halted"
	if a := g.forkAlert(g.view.Load()); a != nil {
		msg = a.Message
	}
	return fmt.Errorf("%s: %s: %w", action, msg, ErrHalted)
}

// noteAgreement keeps a member's statement that matched this node's
// history, the latest per member: the attestations a transcript carries
// (transcript.BuildAttested), stored with the history by saveHeard.
func (g *group) noteAgreement(c headClaim) {
	if old, ok := g.heard[c.signer]; ok && old.index >= c.index {
		return
	}
	g.heard[c.signer] = c
	g.heardDirty = true
}

// heardInterval is how often at most the kept statements are written to
// the store: they change at every ping, and a lost one is soon replaced.
const heardInterval = 5 * time.Second

// saveHeard writes the kept statements to the store when they changed and
// heardInterval has passed (or when final, as the group stops).
func (g *group) saveHeard(final bool) {
	if !g.heardDirty || (!final && time.Since(g.heardSaved) < heardInterval) {
		return
	}
	frames := make([][]byte, 0, len(g.heard))
	for _, c := range g.heard {
		frames = append(frames, c.frame)
	}
	b, err := state.Encode(frames)
	if err == nil {
		err = g.n.store.SaveHeads(g.id[:], b)
	}
	if err != nil {
		g.n.log.Warn().Err(err).Str("group", g.id.String()).Msg("cannot store the members' signed heads")
		return
	}
	g.heardDirty, g.heardSaved = false, time.Now()
}

// loadHeard reads the kept statements back when the group starts. Each is
// checked again as it was when it came: a member of the group, this group.
func (g *group) loadHeard() {
	b, err := g.n.store.Heads(g.id[:])
	if err != nil || b == nil {
		return
	}
	var frames [][]byte
	if err := state.Decode(b, &frames); err != nil {
		return
	}
	for _, f := range frames {
		env, err := crypto.Verify(f)
		if err != nil {
			continue
		}
		if c, err := parseHeadClaim(g.id, env.Sender, f); err == nil {
			g.heard[c.signer] = c
		}
	}
}

// attestations returns the kept statements through at most index, and
// this node's own statement through index, for a transcript that ends
// there. It runs on the group's goroutine.
func (g *group) attestations(index uint64) [][]byte {
	var out [][]byte
	for _, c := range g.heard {
		if c.index <= index {
			out = append(out, c.frame)
		}
	}
	if head, ok := g.headThrough(index); ok {
		if own, err := g.signHead(index, head); err == nil {
			out = append(out, own)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}
