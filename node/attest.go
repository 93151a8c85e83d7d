package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Leader attestations (docs/PROTOCOL.md, "Who may lead").
//
// Only a raft leader sends MsgApp and MsgHeartbeat, and a leader is always a
// voter, so the transport refuses them from a member this node does not count
// as a voter: otherwise a learner could send one at a higher term, become the
// leader in the receiver's eyes and depose the host. But a member that has
// not applied the promotion of a newly elected leader yet does not count it
// as a voter, and only the leader could send it the entries that say so. So a
// leader message from a member this node does not count as a voter is still
// accepted when a member it does count as a voter reports following that
// member at exactly that term: members report their raft view (term, leader)
// in every signed ping and pong, and the group keeps the latest per member.
// An honest voter follows a leader only after the same check, so a learner
// can never gather such a report unless it really leads.

// raftView is what a member reports of its raft state: its term and the raft
// id of the leader it follows in that term (0: none known).
type raftView struct {
	term uint64
	lead uint64
}

// supersedes reports whether view b replaces a as a member's latest report.
// Terms only grow, and within a term a member follows at most one leader, so
// a report is replaced by one of a later term, or of the same term that names
// a leader where the old one named none. Reordered pings cannot undo that.
func (b raftView) supersedes(a raftView) bool {
	return b.term > a.term || (b.term == a.term && a.lead == 0 && b.lead != 0)
}

// attestation is one member's reported view, on its way to the group's
// goroutine.
type attestation struct {
	key  [32]byte
	view raftView
}

// Ping payloads (docs/PROTOCOL.md, "Peer transport", Pings): a 16-byte nonce, optionally
// followed by a kind byte and the sender's raft view, and then optionally
// by the sender's signed statement of its chain head (fork.go). A pong
// answers a 16-byte ping with the bare nonce (what nodes before the raft
// view expect) and a longer ping with the nonce, its own view and its own
// statement.
const (
	pingNonceLen = 16
	pingViewLen  = pingNonceLen + 1 + 8 + 8

	pingKindPing byte = 1
	pingKindPong byte = 2
)

var errPingPayload = errors.New("ping payload is neither a 16-byte nonce nor a nonce with a raft view")

// encodePing is nonce || kind || term (8 bytes, big endian) || leader raft id
// (8 bytes, big endian) || statement (the signed TypeHead envelope, up to
// maxHeadFrame bytes; none when nil).
func encodePing(nonce []byte, kind byte, rv raftView, statement []byte) []byte {
	b := make([]byte, 0, pingViewLen+len(statement))
	b = append(b, nonce...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, rv.term)
	b = binary.BigEndian.AppendUint64(b, rv.lead)
	return append(b, statement...)
}

// decodePing splits a ping or pong payload. kind is 0 for a bare nonce;
// statement is nil when the payload carries none.
func decodePing(p []byte) (nonce []byte, kind byte, rv raftView, statement []byte, err error) {
	switch {
	case len(p) == pingNonceLen:
		return p, 0, raftView{}, nil, nil
	case len(p) >= pingViewLen && len(p) <= pingViewLen+maxHeadFrame:
		kind = p[pingNonceLen]
		if kind != pingKindPing && kind != pingKindPong {
			return nil, 0, raftView{}, nil, fmt.Errorf("%w: kind %d", errPingPayload, kind)
		}
		rv.term = binary.BigEndian.Uint64(p[pingNonceLen+1:])
		rv.lead = binary.BigEndian.Uint64(p[pingNonceLen+9:])
		if len(p) > pingViewLen {
			statement = p[pingViewLen:]
		}
		return p[:pingNonceLen], kind, rv, statement, nil
	}
	return nil, 0, raftView{}, nil, fmt.Errorf("%w: %d bytes", errPingPayload, len(p))
}

// ownView is this node's raft view as last published, for its pings and
// pongs. Safe from any goroutine.
func (g *group) ownView() raftView {
	v := g.view.Load()
	return raftView{term: v.term, lead: v.leader}
}

// noteAttestation hands a member's reported view to the group's goroutine if
// it is news. Safe from any goroutine; never blocks: a report lost to a full
// queue comes again with the next ping.
func (g *group) noteAttestation(key [32]byte, rv raftView) {
	if rv.term == 0 {
		return
	}
	if cur := g.attested.Load(); cur != nil && !rv.supersedes((*cur)[key]) {
		return
	}
	select {
	case g.attc <- attestation{key: key, view: rv}:
	default:
	}
}

// onAttestation records a report on the group's goroutine and publishes a
// new copy of the records for the transport. Records are only replaced when
// a view changes (a new term, in practice), so copies are rare; the copy
// keeps only current members, so the records stay bounded.
func (g *group) onAttestation(a attestation) {
	if !a.view.supersedes(g.attests[a.key]) {
		return
	}
	v := g.view.Load()
	next := make(map[[32]byte]raftView, len(g.attests)+1)
	for k, rv := range g.attests {
		if _, ok := v.members[k]; ok {
			next[k] = rv
		}
	}
	if _, ok := v.members[a.key]; ok {
		next[a.key] = a.view
	}
	g.attests = next
	g.attested.Store(&next)
}

// wantAttestations asks the group's goroutine to ping the voters for their
// views now (a leader message was refused for lack of one). Safe from any
// goroutine; never blocks.
func (g *group) wantAttestations() {
	select {
	case g.pullc <- struct{}{}:
	default:
	}
}

// pullAttestations pings the members this node counts as voters, at most
// once per election timeout, so that a member catches up with a newly
// promoted leader even when periodic pings are rare or off (a large
// PingInterval): the pongs carry the voters' views. The pongs also count as
// RTT samples, like any other.
func (g *group) pullAttestations() {
	every := g.n.cfg.Timing.Tick * time.Duration(g.n.cfg.Timing.ElectionTicks)
	if g.left || time.Since(g.lastPull) < every {
		return
	}
	g.lastPull = time.Now()
	v := g.view.Load()
	g.pingMembers(v, v.countsAsVoter)
}

// countsAsVoter reports whether this node, in view v, counts member k as a
// voter: its applied configuration says so, or, for a joiner whose log does
// not name the members yet, the provisional list of its join reply does.
func (v *view) countsAsVoter(k [32]byte) bool {
	return v.members[k].voter || v.provVoters[k]
}

// leaderAllowed decides whether a leader message (MsgApp, MsgHeartbeat) at
// term from member sender, whose raft id is lead, may be stepped by the node
// self whose published view is v, with att the latest views members
// reported. It may if this node counts the sender as a voter; or if some
// member it counts as a voter reported following the sender at exactly that
// term; or if this node itself already follows the sender at that term (by
// its published view: it got there through this same check, as nothing but
// a stepped leader message makes raft follow a leader).
func leaderAllowed(v *view, self [32]byte, att map[[32]byte]raftView, sender [32]byte, lead, term uint64) bool {
	if v.countsAsVoter(sender) {
		return true
	}
	if v.leader == lead && v.term == term {
		return true
	}
	for k, rv := range att {
		if k != self && rv.term == term && rv.lead == lead && v.countsAsVoter(k) {
			return true
		}
	}
	return false
}

// attestedViews returns the latest raft views members reported, as run
// last published them.
func (g *group) attestedViews() map[[32]byte]raftView {
	if p := g.attested.Load(); p != nil {
		return *p
	}
	return nil
}
