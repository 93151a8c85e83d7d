package node

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Replies, reactions, edits and deletes (package content). A reaction, an
// edit or a delete (a change) is a chat message of the log like any other:
// sealed, signed, committed once, in transcripts. But it is not listed: as
// each is applied, in the group's order, the group's board (content.Board)
// records what it changes, and the board's notes are shown on the messages
// listed, those in memory and those read again from the store. A change the
// rules refuse (an edit or a delete of someone else's message, a change of a
// message not in the group before it) changes nothing, is logged and
// counted as a rejection, and is never shown. The board is stored with each
// snapshot, sealed (boardstore.go); a restart from a snapshot restores it
// from there, or, without a usable stored one, rebuilds it as
// rebuildHistory reads the log before the snapshot. Without a snapshot it
// is built again as the log is applied again.

// checkChange refuses, before it is sent, a change its group would ignore:
// one of a message not in the group's order (yet), of a change, of a
// deleted message, or an edit or a delete of another member's message. A
// reply may name any message.
func (g *group) checkChange(c content.Content) error {
	if c.Ref == nil {
		return nil
	}
	ref := *c.Ref
	if c.Kind == content.Text {
		// A reply: to a message of the group, in its order or not yet
		// (one of ours queued, or another member's held here), not to
		// an id nobody sent or to a change (helper-58's QA pass: it
		// showed "(reply to e094a8ad)" under a reaction's id).
		_, committed := g.st.MsgIDs.Lookup(ref)
		_, change := g.noteOf(ref)
		queued, held := g.outbox[ref], g.tent[ref]
		// Nor to a change not in the order yet: refused once it is.
		if queued != nil {
			q, err := content.Parse([]byte(queued.text))
			change = change || err == nil && q.Kind != content.Text && q.Kind != content.File
		}
		if held != nil {
			change = change || held.m.Kind != ""
		}
		if change || !committed && queued == nil && held == nil {
			return fmt.Errorf("no message %x to reply to in this group: %w", ref[:], api.ErrUnknownMessage)
		}
		return nil
	}
	idx, ok := g.st.MsgIDs.Lookup(ref)
	n, change := g.noteOf(ref)
	if !ok || change {
		return fmt.Errorf("no message %x in the group's order: %w", ref[:], api.ErrUnknownMessage)
	}
	if n != nil && n.Deleted {
		return fmt.Errorf("message %x was deleted: %w", ref[:], ErrInvalid)
	}
	if c.Kind == content.Edit || c.Kind == content.Delete {
		if author, ok := g.authorAt(ref, idx+1); !ok || author != g.n.selfID {
			return fmt.Errorf("only its author may %s a message; reply or react to it instead: %w", c.Kind, ErrForbidden)
		}
	}
	return nil
}

// changesNothing reports whether the change c, which checkChange let
// through, would change nothing: a reaction taken back that this member
// does not have, or the reaction it has already. What it has is what the
// board shows, or what the last of its reactions to that message still in
// the outbox makes it; that queued reaction's durable channel is returned
// too (nil when the board decided), for the answer to wait until it is on
// disk: a crash before then would lose the reaction the answer promised.
func (g *group) changesNothing(c content.Content) (bool, chan struct{}) {
	if c.Kind != content.Reaction || c.Ref == nil {
		return false, nil
	}
	mine := ""
	if n, _ := g.noteOf(*c.Ref); n != nil {
		mine = n.Reaction(g.n.selfID)
	}
	var last *pending
	for _, p := range g.outbox {
		if last != nil && !p.sentAt.After(last.sentAt) {
			continue
		}
		if q, err := content.Parse([]byte(p.text)); err == nil && q.Kind == content.Reaction && q.Ref != nil && *q.Ref == *c.Ref {
			last, mine = p, q.Emoji
		}
	}
	if mine != c.Emoji {
		return false, nil
	}
	if last != nil {
		return true, last.durable
	}
	return true, nil
}

// unchangedMessage is the answer to the change c that changesNothing kept
// back: not sent, since a second entry would only grow the log (and the
// transcript) with a change of nothing.
func (g *group) unchangedMessage(c content.Content) Message {
	m := Message{Author: g.n.selfID, Name: g.n.cfg.Name, GroupID: g.id.String(), Unchanged: true}
	content.Show(&m, c, nil)
	return m
}

