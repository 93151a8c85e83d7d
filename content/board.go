package content

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/demes/demes/api"
)

// Errors of Board.Apply: the change is ignored, and never shown.
var (
	// ErrNotAuthor: an edit or a delete of someone else's message.
	ErrNotAuthor = errors.New("only a message's author may edit or delete it")
	// ErrUnknownTarget: a change of a message the group does not have
	// (before it), or of a change.
	ErrUnknownTarget = errors.New("the message it changes is not in the group")
	// ErrDeleted: a change of a deleted message.
	ErrDeleted = errors.New("the message it changes is deleted")
)

// Board is a group's changes to its messages, gathered as the messages are
// applied in the group's order: the reactions, the latest edit and the
// deletion of each message, and which messages are changes (reactions,
// edits, deletes), not listed themselves. The zero Board is empty and
// ready; it is not safe for concurrent use.
type Board struct {
	notes   map[[16]byte]*Note
	changes map[[16]byte]struct{}
}

// Note is what changed a message.
type Note struct {
	// Reactions is each reactor's reaction, sorted by the reactor's
	// public id, one per reactor. A slice, not a map: most messages have
	// one or a few reactions, and a Go map of one entry takes about 300
	// bytes: a reaction cost a group 665 bytes of memory for as long as
	// it lives, 377 with the slice (BenchmarkBoardMemory in node/).
	Reactions []Reactor
	// Text is the latest edit's text, when Edited.
	Text    string
	Edited  bool
	Deleted bool
}

// Reactor is one member's reaction to a message.
type Reactor struct {
	Who   string // the reactor's public id
	Emoji string
}

// Reaction returns the reaction of the member who (a public id) to the
// message, or "" if none.
func (n *Note) Reaction(who string) string {
	if i, ok := n.find(who); ok {
		return n.Reactions[i].Emoji
	}
	return ""
}

// find returns where who's reaction is in n.Reactions, or would be.
func (n *Note) find(who string) (int, bool) {
	return slices.BinarySearchFunc(n.Reactions, who, func(r Reactor, who string) int { return strings.Compare(r.Who, who) })
}

// react sets who's reaction to emoji, or takes it back if emoji is "".
func (n *Note) react(who, emoji string) {
	i, ok := n.find(who)
	switch {
	case ok && emoji == "":
		n.Reactions = slices.Delete(n.Reactions, i, i+1)
		if len(n.Reactions) == 0 {
			n.Reactions = nil
		}
	case ok:
		n.Reactions[i].Emoji = emoji
	case emoji != "":
		n.Reactions = slices.Insert(n.Reactions, i, Reactor{Who: who, Emoji: emoji})
	}
}

// Lookup returns the author of the message id, and whether the group has
// that message (applied before the change).
type Lookup func(id [16]byte) (author string, ok bool)

// MarkChange records the message id as a change that was applied before,
// without applying it: for a board that holds part of a group's changes
// (a node keeps the rest in its store), the change of another message
// whose own note it learns.
func (b *Board) MarkChange(id [16]byte) {
	if b.changes == nil {
		b.changes = map[[16]byte]struct{}{}
		b.notes = map[[16]byte]*Note{}
	}
	b.changes[id] = struct{}{}
}

// Size returns how many messages the board marks as changes, and how many
// notes it holds: what it costs in memory.
func (b *Board) Size() (changes, notes int) { return len(b.changes), len(b.notes) }

// IsChange reports whether the message id is a change (a reaction, an edit
// or a delete) that Apply took or refused: it is not listed.
func (b *Board) IsChange(id [16]byte) bool {
	_, ok := b.changes[id]
	return ok
}

