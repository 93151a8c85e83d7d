// Package transcripttest crafts the logs of DeMeS groups for tests and
// benchmarks: the signed entries that a group's members would commit, in
// order, without running nodes or raft. A [Group] applies every entry it
// appends to the group's state machine, so it always knows the members (to
// seal chat messages to) and the transcript chain (to checkpoint), and it can
// append anything at all, rejected entries included.
package transcripttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// Epoch is the time of a crafted group's genesis; each entry is one
// millisecond after the one before, so crafted logs are reproducible.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Identity returns the test identity of seed i: 32 bytes of value i, as the
// test vectors of docs/PROTOCOL.md use.
func Identity(tb testing.TB, i int) *identity.Identity {
	tb.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{byte(i)}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// GroupID returns a fixed 16-byte value derived from i: the seed of a
// crafted group (see [New]), or the id of a group that does not exist.
func GroupID(i int) crypto.GroupID {
	h := sha256.Sum256([]byte{'g', byte(i)})
	return crypto.GroupID(h[:16])
}

// Group is a group's log under construction.
type Group struct {
	ID crypto.GroupID
	// Entries are the entries appended so far, in log order.
	Entries []transcript.Entry
	// State is the group's state after Entries.
	State *state.State

	tb testing.TB
	// chains is the chain after each entry of Entries: every head, which
	// the state machine keeps only for recent entries.
	chains  []crypto.Chain
	next    uint64 // the next log index
	counter uint64
	msgs    uint64

	mu    sync.Mutex // guards rings, for ChatFrame in parallel
	rings map[[32]byte]*crypto.KeyRing
}

// New starts a group's log with its genesis, created by creator under the
// display name nick. seed is the genesis's nonce, so that equal arguments
// give the same group; the group's id is derived from the genesis
// (state.GroupIDOf).
func New(tb testing.TB, seed crypto.GroupID, name string, creator *identity.Identity, nick string) *Group {
	tb.Helper()
	raftID := state.RaftID(creator.Public().Sign)
	genesis := &state.Genesis{
		Name: name, Creator: creator.Public().Bytes(), RaftID: raftID, URL: "sim://" + nick, Nickname: nick, Nonce: seed[:],
	}
	payload, err := state.Encode(genesis)
	if err != nil {
		tb.Fatal(err)
	}
	id := state.GroupIDOf(payload)
	g := &Group{ID: id, State: state.New(id), tb: tb, next: 1, rings: map[[32]byte]*crypto.KeyRing{}}
	frame := g.Sign(creator, crypto.TypeGenesis, payload)
	g.mustAccept(g.AppendConf(state.AddVoter, raftID, frame))
	return g
}

// Now is the time of the next entry.
func (g *Group) Now() time.Time { return Epoch.Add(time.Duration(g.next) * time.Millisecond) }

// Sign encodes body (a state entry body, or raw bytes) and signs it as id in
// an envelope of type t for this group.
func (g *Group) Sign(id *identity.Identity, t crypto.Type, body any) []byte {
	g.tb.Helper()
	return g.SignFor(g.ID, id, t, body)
}

// SignFor is Sign for the group gid, to craft another group's entries.
func (g *Group) SignFor(gid crypto.GroupID, id *identity.Identity, t crypto.Type, body any) []byte {
	g.tb.Helper()
	payload, ok := body.([]byte)
	if !ok {
		var err error
		if payload, err = state.Encode(body); err != nil {
			g.tb.Fatal(err)
		}
	}
	g.counter++
	frame, err := crypto.Sign(id, &crypto.Envelope{Type: t, Group: gid, Counter: g.counter, Time: g.Now().UnixNano(), Payload: payload})
	if err != nil {
		g.tb.Fatal(err)
	}
	return frame
}

// Append appends a normal entry with frame and returns the state machine's
// result.
func (g *Group) Append(frame []byte) state.Result {
	e := transcript.Entry{Index: g.next, Kind: transcript.KindEntry, Frame: frame}
	g.next++
	g.Entries = append(g.Entries, e)
	r := g.State.ApplyEntry(e.Index, frame)
	g.chains = append(g.chains, g.State.Chain)
	return r
}

// AppendConf appends a membership change authorised by frame.
func (g *Group) AppendConf(change state.ConfKind, nodeID uint64, frame []byte) state.Result {
	e := transcript.Entry{Index: g.next, Kind: transcript.KindConf, Change: change, NodeID: nodeID, Frame: frame}
	g.next++
	g.Entries = append(g.Entries, e)
	r := g.State.ApplyConf(e.Index, nodeID, change, frame)
	g.chains = append(g.chains, g.State.Chain)
	return r
}

// Skip leaves n log indexes without a frame, as raft's empty entries after an
// election do.
func (g *Group) Skip(n int) { g.next += uint64(n) }

func (g *Group) mustAccept(r state.Result) state.Result {
	g.tb.Helper()
	if r.Err != nil {
		g.tb.Fatalf("crafted entry at index %d rejected: %v", g.next-1, r.Err)
	}
	return r
}

// Invite appends by's invitation of invitee.
func (g *Group) Invite(by, invitee *identity.Identity) {
	g.tb.Helper()
	g.mustAccept(g.Append(g.Sign(by, crypto.TypeInvite, &state.InviteBody{Invitee: invitee.Public().Bytes(), Expires: g.Now().Add(state.DefaultInviteLifetime).UnixNano()})))
}

// Join appends the join of joiner (invited before) under the display name
// nick.
func (g *Group) Join(joiner *identity.Identity, nick string) {
	g.tb.Helper()
	raftID := state.RaftID(joiner.Public().Sign)
	frame := g.Sign(joiner, crypto.TypeJoin, &state.JoinBody{
		PublicID: joiner.Public().Bytes(), RaftID: raftID, Name: nick, URL: "sim://" + nick, Nonce: []byte("nonce"),
	})
	g.mustAccept(g.AppendConf(state.AddLearner, raftID, frame))
}

// Add is by's Invite of joiner, then joiner's Join.
func (g *Group) Add(by, joiner *identity.Identity, nick string) {
	g.tb.Helper()
	g.Invite(by, joiner)
	g.Join(joiner, nick)
}

// Remove appends by's removal of target.
func (g *Group) Remove(by, target *identity.Identity) {
	g.tb.Helper()
	key := target.Public().Sign
	frame := g.Sign(by, crypto.TypeRemove, &state.TargetBody{Target: key[:]})
	g.mustAccept(g.AppendConf(state.Remove, state.RaftID(target.Public().Sign), frame))
}

// NextMessageID returns a fresh message id; ids are derived from the group
// and a counter, so crafted logs are reproducible up to age's randomness.
func (g *Group) NextMessageID() [16]byte {
	g.msgs++
	var b [24]byte
	copy(b[:16], g.ID[:])
	binary.BigEndian.PutUint64(b[16:], g.msgs)
	h := sha256.Sum256(b[:])
	return [16]byte(h[:16])
}

// SenderKey returns author's sender key for the current epoch, as a node
// keeps it: the same key until the member set changes.
func (g *Group) SenderKey(author *identity.Identity) *crypto.SenderKey {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.rings[author.Public().Sign]
	if r == nil {
		r = crypto.NewKeyRing(author, g.ID)
		g.rings[author.Public().Sign] = r
	}
	// nil: a crafted author never restarts, so it holds no key learnt
	// again from the log, only the ones it made.
	return r.SealingKey(g.State.Epoch, nil)
}

// ChatFrame returns the signed chat envelope of author's message id with
// text, sealed under author's sender key, with the key header to the current
// members unless the group has registered the key, without appending it (as
// a node seals). It only reads the group, so calls may run in parallel
// (between appends) to craft many messages fast.
func (g *Group) ChatFrame(author *identity.Identity, id [16]byte, text string) []byte {
	g.tb.Helper()
	k := g.SenderKey(author)
	var header []identity.PublicID
	if _, ok := g.State.KeyRegistered(author.Public().Sign, k.ID); !ok {
		header = g.State.Recipients()
	}
	return g.ChatFrameWith(author, id, text, k, header)
}

// ChatFrameWith is ChatFrame sealed under key, with a key header to header
// (none if nil): anything at all, for tests of the state machine's rules.
func (g *Group) ChatFrameWith(author *identity.Identity, id [16]byte, text string, key *crypto.SenderKey, header []identity.PublicID) []byte {
	g.tb.Helper()
	m := &crypto.Message{Group: g.ID, ID: id, Head: g.State.Chain.Head, Time: g.Now().UnixNano(), Body: []byte(text)}
	sealed, err := crypto.SealMessage(author, m, key, header)
	if err != nil {
		g.tb.Fatal(err)
	}
	payload, err := state.Encode(&state.ChatBody{ID: id[:], Sealed: sealed})
	if err != nil {
		g.tb.Fatal(err)
	}
	// Sign directly rather than through Sign, which counts: this may run
	// in parallel.
	frame, err := crypto.Sign(author, &crypto.Envelope{Type: crypto.TypeChat, Group: g.ID, Counter: uint64(g.Now().UnixNano()), Time: g.Now().UnixNano(), Payload: payload})
	if err != nil {
		g.tb.Fatal(err)
	}
	return frame
}

// Chat appends author's message with text and returns its index. The message
// must be accepted.
func (g *Group) Chat(author *identity.Identity, text string) uint64 {
	g.tb.Helper()
	g.mustAccept(g.Append(g.ChatFrame(author, g.NextMessageID(), text)))
	return g.next - 1
}

// Checkpoint appends signer's checkpoint of the current chain head.
func (g *Group) Checkpoint(signer *identity.Identity) {
	g.tb.Helper()
	c := g.State.Chain
	g.mustAccept(g.Append(g.CheckpointFrame(signer, c.Index, c.Head)))
}

// CheckpointFrame returns signer's checkpoint of head at index, which need
// not be true.
func (g *Group) CheckpointFrame(signer *identity.Identity, index uint64, head [32]byte) []byte {
	g.tb.Helper()
	return g.Sign(signer, crypto.TypeCheckpoint, &state.CheckpointBody{Index: index, Head: head[:]})
}

// Latency appends member's latency map: rtt in microseconds to each peer.
func (g *Group) Latency(member *identity.Identity, peers []*identity.Identity, rttMicros []uint32) {
	g.tb.Helper()
	b := &state.LatencyBody{RTTus: rttMicros}
	for _, p := range peers {
		key := p.Public().Sign
		b.Peers = append(b.Peers, key[:])
	}
	g.mustAccept(g.Append(g.Sign(member, crypto.TypeLatencyMap, b)))
}

// Build returns the transcript of the log as exporter exports it, at the
// time of the next entry: with exporter's own signed head through the last
// entry and the heads of attesters, as a node adds the statements it heard.
func (g *Group) Build(exporter *identity.Identity, attesters ...*identity.Identity) []byte {
	g.tb.Helper()
	var attested [][]byte
	if n := len(g.Entries); n > 0 {
		for _, id := range append([]*identity.Identity{exporter}, attesters...) {
			attested = append(attested, g.Head(id, g.Entries[n-1].Index))
		}
	}
	doc, err := transcript.BuildAttested(exporter, g.ID, g.Entries, attested, g.Now())
	if err != nil {
		g.tb.Fatal(err)
	}
	return doc
}

// Head returns id's signed statement (a crypto.TypeHead envelope) of the
// group's chain head through index, as the log stands now.
func (g *Group) Head(id *identity.Identity, index uint64) []byte {
	g.tb.Helper()
	head := g.HeadThrough(index)
	return g.Sign(id, crypto.TypeHead, &state.CheckpointBody{Index: index, Head: head[:]})
}

// HeadThrough returns the group's chain head through index, as the log
// stands now, however old index is.
func (g *Group) HeadThrough(index uint64) [32]byte {
	g.tb.Helper()
	if index > g.State.Applied {
		g.tb.Fatalf("no head through index %d: the log ends at %d", index, g.State.Applied)
	}
	i := sort.Search(len(g.Entries), func(i int) bool { return g.Entries[i].Index > index })
	if i == 0 {
		return crypto.NewChain(g.ID).Head
	}
	return g.chains[i-1].Head
}

// OpenLog opens, as me, every chat entry of a group's log that me can read
// from the ciphertext alone, as a reader that learns sender keys from the key
// headers in log order would (the headers of rejected entries included), and
// returns the opened messages by log index. It does not ask whether the group
// accepted an entry: callers that care replay the state machine.
func OpenLog(me *identity.Identity, group crypto.GroupID, entries []transcript.Entry) map[uint64]*crypto.Opened {
	ring := crypto.NewKeyRing(me, group)
	out := map[uint64]*crypto.Opened{}
	for _, c := range SealedChats(entries) {
		k, err := ring.Open(c.Ref(), c.Sealed)
		if err != nil {
			continue
		}
		if o, err := crypto.OpenMessage(k, group, c.Sealed, c.Sender, c.ID); err == nil {
			out[c.Index] = o
		}
	}
	return out
}

// SealedChat is a chat entry of a log as any reader of the log sees it,
// without a key.
type SealedChat struct {
	Index  uint64
	Sender [32]byte // the author's signing key
	ID     [16]byte // the message id
	Sealed []byte   // the sealed message
	Info   *crypto.SealedInfo
}

// Ref names the sender key c is sealed under.
func (c SealedChat) Ref() crypto.KeyRef {
	return crypto.KeyRef{Sender: c.Sender, Epoch: c.Info.Epoch, ID: c.Info.KeyID}
}

// SealedChats returns, in log order, the chat entries of entries whose
// frame verifies and whose body and sealed message decode. It does not ask
// whether the group accepted them.
func SealedChats(entries []transcript.Entry) []SealedChat {
	var out []SealedChat
	for _, e := range entries {
		if e.Kind == transcript.KindConf {
			continue
		}
		env, err := crypto.Verify(e.Frame)
		if err != nil || env.Type != crypto.TypeChat {
			continue
		}
		var b state.ChatBody
		if state.Decode(env.Payload, &b) != nil || len(b.ID) != 16 {
			continue
		}
		info, err := crypto.ReadSealed(b.Sealed)
		if err != nil {
			continue
		}
		out = append(out, SealedChat{Index: e.Index, Sender: env.Sender, ID: [16]byte(b.ID), Sealed: b.Sealed, Info: info})
	}
	return out
}
