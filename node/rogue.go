package node

// This file is the hook surface of the adversary test suite (package
// adversary): it lets a test turn a real node into a malicious member that
// puts arbitrary frames in its group's log, and read back the log an honest
// node holds. A malicious member can do all of this with a modified build of
// its own node; the hooks only save writing one. No honest code path calls
// them, and they change nothing but what a member may already propose: every
// entry they commit goes through the group's state machine on every member,
// like any other.

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// SignRaw signs e as this node, exactly as the node signs its own envelopes:
// it sets the sender, the next counter and the current time. The payload
// and the type are the caller's, unchecked. It exists for the adversary
// suite (see the comment at the top of rogue.go).
func (n *Node) SignRaw(e *crypto.Envelope) ([]byte, error) { return n.sign(e) }

// ProposeRaw proposes frame, whatever it holds, as a normal entry of the
// group's log through this node's raft: appended if this node leads,
// forwarded to the host otherwise. It returns once raft took the proposal;
// raft drops a proposal while no host is known (the error says so), and
// even a taken one is not sure to commit, so a caller that needs it
// committed watches the log (LogFrames) and proposes again. It exists for
// the adversary suite (see the comment at the top of rogue.go).
func (n *Node) ProposeRaw(ctx context.Context, groupID string, frame []byte) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	var perr error
	if err := g.do(ctx, func() { perr = g.rn.Propose(frame) }); err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("propose: %w", perr)
	}
	return nil
}

// ProposeConfRaw proposes a raft membership change of the given kind for
// the raft node nodeID, authorised by frame (whatever it holds), through this
// node's raft, as ProposeRaw does a normal entry. raft takes one membership
// change at a time: the host drops one proposed while another is pending,
// so a caller watches the log and proposes again. It exists for the
// adversary suite (see the comment at the top of rogue.go).
func (n *Node) ProposeConfRaw(ctx context.Context, groupID string, frame []byte, kind state.ConfKind, nodeID uint64) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	var ct pb.ConfChangeType
	switch kind {
	case state.AddVoter:
		ct = pb.ConfChangeAddNode
	case state.AddLearner:
		ct = pb.ConfChangeAddLearnerNode
	case state.Remove:
		ct = pb.ConfChangeRemoveNode
	default:
		return fmt.Errorf("propose membership change: unknown kind %d: %w", kind, ErrInvalid)
	}
	var perr error
	if err := g.do(ctx, func() { perr = g.proposeConfFrame(frame, ct, nodeID) }); err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("propose membership change: %w", perr)
	}
	return nil
}

// LogFrames returns the committed entries of the group's log that carry a
// frame, as this node holds them on disk and as its transcript carries them
// (see Transcript): index, kind, the raft change of a membership entry, and
// the exact signed frame. It reads the store, so the group keeps running
// meanwhile. It exists for the adversary suite (see the comment at the top
// of rogue.go): a test reads an honest member's log to replay what it holds,
// and to try a removed member's keys on the ciphertext everyone relays.
func (n *Node) LogFrames(groupID string) ([]transcript.Entry, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	hs, log, err := n.store.LoadRaft(g.id[:])
	if err != nil {
		return nil, fmt.Errorf("read the log of group %s: %w", g.id, err)
	}
	return transcriptEntries(max(hs.GetCommit(), g.view.Load().applied), log), nil
}

// HandOver has this node, the group's host, hand leadership to the member
// with the given public id, as placement does when it ranks that member
// best, and returns once this node sees that member lead. It exists for the
// adversary suite (see the comment at the top of rogue.go): honest members
// may elect a malicious member as their host, and the suite then shows what
// such a host can put in the log, past the checks an honest host makes.
func (n *Node) HandOver(ctx context.Context, groupID, publicID string) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	id, err := identity.ParsePublicID(publicID)
	if err != nil {
		return fmt.Errorf("hand over: %v: %w", err, ErrInvalid)
	}
	m, ok := g.view.Load().members[id.Sign]
	if !ok {
		return fmt.Errorf("hand over: %s is not a member: %w", id.Fingerprint(), ErrNotFound)
	}
	for g.view.Load().leader != m.raftID {
		if err := g.do(ctx, func() { g.transferLeader(m.raftID) }); err != nil {
			return fmt.Errorf("hand over: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, reproposeAfter)
		_ = g.waitView(wctx, func(v *view) bool { return v.leader == m.raftID })
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("hand over: %w", ctx.Err())
		}
	}
	return nil
}