// Apply applies the message id by author, whose content is c, to the
// board. A text changes nothing. A change is recorded as one (see IsChange)
// whether or not it is valid; an invalid one (an edit or a delete by
// anyone but the target's author, a change of an unknown or deleted
// message) changes nothing else, and its error says why.
func (b *Board) Apply(id [16]byte, author string, c Content, lookup Lookup) error {
	if c.Kind == Text || c.Kind == File {
		return nil
	}
	if b.changes == nil {
		b.changes = map[[16]byte]struct{}{}
		b.notes = map[[16]byte]*Note{}
	}
	b.changes[id] = struct{}{}
	if c.Ref == nil {
		return fmt.Errorf("%w: no target", ErrUnknownTarget)
	}
	ref := *c.Ref
	if b.IsChange(ref) {
		return fmt.Errorf("%w: it names a %s, not a message", ErrUnknownTarget, "change")
	}
	target, ok := lookup(ref)
	if !ok {
		return ErrUnknownTarget
	}
	n := b.notes[ref]
	if n != nil && n.Deleted {
		return ErrDeleted
	}
	if (c.Kind == Edit || c.Kind == Delete) && target != author {
		return ErrNotAuthor
	}
	if n == nil {
		n = &Note{}
		b.notes[ref] = n
	}
	switch c.Kind {
	case Reaction:
		n.react(author, c.Emoji)
	case Edit:
		n.Text, n.Edited = c.Text, true
	case Delete:
		*n = Note{Deleted: true}
	}
	return nil
}

// Note returns a copy of the changes to the message id, or nil if none.
func (b *Board) Note(id [16]byte) *Note {
	n := b.notes[id]
	if n == nil {
		return nil
	}
	c := *n
	c.Reactions = slices.Clone(n.Reactions)
	return &c
}

// Decorate shows the changes to m (a listed message whose id is id) on it,
// for the reader self (a public id).
func (b *Board) Decorate(m *api.Message, id [16]byte, self string) {
	if n := b.notes[id]; n != nil {
		n.Decorate(m, self)
	}
}

// Decorate shows the changes n on m, for the reader self (a public id): a
// deleted message has no text, reply or reactions left; an edited one has
// its latest text; the reactions are counted by emoji, most first.
func (n *Note) Decorate(m *api.Message, self string) {
	if n == nil {
		return
	}
	if n.Deleted {
		m.Text, m.ReplyTo, m.Reactions, m.Edited, m.Deleted, m.Attachment = "", "", nil, false, true, nil
		return
	}
	if n.Edited {
		m.Text, m.Edited = n.Text, true
	}
	m.Reactions = nil
	counts := map[string]*api.Reaction{}
	for _, who := range n.Reactions {
		e := who.Emoji
		r := counts[e]
		if r == nil {
			r = &api.Reaction{Emoji: e, Legacy: CheckReaction(e) != nil}
			counts[e] = r
		}
		r.Count++
		r.Mine = r.Mine || who.Who == self
	}
	for _, r := range counts {
		m.Reactions = append(m.Reactions, *r)
	}
	sort.Slice(m.Reactions, func(i, j int) bool {
		a, b := m.Reactions[i], m.Reactions[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Emoji < b.Emoji
	})
}

// Show sets m's text and reply from its own content c (a text), or, for
// content this version cannot show, says so in its text.
func Show(m *api.Message, c Content, err error) {
	switch {
	case errors.Is(err, ErrUnsupported):
		m.Text = "(a message a newer DeMeS version wrote; update to read it)"
	case err != nil:
		m.Text = "(a message this node cannot read: its content is malformed)"
	default:
		m.Text = c.Text
		if c.Ref != nil {
			m.ReplyTo = fmt.Sprintf("%x", c.Ref[:])
		}
		if c.Kind == File {
			// Listed like a text whose text is the file's name (what an
			// older client shows, and what a search finds).
			f := c.File
			m.Text = f.Name
			m.Attachment = &api.Attachment{Name: f.Name, Type: f.Type, Size: f.Size, Blob: fmt.Sprintf("%x", f.Blob[:])}
			return
		}
		if c.Kind != Text {
			m.Kind = c.Kind.String()
			m.Text = c.Text
			if c.Ref != nil {
				m.ReplyTo, m.Target = "", fmt.Sprintf("%x", c.Ref[:])
			}
			if c.Kind == Reaction {
				m.Text = c.Emoji
			}
		}
	}
}
