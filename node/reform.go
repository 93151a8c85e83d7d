package node

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Re-forming (docs/PROTOCOL.md, "Re-forming").
//
// A group halted after a fork (fork.go) never commits again: whichever
// history is the true one, going on would extend the fork. Its members go
// on in a successor: a new group, with its own raft cluster and id, whose
// genesis (state.SuccessorGenesis) says which history it continues: the
// halted group, the index through which its creator's history of it is
// taken and the chain head there, and the member left out. The flow:
//
//  1. Reform on a halted group, when no other member offered a successor
//     this node can join, starts one (startSuccessor): the continuation
//     point is the latest index through which every member it invites that
//     it heard from signed the same head as its own (so that those members
//     can check it against their own history), the member left out is the
//     one its proof names unless the person names another.
//  2. It invites every other current member of the halted group, under the
//     group's ordinary rules: a signed invite entry each, committed in the
//     successor, whose only voter it is.
//  3. It offers the successor to each of them directly (a TypeSuccessor
//     envelope of the halted group: the successor's signed genesis and the
//     member's invite code), at once and then every offerEvery from the
//     halted group's upkeep, until the member joined or its invite closed.
//  4. A member's node checks an offer as it comes (takeOffer: signatures,
//     the successor's id against its genesis, the inviter against the
//     genesis's creator and the sender, this group) and keeps the latest of
//     each sender, with whether its own history has the same head through
//     the index the successor continues from.
//  5. Reform on that member's node joins the offer it can accept (not
//     leaving it out, not from the member its own proof names, the same
//     head) with the lowest successor id; an offer it cannot accept is
//     shown in its status with the reason, never joined.
//
// Two members that re-form at the same moment start two successors. The
// rule that settles it is the lowest successor id: a member that holds
// acceptable offers of both joins the lower, and a member in the higher one
// that reforms again moves to the lower (status lists both).

// offerEvery is how often at most a halted group offers its successors
// again to the members that have not joined them.
const offerEvery = 2 * time.Second

// maxOfferFrame bounds a TypeSuccessor envelope's payload: a genesis and an
// invite code, both small.
const maxOfferFrame = 8 << 10

// reasonBadOffer is the reason an offer of a successor is refused.
const reasonBadOffer = "bad successor offer"

// reformBook is what this node knows of successor groups. Safe from any
// goroutine.
type reformBook struct {
	mu sync.Mutex
	// conts caches what each group on this node continues (nil: it
	// continues none), read once from its genesis.
	conts map[crypto.GroupID]*successorOf
	// offers are the successors offered to this node, by halted group and
	// sender: the latest of each.
	offers map[crypto.GroupID]map[[32]byte]*offer
	// offered is when each halted group last sent its offers.
	offered map[crypto.GroupID]time.Time
}

// successorOf is a successor group's continuation, checked.
type successorOf struct {
	group   crypto.GroupID // the successor
	name    string         // its name in its genesis
	old     crypto.GroupID // the halted group it continues
	index   uint64
	head    [32]byte
	without identity.PublicID
	creator identity.PublicID
	genesis []byte // the signed genesis frame
}

// offer is a successor another member offered this node.
type offer struct {
	succ    *successorOf
	code    string // this node's invite code to it
	expires time.Time
	// known is set when this node has applied the halted group through
	// the index the successor continues from; matches when its head there
	// is the successor's.
	known, matches bool
}

// successorOffer is the payload of a TypeSuccessor envelope.
type successorOffer struct {
	_       struct{} `cbor:",toarray"`
	Genesis []byte   // the successor's signed genesis frame
	Invite  []byte   // the invite code's signed frame (the code without its prefix)
}

// parseSuccessor checks a signed genesis frame of a successor group: a
// genesis, signed by the creator it names, of the group whose id is its
// hash, with a continuation.
func parseSuccessor(frame []byte) (*successorOf, error) {
	env, err := crypto.Verify(frame)
	if err != nil {
		return nil, fmt.Errorf("the genesis does not verify: %w", err)
	}
	if env.Type != crypto.TypeGenesis {
		return nil, fmt.Errorf("a %s in place of a genesis", env.Type)
	}
	gen, cont, err := state.DecodeGenesis(env.Payload)
	if err != nil {
		return nil, err
	}
	if cont == nil {
		return nil, errors.New("the genesis continues no group")
	}
	if state.GroupIDOf(env.Payload) != env.Group {
		return nil, fmt.Errorf("the genesis is not that of group %s (a group's id is its genesis's hash)", env.Group)
	}
	creator, err := identity.PublicIDFromBytes(gen.Creator)
	if err != nil || creator.Sign != env.Sender {
		return nil, errors.New("the genesis is not signed by its creator")
	}
	without, _ := identity.PublicIDFromBytes(cont.Without) // checked by DecodeGenesis
	return &successorOf{group: env.Group, name: gen.Name, old: crypto.GroupID(cont.Group), index: cont.Index,
		head: [32]byte(cont.Head), without: without, creator: creator, genesis: frame}, nil
}

