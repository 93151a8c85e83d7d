package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
)

// Send seals text to the group's members and proposes it. It returns once
// the message is committed, or when wait runs out (or at once for a wait of
// 0): the message then stays queued in the durable outbox and is sent
// later, exactly once. Either way it returns only once the message is on
// this node's disk, in the log or in the outbox; an error means it may or
// may not be sent.
func (n *Node) Send(ctx context.Context, groupID, text string, wait time.Duration) (Message, error) {
	if text == "" {
		return Message{}, fmt.Errorf("empty message: %w", ErrInvalid)
	}
	if len(text) > crypto.MaxBody {
		return Message{}, fmt.Errorf("message is %d bytes, the limit is %d: %w", len(text), crypto.MaxBody, ErrInvalid)
	}
	return n.Post(ctx, groupID, content.Content{Kind: content.Text, Text: text}, wait)
}

// Post sends the content c (a text, a reply, a reaction, an edit or a
// delete; see package content) as Send sends a text. A change must name a
// message of the group in its order, and an edit or a delete one of this
// member's; a reaction one emoji (content.CheckReaction: stricter than
// what the group accepts from others, which is not this node's to change).
func (n *Node) Post(ctx context.Context, groupID string, c content.Content, wait time.Duration) (Message, error) {
	if c.Kind == content.Reaction && c.Emoji != "" {
		if err := content.CheckReaction(c.Emoji); err != nil {
			return Message{}, fmt.Errorf("%w: %w", err, ErrInvalid)
		}
	}
	body, err := content.Encode(c)
	if err != nil {
		return Message{}, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return Message{}, err
	}
	// Right after a start, the node reads its log again first: until then
	// it may not know it is a member.
	if err := g.waitView(ctx, func(v *view) bool { return v.replayed }); err != nil {
		return Message{}, fmt.Errorf("send: the node is still reading its log after its start: %w", err)
	}
	var (
		msg                       Message
		durable, done, firstRound chan struct{}
		serr                      error
	)
	unchanged := false
	if err := g.do(ctx, func() {
		if serr = g.checkChange(c); serr == nil {
			if unchanged, durable = g.changesNothing(c); !unchanged {
				msg, durable, done, firstRound, serr = g.enqueue(string(body))
			}
		}
	}); err != nil {
		return Message{}, err
	}
	if serr != nil {
		return Message{}, serr
	}
	if unchanged && durable == nil {
		return g.unchangedMessage(c), nil
	}
	if unchanged {
		// What this member has is a queued reaction: unchanged once
		// that one is on disk (below).
		msg, wait = g.unchangedMessage(c), 0
	}
	// A message the quota holds back goes out only once the quota allows,
	// which waiting here would not change: answer at once (the caller
	// says it is held). Waiting out the timeout only delayed that.
	if wait > 0 && !msg.Held {
		t := time.NewTimer(wait)
		defer t.Stop()
		// Once the message went directly to the members (the group
		// committed nothing for a while), the send answers as soon as it
		// is clear the group cannot commit soon: a majority of the voters
		// is offline. It says then how many members hold the message.
		var check <-chan time.Time
	wait:
		for {
			select {
			case <-done:
				return g.committedMessage(msg), nil
			case <-firstRound:
				firstRound = nil
				tk := time.NewTicker(stuckCheck)
				defer tk.Stop()
				check = tk.C
				if g.stuck(ctx) {
					break wait
				}
			case <-check:
				if g.stuck(ctx) {
					break wait
				}
			case <-t.C:
				break wait
			case <-ctx.Done():
				return Message{}, fmt.Errorf("send: %w (the message may still be sent)", ctx.Err())
			case <-g.stopc:
				break wait
			case <-g.donec:
				break wait
			}
		}
		select {
		case <-done:
			return g.committedMessage(msg), nil
		default:
		}
		_ = g.do(ctx, func() {
			if p := g.outbox[g.currentID(msgID(msg))]; p != nil {
				msg = g.pendingMessage(p)
			}
		})
	}
	// Acknowledged as queued: it must be on disk first. Its outbox write
	// rides with the group's next write; this one makes it now.
	var derr error
	if err := g.do(ctx, func() { derr = g.makeDurable(durable) }); err != nil && !errors.Is(err, ErrStopped) {
		return Message{}, fmt.Errorf("send: %w (the message may still be sent)", err)
	}
	if derr != nil {
		return Message{}, fmt.Errorf("send: %w", derr)
	}
	select {
	case <-durable:
		return msg, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("send: %w (the message may still be sent)", ctx.Err())
	case <-g.donec:
		return Message{}, fmt.Errorf("send: the message was not stored: %w", g.stoppedErr())
	}
}

// committedMessage returns msg, sent and now committed, as listed.
func (g *group) committedMessage(msg Message) Message {
	var m Message
	var ok bool
	_ = g.do(context.Background(), func() {
		// Sent again under a new id if another member's message took
		// its first (idtaken.go).
		id := g.currentID(msgID(msg))
		msg.ID = hex.EncodeToString(id[:])
		m, ok = g.hist.get(msg.ID)
	})
	if ok {
		return m
	}
	// A change (a reaction, an edit, a delete) is not listed, so not in
	// hist: its place in the log is in the state's index of message ids.
	_ = g.do(context.Background(), func() { msg.Index, _ = g.st.MsgIDs.Lookup(msgID(msg)) })
	msg.State, msg.Order, msg.Delivered, msg.Others = StateCommitted, 0, 0, 0
	return msg
}

// msgID returns the id of a message this node listed.
func msgID(m Message) [16]byte {
	var id [16]byte
	hex.Decode(id[:], []byte(m.ID))
	return id
}
