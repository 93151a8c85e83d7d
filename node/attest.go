package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/demes/demes/election"
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
	key    [32]byte
	view   raftView
	silent bool // the member no longer hears the leader of view (cutoff.go)
	// log is the member's last log entry, with silent (nil if it gave
	// none).
	log *election.LogPos
}

// Ping payloads (docs/PROTOCOL.md, "Peer transport", Pings): a 16-byte nonce, optionally
// followed by a kind byte and the sender's raft view, then optionally by a
// flags byte, the sender's read mark when the flags say so (receipts.go),
// the sender's last log entry when it no longer hears its host (cutoff.go),
// and the sender's signed statement of its chain head (fork.go). A pong answers a 16-byte ping with the bare nonce (what nodes
// before the raft view expect) and a longer ping with the nonce, its own
// view, flags and statement.
const (
	pingNonceLen = 16
	pingViewLen  = pingNonceLen + 1 + 8 + 8
	pingFlagsLen = pingViewLen + 1

	// pingSuspect, in the flags, says that the sender suspects the leader
	// of its raft view, in that term, of censoring it (censor.go).
	pingSuspect byte = 1
	// pingRead, in the flags, says that the 8 bytes after them are the
	// log index through which the sender's person has read the group
	// (a read receipt, receipts.go).
	pingRead byte = 2
	// pingSilent, in the flags, says that the sender has not heard from
	// the leader of its raft view for a while (cutoff.go).
	pingSilent byte = 4
	// pingPast, in the flags, says that the 16 bytes after the read mark
	// (if any) are a raft view, term then leader raft id, whose leader the
	// sender suspected of censoring it in that term, which the sender has
	// since left (censor.go, shunLate).
	pingPast byte = 8
	// pingLog, in the flags, says that the 16 bytes after the past
	// suspicion (if any) are the term and index of the last entry in the
	// sender's log; sent with pingSilent, so that the voters choose as the
	// host's backup one whose log their votes will not refuse (cutoff.go).
	pingLog byte = 16
	// pingPair, in the flags, says that the sender follows no host, and
	// that its applied configuration has exactly two voters, the sender
	// and the addressee, and its log no membership change after it
	// (restored.go, onlyOtherVoter). No bytes follow for it.
	pingPair       byte = 32
	pingFlagsKnown      = pingSuspect | pingRead | pingSilent | pingPast | pingLog | pingPair
	pingReadLen         = 8
	pingPastLen         = 16
	pingLogLen          = 16

	pingKindPing byte = 1
	pingKindPong byte = 2
)

var errPingPayload = errors.New("ping payload is neither a 16-byte nonce nor a nonce with a raft view")

// pingExtra is what a ping or pong carries after the raft view.
type pingExtra struct {
	flags     byte   // pingSuspect, pingRead, or 0
	read      uint64 // the read mark, with pingRead
	past      raftView
	log       election.LogPos // the last log entry, with pingLog
	statement []byte          // the signed TypeHead envelope; nil for none
}

// encodePing is nonce || kind || term (8 bytes, big endian) || leader raft id
// (8 bytes, big endian) || flags (1 byte) || read mark (8 bytes, big endian,
// only with pingRead) || past suspicion (term and leader raft id, 8 bytes
// each, big endian, only with pingPast) || last log entry (term and index, 8
// bytes each, big endian, only with pingLog) || statement (the signed TypeHead
// envelope, up to maxHeadFrame bytes; none when nil).
func encodePing(nonce []byte, kind byte, rv raftView, x pingExtra) []byte {
	b := make([]byte, 0, pingFlagsLen+pingReadLen+pingPastLen+pingLogLen+len(x.statement))
	b = append(b, nonce...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, rv.term)
	b = binary.BigEndian.AppendUint64(b, rv.lead)
	b = append(b, x.flags)
	if x.flags&pingRead != 0 {
		b = binary.BigEndian.AppendUint64(b, x.read)
	}
	if x.flags&pingPast != 0 {
		b = binary.BigEndian.AppendUint64(b, x.past.term)
		b = binary.BigEndian.AppendUint64(b, x.past.lead)
	}
	if x.flags&pingLog != 0 {
		b = binary.BigEndian.AppendUint64(b, x.log.Term)
		b = binary.BigEndian.AppendUint64(b, x.log.Index)
	}
	return append(b, x.statement...)
}

