package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Queued invites (issue 18, item 5). An invite is a log entry and needs a
// majority of the voters; a person must not wait 30 s for a failure when
// the group cannot commit. When the group is stuck (no host, a majority of
// the voters offline: [group.stuck]), [Node.InviteFor] signs the invite
// entry, writes it to the store, proposes it, and answers at once with
// [ErrQueued]. The node proposes that same frame again whenever a host is
// known, until it commits; the same request made again then answers the
// invite code, which needs the committed index (the joiner checks it
// against the log), without a new entry.
//
// Exactly one entry commits per queued invite. The frame is proposed as
// it is, so a second copy in the log is a replay that the state machine
// rejects by its envelope counter (see state's counter rule). A frame also
// dies when an entry this node signed later commits first (a checkpoint,
// an address update): its counter is then stale. The apply hook sees every
// entry in order, so "this node's counter passed the frame's, and the
// frame did not commit" means dead, and only then is the invite signed
// again, with a new counter: two frames of one queued invite are never
// alive at once.
//
// A queued invite is dropped when the invitee becomes a member, when it is
// revoked, when it expires, and when this node may no longer invite or is
// no longer a member. Nobody can join with it before it commits: members
// admit a joiner only against a committed invite (handleChallenge,
// handleJoin), and the code, which carries the committed index, exists
// only once it has.

// ErrQueued is [api.ErrQueued].
var ErrQueued = api.ErrQueued

// Invite states: [api.InviteOpen] and [api.InviteQueued].
const (
	InviteOpen   = api.InviteOpen
	InviteQueued = api.InviteQueued
)

// queuedInvite is one queued invite as the store keeps it.
type queuedInvite struct {
	_       struct{} `cbor:",toarray"`
	Invitee []byte   // the invitee's 64-byte public id
	Expires int64    // the invite's expiry, unix nanoseconds, as Frame says
	// Before is the index of the invitee's open invite when this one was
	// queued (0: none): one at a later index is this one, committed.
	Before uint64
	// Frame is the signed invite entry, proposed as it is; Counter is its
	// envelope counter.
	Frame   []byte
	Counter uint64
	// Index is where Frame committed, 0 until it has.
	Index uint64
	// Sent says that raft took a proposal of Frame while a host was
	// known: it may commit at any time, even after a revocation.
	Sent bool
	// Revoked is set when the invite was revoked before it committed
	// and may still commit: it is then revoked in the log too.
	Revoked bool
}

// inviteQueue is a group's queued invites: loaded from the store on first
// use, changed on the group's goroutine, read by listings under mu.
type inviteQueue struct {
	mu     sync.Mutex
	loaded bool
	items  map[[32]byte]*queuedInvite
	// When each was last proposed, and under which host: proposals are
	// paced like the outbox's (a frame proposed again is a replay in the
	// log, harmless but noisy).
	leader map[[32]byte]uint64
	at     map[[32]byte]time.Time
	// waits times each queued invite's wait for the host, from its first
	// proposal (censor_changes.go), in the group's changes.
	waits   map[[32]byte]*changeWait
	changes *changeWaits
}

// inviteQueueList is the stored form of a group's queue.
type inviteQueueList struct {
	_     struct{} `cbor:",toarray"`
	Items []queuedInvite
}

// loadLocked reads the queue from the store on first use; q.mu is held.
func (q *inviteQueue) loadLocked(g *group) {
	if q.loaded {
		return
	}
	q.loaded = true
	q.items, q.leader, q.at = map[[32]byte]*queuedInvite{}, map[[32]byte]uint64{}, map[[32]byte]time.Time{}
	q.waits, q.changes = map[[32]byte]*changeWait{}, &g.changes
	data, err := g.n.store.InviteQueue(g.id[:])
	if err != nil || len(data) == 0 {
		if err != nil {
			g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot read the queued invites")
		}
		return
	}
	var l inviteQueueList
	if err := state.Decode(data, &l); err != nil {
		g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot read the queued invites")
		return
	}
	for i := range l.Items {
		it := l.Items[i]
		if id, err := identity.PublicIDFromBytes(it.Invitee); err == nil {
			q.items[id.Sign] = &it
		}
	}
}