// applyContent applies the opened body of the accepted chat message c by
// author (a public id, "" if unknown) to the board, and returns the
// content to list, with ok false for a change, which is not listed. A
// change of a message in memory publishes that message again, as changed.
func (g *group) applyContent(c *state.Chat, author string, body []byte) (cnt content.Content, ok bool, perr error) {
	cnt, perr = content.Parse(body)
	if perr == nil && cnt.Kind == content.File {
		g.noteFile(c, author, cnt.File) // files.go
		g.blog.record(c, author, cnt, body, "", false, 0)
	}
	if perr != nil || cnt.Kind == content.Text || cnt.Kind == content.File {
		return cnt, true, perr
	}
	var target string
	var found bool
	var at uint64
	// Applying it marks its id a change in the board: counted toward the
	// board's bound like a note learnt (boardnotes.go), or a member that
	// never restarts keeps the id of every change ever applied.
	g.learnNew(c.ID)
	if cnt.Ref != nil {
		// The board must hold the target's note in full (boardnotes.go).
		if idx, ok := g.st.MsgIDs.Lookup(*cnt.Ref); ok && idx < c.Index {
			g.learn(*cnt.Ref, idx)
			at = idx
		}
	}
	err := g.board.Apply(c.ID, author, cnt, func(ref [16]byte) (string, bool) {
		target, found = g.authorAt(ref, c.Index)
		return target, found
	})
	g.blog.record(c, author, cnt, body, target, found, at) // boardstore.go
	if err != nil {
		ev := g.n.log.Warn()
		if c.Index <= g.replayTo {
			ev = g.n.log.Debug() // logged and counted when first applied
		} else {
			g.n.rejects.add("message change: " + changeReason(err))
		}
		ev.Str("group", g.id.String()).Uint64("index", c.Index).Str("kind", cnt.Kind.String()).Str("reason", err.Error()).Msg("ignored a message change")
		return cnt, false, nil
	}
	id := hex.EncodeToString(cnt.Ref[:])
	if m, in := g.hist.get(id); in {
		g.board.Decorate(&m, *cnt.Ref, g.n.selfID)
		g.publishMessage(m)
	}
	return cnt, false, nil
}

func changeReason(err error) string {
	for _, e := range []error{content.ErrNotAuthor, content.ErrUnknownTarget, content.ErrDeleted} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "invalid"
}

// authorAt returns the public id of the author of the group's chat message
// ref, if the group committed it before the index before: from memory when
// the message is in the window, else from its stored log entry.
func (g *group) authorAt(ref [16]byte, before uint64) (string, bool) {
	idx, ok := g.st.MsgIDs.Lookup(ref)
	if !ok || idx >= before {
		return "", false
	}
	if m, ok := g.hist.get(hex.EncodeToString(ref[:])); ok {
		return m.Author, m.Author != ""
	}
	ents, err := g.n.store.Entries(g.id[:], idx, idx+1, 1<<30)
	if err != nil || len(ents) != 1 {
		return "", false
	}
	c := g.st.AcceptedChat(idx, ents[0].GetData())
	if c == nil || c.ID != ref {
		return "", false
	}
	a := g.st.MemberOrFormer(c.Sender)
	if a == nil {
		return "", false
	}
	return g.idText(a.ID), true
}

// openChange opens the accepted chat message c with key and applies it to
// the board if it is a change; it reports whether it was one. It is how
// rebuildHistory reads the messages older than the window it lists.
func (g *group) openChange(c *state.Chat, key *crypto.SenderKey, author string) bool {
	// Most messages are plain text: a decryption tells, without the
	// signature check of a full open (a restart reads every message).
	if rec, err := crypto.PeekRecord(key, g.id, c.Sealed, c.Sender, c.ID); err == nil && (len(rec.Body) == 0 || rec.Body[0] != content.Marker) {
		return false
	}
	opened, err := crypto.OpenMessage(key, g.id, c.Sealed, c.Sender, c.ID)
	if err != nil {
		return false
	}
	_, listed, _ := g.applyContent(c, author, opened.Body)
	return !listed
}