// parseOffer checks the payload of a TypeSuccessor envelope that member
// sender sent this node (self) in the halted group old.
func parseOffer(old crypto.GroupID, self identity.PublicID, env *crypto.Envelope) (*offer, error) {
	var b successorOffer
	if len(env.Payload) > maxOfferFrame || state.Decode(env.Payload, &b) != nil {
		return nil, errors.New("malformed offer")
	}
	s, err := parseSuccessor(b.Genesis)
	if err != nil {
		return nil, err
	}
	if s.old != old {
		return nil, fmt.Errorf("the successor continues group %s, not %s", s.old, old)
	}
	if s.creator.Sign != env.Sender {
		return nil, errors.New("the successor was started by another member than the sender")
	}
	code := InvitePrefix + base64.RawURLEncoding.EncodeToString(b.Invite)
	inv, err := ParseInvite(code)
	switch {
	case err != nil:
		return nil, err
	case inv.Group != s.group || inv.Inviter != s.creator || inv.Keeper:
		return nil, errors.New("the invite code is not the successor creator's invite to it")
	case inv.Invitee != self:
		return nil, errors.New("the invite code is for another member")
	}
	return &offer{succ: s, code: code, expires: inv.Expires}, nil
}

// takeOffer keeps a successor that a member of halted group g offered this
// node, with whether this node's history matches it.
func (n *Node) takeOffer(ctx context.Context, g *group, env *crypto.Envelope) ([]byte, error) {
	o, err := parseOffer(g.id, n.self, env)
	if err != nil {
		return nil, n.reject(env, reasonBadOffer, err)
	}
	if err := g.do(ctx, func() {
		mine, ok := g.st.HeadThrough(o.succ.index)
		o.known, o.matches = ok, ok && mine == o.succ.head
	}); err != nil {
		return nil, err
	}
	b := &n.reform
	b.mu.Lock()
	if b.offers == nil {
		b.offers = map[crypto.GroupID]map[[32]byte]*offer{}
	}
	if b.offers[g.id] == nil {
		b.offers[g.id] = map[[32]byte]*offer{}
	}
	old := b.offers[g.id][env.Sender]
	b.offers[g.id][env.Sender] = o
	b.mu.Unlock()
	if old == nil || old.succ.group != o.succ.group || old.matches != o.matches {
		n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	}
	return nil, nil
}

// continuationOf returns what group g continues, nil if none (or not known
// yet: a joiner that has not applied the genesis). It reads the genesis
// from the store once.
func (n *Node) continuationOf(g *group) *successorOf {
	b := &n.reform
	b.mu.Lock()
	c, ok := b.conts[g.id]
	b.mu.Unlock()
	if ok {
		return c
	}
	if g.view.Load().applied < 1 {
		return nil
	}
	ents, err := n.store.Entries(g.id[:], 1, 2, math.MaxUint64)
	if err != nil {
		return nil
	}
	if es := transcriptEntries(1, ents); len(es) == 1 {
		c, _ = parseSuccessor(es[0].Frame)
	}
	n.noteContinuation(g.id, c)
	return c
}

func (n *Node) noteContinuation(gid crypto.GroupID, c *successorOf) {
	b := &n.reform
	b.mu.Lock()
	if b.conts == nil {
		b.conts = map[crypto.GroupID]*successorOf{}
	}
	b.conts[gid] = c
	b.mu.Unlock()
}

// successorsHere returns the groups on this node, this node a member, that
// continue the group old, lowest id first.
func (n *Node) successorsHere(old crypto.GroupID) []*group {
	var out []*group
	for _, s := range n.sortedGroups() {
		if c := n.continuationOf(s); c != nil && c.old == old && s.view.Load().self {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].id, out[j].id) })
	return out
}

func lessID(a, b crypto.GroupID) bool { return string(a[:]) < string(b[:]) }

