package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/demes/demes/api"
)

// The fake node's reads: the messages, a search, a page, a transcript, as
// the node answers them.

// Messages lists a group's messages as the node does: the committed ones
// in order, then the tentative ones (every member's: the fake's members all
// reach each other).
func (n *fakeNode) Messages(groupID string) ([]api.Message, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return nil, err
	}
	g, err := n.readGroupLocked(groupID)
	if err != nil {
		return nil, err
	}
	out := append([]api.Message(nil), g.log...)
	for i := range out {
		g.decorateLocked(&out[i], n)
	}
	for _, p := range g.outbox {
		m := p.msg
		if p.from != n {
			if m.Held {
				continue // held back: nobody else has it
			}
			m.Delivered, m.Others = 0, 0
		}
		out = append(out, m)
	}
	for i := range out {
		g.markNameLocked(&out[i])
	}
	return out, nil
}

// Search implements Backend: a case-blind substring match, the newest first, as the node searches.
func (n *fakeNode) Search(ctx context.Context, groupID, query string, limit int) ([]api.Message, error) {
	msgs, err := n.Messages(groupID)
	if err != nil {
		return nil, err
	}
	var out []api.Message
	q := strings.ToLower(query)
	for i := len(msgs) - 1; i >= 0 && len(out) < limit; i-- {
		if strings.Contains(strings.ToLower(msgs[i].Text), q) {
			out = append(out, msgs[i])
		}
	}
	return out, nil
}

// MessagePage implements Backend: a page of Messages, as the node pages.
func (n *fakeNode) MessagePage(groupID string, limit int, before string) (api.MessagePage, error) {
	n.w.mu.Lock()
	hook := n.beforePage
	n.w.mu.Unlock()
	if hook != nil && before != "" {
		hook()
	}
	msgs, err := n.Messages(groupID)
	if err != nil {
		return api.MessagePage{}, err
	}
	p, err := api.Page(msgs, limit, before)
	n.w.mu.Lock()
	n.largestPage = max(n.largestPage, len(p.Messages))
	n.w.mu.Unlock()
	return p, err
}

// Transcript implements Backend.
func (n *fakeNode) Transcript(ctx context.Context, groupID string, r api.TranscriptRange) ([]byte, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return nil, err
	}
	g, err := n.readGroupLocked(groupID)
	if err != nil {
		return nil, err
	}
	if r.From == "bad" {
		return nil, fmt.Errorf("the range's start: %q is no bound: %w", r.From, api.ErrInvalid)
	}
	return json.MarshalIndent(map[string]any{"group_id": g.id, "entries": g.log, "range": r}, "", "  ")
}