// saveLocked writes the queue to the store; q.mu is held.
func (q *inviteQueue) saveLocked(g *group) error {
	l := inviteQueueList{Items: make([]queuedInvite, 0, len(q.items))}
	for _, it := range q.items {
		l.Items = append(l.Items, *it)
	}
	sort.Slice(l.Items, func(i, j int) bool { return bytes.Compare(l.Items[i].Invitee, l.Items[j].Invitee) < 0 })
	var data []byte
	if len(l.Items) > 0 {
		var err error
		if data, err = state.Encode(&l); err != nil {
			return err
		}
	}
	if err := g.n.store.SaveInviteQueue(g.id[:], data); err != nil {
		return fmt.Errorf("write the queued invites: %w", err)
	}
	return nil
}

// dropLocked forgets the queued invite of k; q.mu is held.
func (q *inviteQueue) dropLocked(k [32]byte) {
	delete(q.items, k)
	delete(q.leader, k)
	delete(q.at, k)
	if w := q.waits[k]; w != nil {
		q.changes.done(w)
		delete(q.waits, k)
	}
}

// maybeQueueInvite asks the queue for [Node.InviteFor]'s answer, while the
// group knows no host for a while (whileHostless): a group that stays
// without a host and with a majority of its voters offline queues the
// invite.
func (n *Node) maybeQueueInvite(ctx context.Context, g *group, invitee identity.PublicID, ttl time.Duration) (code string, handled bool, err error) {
	if werr := n.whileHostless(ctx, g, func() bool {
		code, handled, err = g.queueInvite(invitee, ttl)
		return handled
	}); werr != nil {
		return "", true, fmt.Errorf("invite: %w", werr)
	}
	return code, handled, err
}

// whileHostless runs try on the group's goroutine, and again every
// stuckCheck while the group knows no host, for a while: a node that has
// just started has not heard from the voters yet, and a group choosing a
// host commits soon. It returns once try reports done, the group knows a
// host, or the while is over, or with the error of a stopped group or
// ended ctx.
func (n *Node) whileHostless(ctx context.Context, g *group, try func() (done bool)) error {
	deadline := time.Now().Add(stallAfter + 3*n.cfg.PingInterval)
	for {
		var done bool
		if err := g.do(ctx, func() { done = try() }); err != nil {
			return err
		}
		if done || g.view.Load().leader != raft.None || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(stuckCheck):
		}
	}
}

// errStuckMeanwhile ends the wait of an invite whose group stopped
// committing while it waited (queueWhenStuck).
var errStuckMeanwhile = errors.New("the group stopped committing")

// queueWhenStuck ends ctx with errStuckMeanwhile once the group is stuck
// ([group.stuckFor]), checking every stuckCheck until ctx ends: an invite
// proposed while the group committed, whose majority then went offline,
// is queued then (the caller does it), instead of failing after
// membershipTimeout.
func (g *group) queueWhenStuck(ctx context.Context, stop context.CancelCauseFunc) {
	t := time.NewTicker(stuckCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var stuck bool
		if g.do(ctx, func() { stuck = g.stuckFor(time.Now()) }) != nil {
			return
		}
		if stuck {
			stop(errStuckMeanwhile)
			return
		}
	}
}