// offersFor returns the offers this node holds for halted group old.
func (n *Node) offersFor(old crypto.GroupID) []*offer {
	b := &n.reform
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*offer, 0, len(b.offers[old]))
	for _, o := range b.offers[old] {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].succ.group, out[j].succ.group) })
	return out
}

// suspectOf is the public id of the member a fork alert names as the one
// to leave out: the host when known and not this node, else the member
// whose evidence differs; "" when it names neither.
func suspectOf(a *api.ForkAlert, self string) string {
	if a == nil {
		return ""
	}
	if a.Host != "" && a.Host != self {
		return a.Host
	}
	if a.Peer != self {
		return a.Peer
	}
	return ""
}

// offerProblem says why this node, in halted group g as view v shows it,
// will not join offer o ("" when it can). without, when not zero, is the
// member the person asked to leave out.
func (n *Node) offerProblem(v *view, o *offer, without identity.PublicID) string {
	s := o.succ
	by := memberName(v, s.creator)
	switch {
	case v.fork == nil:
		return "this group is not halted on your node"
	case s.without == n.self:
		return fmt.Sprintf("it leaves you out: %s's node found your history different from theirs", by)
	case s.creator.String() == suspectOf(v.fork, n.selfID):
		return fmt.Sprintf("it was started by %s, the member your node found showing members different histories", by)
	case v.members[s.creator.Sign].keeper:
		// A keeper reads nothing: in a successor it started, it would be
		// an ordinary member, sealed every key (and its creator, an admin).
		return fmt.Sprintf("it was started by %s, a keeper of this group, which reads nothing and starts no group", by)
	case !without.IsZero() && s.without != without:
		return fmt.Sprintf("it leaves out %s, not %s", memberName(v, s.without), memberName(v, without))
	case !o.known:
		return fmt.Sprintf("your node holds this group's history only through index %d, and the successor continues it from index %d", v.applied, s.index)
	case !o.matches:
		return fmt.Sprintf("your history of this group through index %d differs from the one %s's successor continues: it continues another fork", s.index, by)
	case time.Now().After(o.expires):
		return "its invite expired"
	}
	return ""
}

// memberName is id's name in view v (see view.memberLabel: with its
// fingerprint after a name another member goes by too), else its
// fingerprint.
func memberName(v *view, id identity.PublicID) string {
	if m, name, ok := v.memberLabel(id.Sign); ok && m == id {
		return name
	}
	return id.Fingerprint()
}

// continuation words c for the API, with names from the halted group's
// view v when this node holds it (nil otherwise).
func (n *Node) continuation(c *successorOf, v *view) api.Continuation {
	a := api.Continuation{GroupID: c.old.String(), Name: c.name, Index: c.index, Head: hex.EncodeToString(c.head[:]),
		Without: c.without.String(), By: c.creator.String()}
	withoutName, byName := c.without.Fingerprint(), c.creator.Fingerprint()
	if v != nil {
		a.Name = v.name
		withoutName, byName = memberName(v, c.without), memberName(v, c.creator)
	}
	a.WithoutName, a.ByName = withoutName, byName
	starter := byName
	if c.creator == n.self {
		starter = "you"
	}
	a.Message = fmt.Sprintf("Continued from %q without %s, after members were shown different histories: %s started this group from the history its members held alike through entry %d. The old group's history stays readable on your node.",
		a.Name, withoutName, starter, c.index)
	return a
}

// reformStatus adds to a group's status what it continues (a successor)
// or what continues it (a halted group).
func (n *Node) reformStatus(g *group, v *view, gs *GroupStatus) {
	if c := n.continuationOf(g); c != nil {
		var ov *view
		if old := n.group(c.old); old != nil {
			ov = old.view.Load()
		}
		a := n.continuation(c, ov)
		gs.Continues = &a
	}
	if v.fork == nil {
		return
	}
	member := map[crypto.GroupID]bool{}
	for _, s := range n.successorsHere(g.id) {
		member[s.id] = true
		if c := n.continuationOf(s); c != nil {
			gs.Successors = append(gs.Successors, api.SuccessorOffer{GroupID: s.id.String(), Continues: n.continuation(c, v), Member: true})
		}
	}
	for _, o := range n.offersFor(g.id) {
		if member[o.succ.group] {
			continue
		}
		gs.Successors = append(gs.Successors, api.SuccessorOffer{GroupID: o.succ.group.String(),
			Continues: n.continuation(o.succ, v), Problem: n.offerProblem(v, o, identity.PublicID{})})
	}
}