// decodePing splits a ping or pong payload. kind is 0 for a bare nonce;
// the extra is zero when the payload ends after the view (an older node).
func decodePing(p []byte) (nonce []byte, kind byte, rv raftView, x pingExtra, err error) {
	switch {
	case len(p) == pingNonceLen:
		return p, 0, raftView{}, x, nil
	case len(p) == pingViewLen || (len(p) >= pingFlagsLen && len(p) <= pingFlagsLen+pingReadLen+pingPastLen+pingLogLen+maxHeadFrame):
		kind = p[pingNonceLen]
		if kind != pingKindPing && kind != pingKindPong {
			return nil, 0, raftView{}, x, fmt.Errorf("%w: kind %d", errPingPayload, kind)
		}
		rv.term = binary.BigEndian.Uint64(p[pingNonceLen+1:])
		rv.lead = binary.BigEndian.Uint64(p[pingNonceLen+9:])
		if len(p) >= pingFlagsLen {
			x.flags = p[pingViewLen]
			if x.flags&^pingFlagsKnown != 0 {
				return nil, 0, raftView{}, pingExtra{}, fmt.Errorf("%w: flags %#x", errPingPayload, x.flags)
			}
			rest := p[pingFlagsLen:]
			if x.flags&pingRead != 0 {
				if len(rest) < pingReadLen {
					return nil, 0, raftView{}, pingExtra{}, fmt.Errorf("%w: the read mark is cut short", errPingPayload)
				}
				x.read, rest = binary.BigEndian.Uint64(rest), rest[pingReadLen:]
			}
			if x.flags&pingPast != 0 {
				if len(rest) < pingPastLen {
					return nil, 0, raftView{}, pingExtra{}, fmt.Errorf("%w: the past suspicion is cut short", errPingPayload)
				}
				x.past = raftView{term: binary.BigEndian.Uint64(rest), lead: binary.BigEndian.Uint64(rest[8:])}
				if x.past.term == 0 || x.past.lead == 0 {
					return nil, 0, raftView{}, pingExtra{}, fmt.Errorf("%w: a past suspicion of no host", errPingPayload)
				}
				rest = rest[pingPastLen:]
			}
			if x.flags&pingLog != 0 {
				if len(rest) < pingLogLen {
					return nil, 0, raftView{}, pingExtra{}, fmt.Errorf("%w: the last log entry is cut short", errPingPayload)
				}
				x.log = election.LogPos{Term: binary.BigEndian.Uint64(rest), Index: binary.BigEndian.Uint64(rest[8:])}
				rest = rest[pingLogLen:]
			}
			if len(rest) > maxHeadFrame {
				return nil, 0, raftView{}, pingExtra{}, fmt.Errorf("%w: %d bytes", errPingPayload, len(p))
			}
			if len(rest) > 0 {
				x.statement = rest
			}
		}
		return p[:pingNonceLen], kind, rv, x, nil
	}
	return nil, 0, raftView{}, x, fmt.Errorf("%w: %d bytes", errPingPayload, len(p))
}

// ownView is this node's raft view as last published, for its pings and
// pongs; while it follows no leader in the term of the host it counts
// silent (watchedHost: its own election timer fired), that host's, which it
// followed in that term, so that the silence travels with the view it is
// about. Safe from any goroutine.
func (g *group) ownView() raftView {
	v := g.view.Load()
	rv := raftView{term: v.term, lead: v.leader}
	if s := g.silentView.Load(); rv.lead == 0 && s != nil && s.term == rv.term {
		return *s
	}
	return rv
}

// noteAttestation hands a member's reported view to the group's goroutine if
// it is news. Safe from any goroutine; never blocks: a report lost to a full
// queue comes again with the next ping.
func (g *group) noteAttestation(key [32]byte, rv raftView, x pingExtra) {
	if rv.term == 0 {
		return
	}
	silent := x.flags&pingSilent != 0 && rv.lead != 0
	if cur := g.attested.Load(); !silent && cur != nil && !rv.supersedes((*cur)[key]) {
		return
	}
	a := attestation{key: key, view: rv, silent: silent}
	if silent && x.flags&pingLog != 0 {
		a.log = &x.log
	}
	select {
	case g.attc <- a:
	default:
	}
}

// onAttestation records a report on the group's goroutine and publishes a
// new copy of the records for the transport. Records are only replaced when
// a view changes (a new term, in practice), so copies are rare; the copy
// keeps only current members, so the records stay bounded.
func (g *group) onAttestation(a attestation) {
	if a.silent {
		g.noteSilent(a.key, a.view, a.log)
	}
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
	every := g.timing.electionTimeout()
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
