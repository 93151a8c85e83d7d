package web

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
)

// Post implements Backend as the node does, in a group with a quorum: a
// reply commits as a message; a change (reaction, edit, delete) commits, is
// not listed, and shows on its target, which every member is told of again.
func (n *fakeNode) Post(ctx context.Context, groupID string, c content.Content, wait time.Duration) (api.Message, error) {
	return n.post(ctx, groupID, c, wait, false)
}

// postAsOld is Post as an earlier DeMeS did it, which sent any short text
// as a reaction ("+1"); the members' nodes still accept those.
func (n *fakeNode) postAsOld(ctx context.Context, groupID string, c content.Content, wait time.Duration) (api.Message, error) {
	return n.post(ctx, groupID, c, wait, true)
}

func (n *fakeNode) post(ctx context.Context, groupID string, c content.Content, wait time.Duration, old bool) (api.Message, error) {
	if c.Kind == content.Text && c.Ref == nil {
		return n.Send(ctx, groupID, c.Text, wait)
	}
	if c.Kind == content.Reaction && c.Emoji != "" && !old {
		if err := content.CheckReaction(c.Emoji); err != nil {
			return api.Message{}, fmt.Errorf("%w: %w", err, api.ErrInvalid)
		}
	}
	if _, err := content.Encode(c); err != nil {
		return api.Message{}, fmt.Errorf("%v: %w", err, api.ErrInvalid)
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return api.Message{}, err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return api.Message{}, err
	}
	if !g.quorum {
		return api.Message{}, fmt.Errorf("fake: Post without a quorum is not modelled")
	}
	m := api.Message{
		ID: randomHex(16), Author: n.pub.String(), Name: n.name,
		SentAt: time.Now().UTC().Truncate(time.Millisecond), GroupID: g.id,
	}
	content.Show(&m, c, nil)
	if c.Kind == content.Text {
		return n.w.commitLocked(g, m), nil
	}
	target := hex.EncodeToString(c.Ref[:])
	lookup := func(ref [16]byte) (string, bool) {
		for _, l := range g.log {
			if l.ID == hex.EncodeToString(ref[:]) {
				return l.Author, true
			}
		}
		return "", false
	}
	// The node's own checks, with its words.
	author, ok := lookup(*c.Ref)
	switch {
	case !ok:
		return api.Message{}, fmt.Errorf("no message %s in the group's order: %w", target, api.ErrUnknownMessage)
	case (c.Kind == content.Edit || c.Kind == content.Delete) && author != n.pub.String():
		return api.Message{}, fmt.Errorf("only its author may %s a message; reply or react to it instead: %w", c.Kind, api.ErrForbidden)
	}
	if note := g.board.Note(*c.Ref); note != nil && note.Deleted {
		return api.Message{}, fmt.Errorf("message %s was deleted: %w", target, api.ErrInvalid)
	}
	if c.Kind == content.Reaction {
		// Nothing to change: not sent (the node also counts its own
		// reactions still in the outbox, which the fake has none of).
		mine := ""
		if note := g.board.Note(*c.Ref); note != nil {
			mine = note.Reaction(n.pub.String())
		}
		if mine == c.Emoji {
			m.ID, m.Unchanged = "", true
			return m, nil
		}
	}
	id, _ := hex.DecodeString(m.ID)
	if err := g.board.Apply([16]byte(id), n.pub.String(), c, lookup); err != nil {
		return api.Message{}, fmt.Errorf("fake: %w", err)
	}
	m.State = api.StateCommitted
	for _, l := range g.log {
		if l.ID == target {
			for _, mem := range g.members {
				t := l
				g.decorateLocked(&t, mem)
				mem.notifyLocked(api.Event{Kind: "message", GroupID: g.id, Message: &t})
			}
		}
	}
	return m, nil
}

// decorateLocked shows the changes to m, a message of g's log, as member
// reader sees them.
func (g *fakeGroup) decorateLocked(m *api.Message, reader *fakeNode) {
	id, err := hex.DecodeString(m.ID)
	if err != nil || len(id) != 16 {
		return
	}
	g.board.Decorate(m, [16]byte(id), reader.pub.String())
}

// reaction is the reaction emoji to the message id.
func reaction(t testing.TB, id, emoji string) content.Content {
	t.Helper()
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		t.Fatalf("message id %q", id)
	}
	return content.Content{Kind: content.Reaction, Ref: (*[16]byte)(b), Emoji: emoji}
}
