package node

import (
	"fmt"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// The host's gate for what members forward besides chat messages (quota.go
// gates those): upkeep (latency maps, checkpoints, addresses), prekeys and
// rekeys, role and settings changes, invites, and membership changes. The
// state machine refuses what a member may not sign, but a refused entry is
// still in every member's log, and the quotas count chat messages only: a
// member forwarding 64 KiB entries of any other kind grew every log by 3
// MB in two seconds (adversary.TestMemberFloodsControlEntries). So the host
// drops, before raft appends them:
//
//   - an entry of a kind no member forwards as a log entry (a join, a
//     leave, a removal and a voter change travel as membership changes; the
//     rest are not log entries at all);
//   - one larger than any valid entry of its kind (controlFrameLimit);
//   - a keeper's entry of a kind a keeper may not sign;
//   - an admin's kind of entry (settings, a rename, a keeper's invite, a
//     change of who is an admin) from a member that is not an admin, and an
//     invite from one that may not invite, or a revocation from one that
//     is neither the invite's inviter nor an admin, by the state the host
//     has applied (an honest member whose role or invite is on its way
//     proposes again: commitUntil);
//   - and, whatever they hold, a member's entries of these kinds and its
//     membership changes beyond an allowance (chargeControl), as a token
//     bucket of bytes: the log grows by at most that much a second for one
//     member besides its quota.
const (
	reasonProposalNotLogKind    = "proposal of an entry of a kind members do not forward"
	reasonProposalTooLarge      = "proposal of an entry larger than its kind may be"
	reasonProposalKeeperKind    = "proposal of an entry a keeper may not sign"
	reasonProposalNotAllowed    = "proposal of an entry its signer's role does not allow"
	reasonProposalOverAllowance = "proposal beyond the member's allowance for entries other than messages"
)

// The allowance for a member's entries other than chat messages: each
// costs its size, at least controlMinCost, from a bucket of controlBurst
// bytes that refills by controlRate a second plus controlRatePerMember for
// each member of the group (latency maps grow with the group). An honest
// member's upkeep at the default intervals is a few hundred bytes every 5
// s, and test configurations that commit latency maps and checkpoints
// every 300 ms stay under 2 KiB a second.
const (
	controlBurst         = 256 << 10
	controlRate          = 4 << 10
	controlRatePerMember = 64
	controlMinCost       = 128
)

// controlBucket is one member's allowance, by raft id.
type controlBucket struct {
	tokens float64
	last   time.Time
}

// controlKinds are the kinds of log entry a member forwards as normal
// entries besides chat messages (a lead entry is the host's own; see
// gateProposal).
var controlKinds = map[crypto.Type]bool{
	crypto.TypeInvite: true, crypto.TypeKeeper: true, crypto.TypeRevoke: true, crypto.TypeAdmin: true,
	crypto.TypeSettings: true, crypto.TypeRename: true, crypto.TypeAddress: true, crypto.TypeLatencyMap: true,
	crypto.TypeCheckpoint: true, crypto.TypeRekey: true, crypto.TypePrekey: true,
}

// controlFrameLimit is the largest frame a valid entry of kind t can be in
// a group of members members, with room to spare (a frame's envelope is
// about 200 bytes): a latency map names every other member (a key and a
// round trip, under 48 bytes each); an address holds a URL of at most 512
// bytes, a rename a name of at most 64, a checkpoint, a rekey, a role
// change and a revocation a few dozen; the largest other kinds are a
// prekey (about 1.4 KiB) and settings with their relays.
func controlFrameLimit(t crypto.Type, members int) int {
	switch t {
	case crypto.TypeLatencyMap:
		return 4<<10 + 64*members
	case crypto.TypeAddress, crypto.TypeRename, crypto.TypeCheckpoint, crypto.TypeRekey, crypto.TypeAdmin, crypto.TypeRevoke:
		return 2 << 10
	}
	return 16 << 10
}

// gateControl returns why the host drops e, a normal entry of kind t signed
// by sender and forwarded by the member of raft id from (its signer: see
// gateProposal), or "" if it lets it through, charged to from's allowance.
func (g *group) gateControl(from uint64, sender [32]byte, t crypto.Type, e *pb.Entry, now time.Time) (reason string, err error) {
	size := len(e.GetData())
	m := g.st.Members[sender]
	switch {
	case !controlKinds[t]:
		return reasonProposalNotLogKind, fmt.Errorf("kind %v", t)
	case size > controlFrameLimit(t, len(g.st.Members)):
		return reasonProposalTooLarge, fmt.Errorf("a %v entry of %d bytes", t, size)
	case m == nil:
		// Not a member by the applied state (admit let it in on the
		// view, which may be ahead): the allowance still counts it.
	case m.Keeper && !state.KeeperMay(t):
		return reasonProposalKeeperKind, fmt.Errorf("kind %v", t)
	case (t == crypto.TypeSettings || t == crypto.TypeRename || t == crypto.TypeKeeper || t == crypto.TypeAdmin) && !m.Admin,
		t == crypto.TypeInvite && !g.st.CanInvite(sender),
		t == crypto.TypeRevoke && !m.Admin && !g.invitedBy(sender, e.GetData()):
		return reasonProposalNotAllowed, fmt.Errorf("kind %v", t)
	}
	if !g.chargeControl(from, size, now) {
		return reasonProposalOverAllowance, nil
	}
	return "", nil
}

// chargeControl takes size bytes (at least controlMinCost) from the
// allowance of the member of raft id from, and reports whether it had them.
func (g *group) chargeControl(from uint64, size int, now time.Time) bool {
	h := &g.hostQuota
	if h.control == nil {
		h.control = map[uint64]*controlBucket{}
	}
	b := h.control[from]
	if b == nil {
		b = &controlBucket{tokens: controlBurst, last: now}
		h.control[from] = b
	}
	rate := float64(controlRate + controlRatePerMember*len(g.st.Members))
	b.tokens = min(controlBurst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	cost := float64(max(size, controlMinCost))
	if b.tokens < cost {
		return false
	}
	b.tokens -= cost
	return true
}

// invitedBy reports whether frame, a revocation, names an open invite that
// inviter made: only its inviter or an admin may revoke one (the state
// machine's rule, state.applyRevoke).
func (g *group) invitedBy(inviter [32]byte, frame []byte) bool {
	env, err := crypto.ParseTrusted(frame)
	if err != nil {
		return false
	}
	var b state.TargetBody
	if state.Decode(env.Payload, &b) != nil || len(b.Target) != 32 {
		return false
	}
	inv, ok := g.st.Invites[[32]byte(b.Target)]
	return ok && inv.Inviter.Sign == inviter
}
