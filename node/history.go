package node

import (
	"fmt"

	"github.com/demes/demes/api"
)

// history is the committed messages of a group that this node has read
// (opened), in group order, as the group's goroutine lists them.
type history struct {
	msgs []Message
	// byID is each message's position: its index in msgs plus base, the
	// number of messages dropped from the front of msgs, so that dropping
	// one renumbers nothing.
	byID map[string]int
	base int
}

func newHistory() history { return history{byID: map[string]int{}} }

// add lists m, the newest message read.
func (h *history) add(m Message) {
	h.byID[m.ID] = h.base + len(h.msgs)
	h.msgs = append(h.msgs, m)
}

// pos returns the index in h.msgs of the message whose id is id.
func (h *history) pos(id string) (int, bool) {
	p, ok := h.byID[id]
	return p - h.base, ok
}

// get returns the message whose id is id, if listed.
func (h *history) get(id string) (Message, bool) {
	if i, ok := h.pos(id); ok {
		return h.msgs[i], true
	}
	return Message{}, false
}

// messagePage returns the page of the group's messages (the committed ones
// read here in group order, then this node's queued ones) that ends right
// before the message whose id is before (the newest page when before is
// empty), at most limit long (every message before it for 0), and whether
// older ones exist. It copies only the page, whatever the length of the
// history.
func (g *group) messagePage(limit int, before string) (MessagePage, error) {
	if err := api.CheckLimit(limit); err != nil {
		return MessagePage{}, err
	}
	var queued []Message
	for _, p := range g.sortedPending() {
		queued = append(queued, g.pendingMessage(p))
	}
	// The page ends among the queued messages or among the committed
	// ones.
	qEnd, cEnd := len(queued), len(g.hist.msgs)
	if before != "" {
		qEnd = -1
		for i := range queued {
			if queued[i].ID == before {
				qEnd = i
				break
			}
		}
		if qEnd < 0 {
			i, ok := g.hist.pos(before)
			if !ok {
				return MessagePage{}, fmt.Errorf("no message %q in this group: %w", before, api.ErrUnknownMessage)
			}
			qEnd, cEnd = 0, i
		}
	}
	if limit == 0 {
		limit = cEnd + qEnd
	}
	qStart := max(0, qEnd-limit)
	cStart := max(0, cEnd-(limit-(qEnd-qStart)))
	out := make([]Message, 0, cEnd-cStart+qEnd-qStart)
	out = append(out, g.hist.msgs[cStart:cEnd]...)
	out = append(out, queued[qStart:qEnd]...)
	return MessagePage{Messages: out, More: cStart > 0 || qStart > 0}, nil
}