// RaftEntries returns the raft entries of the group's log from lo up to but
// not including hi, as this node holds them (with their terms, which
// LogFrames leaves out). It exists for the adversary suite (see the comment
// at the top of rogue.go): a malicious host that rewrites what it sends
// starts from its own log.
func (n *Node) RaftEntries(groupID string, lo, hi uint64) ([]*pb.Entry, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	return g.storage.Entries(lo, hi, math.MaxUint64)
}

// ReformForged starts a successor of the halted group as [Node.Reform] does
// when it starts one, but continuing the group from index with head, as
// given, unchecked, and offers it to the other members. It exists for the
// adversary suite (see the comment at the top of rogue.go): a member that
// claims another history than it holds, to pull the others into it.
func (n *Node) ReformForged(ctx context.Context, groupID string, index uint64, head [32]byte) (api.ReformResult, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return api.ReformResult{}, err
	}
	v := g.view.Load()
	if v.fork == nil {
		return api.ReformResult{}, fmt.Errorf("reform: not halted: %w", ErrInvalid)
	}
	return n.startSuccessor(ctx, g, v, identity.PublicID{}, nil, func(c *state.Continuation) {
		c.Index, c.Head = index, head[:]
	})
}

// ReportSilent sends the member with public id to one signed ping that says
// this node no longer hears the host hostID (a public id; "" for none) in
// term, whatever this node hears: the ping's raft view is (term, that
// host) and its flags carry the silent bit (cutoff.go). It returns once the
// member answered. It exists for the adversary suite (see the comment at
// the top of rogue.go): a lying member that tries to depose a healthy host
// by reporting it cut off.
func (n *Node) ReportSilent(ctx context.Context, groupID, to, hostID string, term uint64) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	dst, err := identity.ParsePublicID(to)
	if err != nil {
		return fmt.Errorf("report silent: %v: %w", err, ErrInvalid)
	}
	rv := raftView{term: term}
	if hostID != "" {
		h, err := identity.ParsePublicID(hostID)
		if err != nil {
			return fmt.Errorf("report silent: %v: %w", err, ErrInvalid)
		}
		rv.lead = state.RaftID(h.Sign)
	}
	m, ok := g.view.Load().members[dst.Sign]
	if !ok || m.url == "" {
		return fmt.Errorf("report silent: %s is not a member with an address: %w", dst.Fingerprint(), ErrNotFound)
	}
	nonce := make([]byte, pingNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("report silent: %w", err)
	}
	frame, err := n.sign(&crypto.Envelope{Type: crypto.TypePing, Group: g.id, To: dst.Sign,
		Payload: encodePing(nonce, pingKindPing, rv, pingExtra{flags: pingSilent})})
	if err != nil {
		return fmt.Errorf("report silent: %w", err)
	}
	if _, err := n.cfg.Link.Post(ctx, m.url, frame); err != nil {
		return fmt.Errorf("report silent to %s: %w", dst.Fingerprint(), err)
	}
	return nil
}

// LieAboutLog makes this node's pings report, while it no longer hears its
// host, a last log entry by entries further than the one it has (ping flag
// bit 4: docs/PROTOCOL.md "Pings"); 0 stops the lie. It exists for the
// adversary suite (see the comment at the top of rogue.go): a voter that
// lies about its log to be taken for the backup of a failover.
func (n *Node) LieAboutLog(by uint64) { n.logLie.Store(by) }

// ForceCampaign has this node campaign in group groupID at once, as the
// backup of a host gone or cut off does (placement.go, forceCampaign),
// whatever its placement says. It exists for the adversary suite (see the
// comment at the top of rogue.go).
func (n *Node) ForceCampaign(ctx context.Context, groupID string) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	return g.do(ctx, g.forceCampaign)
}