// queueInvite is [Node.InviteFor]'s answer where the queue decides it, on
// the group's goroutine: the code of this node's queued invite for invitee
// once it has committed, ErrQueued while it has not, or, for a stuck
// group, a new queued invite and ErrQueued. handled is false when the
// invite is to be committed as usual.
func (g *group) queueInvite(invitee identity.PublicID, ttl time.Duration) (code string, handled bool, err error) {
	q := &g.invq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loadLocked(g)
	v := g.view.Load()
	if it := q.items[invitee.Sign]; it != nil && !it.Revoked {
		if it.Index == 0 {
			return "", true, g.errQueued()
		}
		if inv, ok := v.invites[invitee.Sign]; ok && inv.Index == it.Index && v.invited(invitee.Sign) {
			code, err := g.n.inviteCode(g.id, v, invitee, inv)
			return code, true, err
		}
		// Committed, and used, revoked or expired since: a new invite.
		q.dropLocked(invitee.Sign)
		if err := q.saveLocked(g); err != nil {
			return "", true, err
		}
	}
	if !g.stuckFor(time.Now()) {
		return "", false, nil
	}
	it := &queuedInvite{Invitee: invitee.Bytes(), Expires: time.Now().Add(ttl).UnixNano(), Before: v.invites[invitee.Sign].Index}
	if err := g.signQueued(it); err != nil {
		return "", true, err
	}
	prev := q.items[invitee.Sign]
	q.items[invitee.Sign] = it
	if err := q.saveLocked(g); err != nil {
		q.items[invitee.Sign] = prev
		if prev == nil {
			delete(q.items, invitee.Sign)
		}
		return "", true, fmt.Errorf("invite: %w", err)
	}
	g.n.log.Info().Str("group", g.id.String()).Str("invitee", invitee.Fingerprint()).Msg("invite queued: the group cannot commit now")
	return "", true, g.errQueued()
}

// stuckFor reports, on the group's goroutine, that the group has known no
// host for a while (stalled) and that a majority of its voters is offline
// ([group.stuck]), after this run of the group has had time to hear from
// them.
func (g *group) stuckFor(now time.Time) bool {
	if !g.stalled(now) || now.Sub(g.pl.started) < 2*g.n.cfg.PingInterval {
		return false
	}
	voters, online := g.votersOnline(now)
	return voters > 0 && online <= voters/2
}

// errQueued says that an invite is queued, why, and how to get its code.
func (g *group) errQueued() error {
	voters, online := g.votersOnline(time.Now())
	why := "the group has no host yet"
	if voters > 0 && online <= voters/2 {
		why = fmt.Sprintf("%d of %d voters offline", voters-online, voters)
	}
	return fmt.Errorf("invite: queued: the group cannot commit now (%s); run the same 'demes invite' again once enough of the group is online to get the code: %w", why, ErrQueued)
}

// signQueued signs (again) the invite entry of it.
func (g *group) signQueued(it *queuedInvite) error {
	frame, err := g.signEntry(crypto.TypeInvite, &state.InviteBody{Invitee: it.Invitee, Expires: it.Expires})
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	env, err := crypto.Verify(frame)
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	it.Frame, it.Counter, it.Index, it.Sent = frame, env.Counter, 0, false
	return nil
}

// inviteApplied notes, for an entry just applied, that a queued invite's
// frame committed there. It runs on the group's goroutine for every
// entry, replays at start included.
func (g *group) inviteApplied(idx uint64, res state.Result) {
	if res.Err != nil || res.Env == nil || res.Env.Type != crypto.TypeInvite || res.Env.Sender != g.n.self.Sign {
		return
	}
	q := &g.invq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loadLocked(g)
	for _, it := range q.items {
		if it.Index == 0 && it.Counter == res.Env.Counter {
			it.Index = idx
			// Written now, before any snapshot can cover this entry:
			// a restart from one does not apply it again.
			if err := q.saveLocked(g); err != nil {
				g.n.log.Error().Err(err).Msg("cannot record a queued invite's commit")
			}
			g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
			return
		}
	}
}

