package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// ReconnectResult says how a reconnect went.
type ReconnectResult = api.ReconnectResponse

// Reconnect points this node at a current member of a group it belongs to,
// for a member that was away and knows no live member's address (everyone
// it knew moved or left). target is that member's peer URL, or an invite
// code of the group (its inviter's addresses are used; any invite will do,
// whoever it was for). This node sends the member a signed behind notice
// with its own address, which the member uses to reach it from then on,
// and the member pushes the log this node missed (catchup.go); Reconnect
// returns once this node has applied it, or at once when the member holds
// nothing this node lacks.
func (n *Node) Reconnect(ctx context.Context, groupID, target string) (ReconnectResult, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return ReconnectResult{}, err
	}
	urls, err := reconnectURLs(g.id, target)
	if err != nil {
		return ReconnectResult{}, fmt.Errorf("reconnect: %v: %w", err, ErrInvalid)
	}
	v := g.view.Load()
	if !v.self {
		return ReconnectResult{}, fmt.Errorf("reconnect: this node is not a member of group %s (it left or was removed; it needs a new invite): %w", g.id, ErrInvalid)
	}
	if v.fork != nil {
		return ReconnectResult{}, fmt.Errorf("reconnect: %w", ErrHalted)
	}
	before := v.applied
	res := ReconnectResult{GroupID: g.id.String(), Before: before}
	// Whoever answers pushes with a key this node may not know yet.
	c := &n.catchUps
	c.mu.Lock()
	c.anyone[g.id] = time.Now().Add(reconnectWindow)
	c.mu.Unlock()
	frame, err := n.behindNotice(g, v, [32]byte{})
	if err != nil {
		return res, err
	}
	var (
		answer   *crypto.Envelope
		answerAt string
		lastErr  error
	)
	for _, url := range urls {
		cctx, cancel := context.WithTimeout(ctx, challengeTimeout)
		resp, err := n.cfg.Link.Post(cctx, url, frame)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		env, err := crypto.Verify(resp)
		if err != nil || env.Type != crypto.TypeBehind || env.Group != g.id {
			lastErr = fmt.Errorf("%s answered something else than a member of the group would", url)
			continue
		}
		answer, answerAt = env, url
		break
	}
	if answer == nil {
		switch {
		case refused(lastErr):
			return res, fmt.Errorf("reconnect: the member at %s does not count this node as a member of the group (it may be behind this node, or this node was removed): %w", strings.Join(urls, ", "), ErrForbidden)
		case unanswered(lastErr):
			return res, fmt.Errorf("reconnect: no member answered at %s (%s): %w", strings.Join(urls, ", "), noAnswerWhy(lastErr), ErrUnreachable)
		}
		return res, fmt.Errorf("reconnect: %v: %w", lastErr, ErrUnreachable)
	}
	var b behindBody
	if err := state.Decode(answer.Payload, &b); err != nil {
		return res, fmt.Errorf("reconnect: the member's answer is malformed: %v: %w", err, ErrUnreachable)
	}
	res.Member = n.memberText(g, answer.Sender)
	// The member answered there, signed: that is where to reach it, until
	// the log says otherwise (like its own address announcement).
	_ = g.do(ctx, func() {
		if m := g.st.Members[answer.Sender]; m != nil && m.URL != answerAt && urlOf(answer.Sender, answerAt) {
			g.urlHint[answer.Sender] = answerAt
		}
	})
	if b.Applied > before {
		// The member pushes what this node lacks; its members are
		// trusted once checked, and raft then brings this node up to
		// where the member was.
		err := g.waitView(ctx, func(v *view) bool { return v.applied >= b.Applied })
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return res, fmt.Errorf("reconnect: the member holds the log up to entry %d, this node reached %d before the time ran out (it goes on catching up in the background): %w", b.Applied, g.view.Load().applied, err)
			}
			return res, fmt.Errorf("reconnect: %w", err)
		}
	}
	res.After = g.view.Load().applied
	return res, nil
}

// reconnectURLs returns the peer URLs target names for group gid: itself,
// or an invite code's addresses.
func reconnectURLs(gid crypto.GroupID, target string) ([]string, error) {
	target = strings.TrimSpace(target)
	if strings.HasPrefix(target, InvitePrefix) {
		inv, err := ParseInvite(target)
		if err != nil {
			return nil, err
		}
		if inv.Group != gid {
			return nil, fmt.Errorf("the invite is for group %s, not %s", inv.Group, gid)
		}
		return inv.URLs, nil
	}
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "sim://") {
		return nil, fmt.Errorf("%q is neither a member's peer URL (http://HOST:PORT) nor an invite code", target)
	}
	return []string{target}, nil
}

// memberText names member k of g for a person: its public id.
func (n *Node) memberText(g *group, k [32]byte) string {
	if m, ok := g.view.Load().members[k]; ok {
		return m.id.String()
	}
	return ""
}