// retryInvites looks at every queued invite at each retry tick, once the
// log is replayed: it drops those done with, proposes the waiting ones
// while a host is known, signs again those whose frame died, and revokes
// in the log those revoked here that committed anyway.
func (g *group) retryInvites() {
	q := &g.invq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loadLocked(g)
	if len(q.items) == 0 || g.st.Applied < g.replayTo {
		return
	}
	self := g.st.Members[g.n.self.Sign]
	now := time.Now()
	changed := false
	for k, it := range q.items {
		switch act := queuedAction(it, g.st, self, g.n.self.Sign, now); act {
		case queueDrop:
			q.dropLocked(k)
			changed = true
		case queueResign:
			if err := g.signQueued(it); err != nil {
				g.n.log.Warn().Err(err).Msg("cannot sign a queued invite again")
				continue
			}
			delete(q.leader, k)
			changed = true
			fallthrough
		case queuePropose:
			if g.leader == raft.None || (q.leader[k] == g.leader && now.Sub(q.at[k]) < reproposeAfter) {
				continue
			}
			q.leader[k], q.at[k] = g.leader, now
			if g.fork != nil || g.proposeFrame(it.Frame) != nil {
				continue
			}
			g.noteControlProposed(it.Counter - 1)
			// Its wait ends when this entry, or one signed for it
			// again, is applied: not with any later entry of this
			// node's, which a host that drops the invite and commits
			// this node's chat would supply (TestCensorSeenForQueuedInvite).
			q.waits[k] = g.changes.proposed(q.waits[k], it.Counter-1, it.Counter)
			if !it.Sent {
				it.Sent, changed = true, true
			}
		case queueRevoke:
			if g.leader == raft.None || (q.leader[k] == g.leader && now.Sub(q.at[k]) < reproposeAfter) {
				continue
			}
			q.leader[k], q.at[k] = g.leader, now
			if err := g.proposeEntry(crypto.TypeRevoke, &state.TargetBody{Target: k[:]}); err != nil {
				g.n.log.Debug().Err(err).Msg("revocation of a queued invite")
			}
		}
	}
	if changed {
		if err := q.saveLocked(g); err != nil {
			g.n.log.Error().Err(err).Msg("cannot write the queued invites")
		}
		g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	}
}

// What retryInvites does with a queued invite.
const (
	queueWait    = iota // nothing now
	queuePropose        // propose its frame (when a host is known)
	queueResign         // its frame died: sign it again, then propose
	queueRevoke         // revoked here but committed: revoke it in the log
	queueDrop           // done with: forget it
)

// queuedAction decides what to do with the queued invite it, given the
// group's state st, this node's member record self (nil when it is not a
// member) and its signing key. It is pure, so that every case is tested.
func queuedAction(it *queuedInvite, st *state.State, self *state.Member, key [32]byte, now time.Time) int {
	invitee, err := identity.PublicIDFromBytes(it.Invitee)
	if err != nil || self == nil {
		return queueDrop
	}
	inv, open := st.Invites[invitee.Sign]
	committedOpen := it.Index != 0 && open && inv.Index == it.Index
	if it.Revoked {
		switch {
		case committedOpen:
			return queueRevoke
		case it.Index != 0, self.Counter >= it.Counter:
			return queueDrop // revoked in the log, or the frame died
		}
		return queueWait // may still commit: watch it
	}
	if it.Index != 0 {
		if committedOpen {
			return queueWait // its code is there for the asking
		}
		return queueDrop // used, revoked, expired or replaced
	}
	if st.Members[invitee.Sign] != nil || !st.CanInvite(key) || now.UnixNano() >= it.Expires {
		return queueDrop
	}
	if self.Counter >= it.Counter {
		return queueResign
	}
	return queuePropose
}

// revokeQueued revokes this node's queued invite for invitee, if it has
// one that has not committed, on the group's goroutine: one never
// proposed is forgotten, one that may still commit is revoked in the log
// if it does. found reports whether there was one.
func (g *group) revokeQueued(invitee [32]byte) (found bool, err error) {
	q := &g.invq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loadLocked(g)
	it := q.items[invitee]
	if it == nil || it.Revoked || it.Index != 0 {
		return false, nil
	}
	if it.Sent {
		it.Revoked = true
	} else {
		q.dropLocked(invitee)
	}
	return true, q.saveLocked(g)
}

// queuedInvites lists this node's invites that have not committed yet.
func (g *group) queuedInvites() []PendingInvite {
	q := &g.invq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loadLocked(g)
	var out []PendingInvite
	for _, it := range q.items {
		if it.Index != 0 || it.Revoked {
			continue
		}
		id, err := identity.PublicIDFromBytes(it.Invitee)
		if err != nil {
			continue
		}
		out = append(out, PendingInvite{
			Invitee: id.String(), Fingerprint: id.Fingerprint(), Inviter: g.n.selfID, InviterName: g.n.cfg.Name,
			ExpiresAt: time.Unix(0, it.Expires).UTC(), State: InviteQueued,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Invitee < out[j].Invitee })
	return out
}
