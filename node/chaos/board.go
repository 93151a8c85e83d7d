package chaos

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/demes/demes/content"
	"github.com/demes/demes/node"
)

// Reactions in the schedules. A reaction is a change: committed like any
// message but not listed, shown on its target instead, from the group's
// board, which a restart restores from the stored board (its parts,
// node/boardparts.go) and the log after the snapshot. So that crashes and
// restarts meet stored boards, every third send of a schedule without churn
// or so is a reaction of the sending node to the last message it had
// acknowledged, with an emoji that changes every few reactions, and the
// settled group is checked for one board: every member shows the same
// reactions on every message; a message shows at most one reaction, one
// sent to it (its author's: a later one replaces an earlier one); and each
// acknowledged or queued reaction shows on its target (none takes one
// back).

// reactEvery: about every reactEvery-th send is a reaction, when its node
// has a message of its own acknowledged to react to.
const reactEvery = 3

// reactions are the emoji the schedules react with.
var reactions = []string{"👍", "🎉", "🔥"}

// reactResult is one reaction of the run.
type reactResult struct {
	from   int
	target string // the message reacted to
	emoji  string
	out    outcome
	err    error
}

// reactTarget returns the message node from last had acknowledged, "" if
// none, when the j-th send of step k should be a reaction.
func (r *runner) reactTarget(from, k, j int) string {
	if r.o.Churn || (k+j)%reactEvery != reactEvery-1 {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastAcked[from]
}

// noteAcked records id, a message node from sent and had acknowledged.
func (r *runner) noteAcked(from int, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastAcked == nil {
		r.lastAcked = map[int]string{}
	}
	r.lastAcked[from] = id
}

// react sends node from's reaction emoji to the message target.
func (r *runner) react(ctx context.Context, from int, target, emoji string, wait time.Duration) {
	res := reactResult{from: from, target: target, emoji: emoji, out: failed}
	var ref [16]byte
	if _, err := hex.Decode(ref[:], []byte(target)); err != nil {
		res.err = err
	} else {
		_, res.out, res.err = r.call(ctx, from, wait, func(ctx context.Context, n *node.Node) (node.Message, error) {
			return n.Post(ctx, r.c.GroupID, content.Content{Kind: content.Reaction, Ref: &ref, Emoji: emoji}, wait)
		})
	}
	r.mu.Lock()
	r.reacts = append(r.reacts, res)
	r.mu.Unlock()
}

// boards returns, for every message node i lists, its reactions as the
// node shows them, emoji and counts (not whether they are the reader's).
func (r *runner) boards(i int) (map[string]string, error) {
	ms, err := r.c.Committed(i)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		parts := make([]string, 0, len(m.Reactions))
		for _, x := range m.Reactions {
			parts = append(parts, fmt.Sprintf("%s x%d", x.Emoji, x.Count))
		}
		sort.Strings(parts)
		out[m.ID] = strings.Join(parts, " ")
	}
	return out, nil
}

// checkBoards waits until the settled group shows one board, in which every
// acknowledged or queued reaction shows on its target (see above).
func (r *runner) checkBoards(ctx context.Context) error {
	r.mu.Lock()
	reacts := append([]reactResult(nil), r.reacts...)
	r.mu.Unlock()
	return r.waitSettled(ctx, func() (why, stop error) {
		var shown []map[string]string
		for i := range r.c.Members() {
			b, err := r.boards(i)
			if err != nil {
				return err, nil
			}
			shown = append(shown, b)
		}
		return checkBoards(shown, reacts), nil
	})
}

// checkBoards checks the boards of a settled group, shown[i] from node i
// (reactions by message id, as boards gives them), against every reaction
// of the run.
func checkBoards(shown []map[string]string, reacts []reactResult) error {
	if len(shown) == 0 {
		return nil
	}
	ids := make([]string, 0, len(shown[0]))
	for id := range shown[0] {
		ids = append(ids, id)
	}
	sort.Strings(ids) // the same report for the same run
	for i, b := range shown {
		for _, id := range ids {
			if b[id] != shown[0][id] {
				return violation(InvOneBoard, "node%d shows reactions %q on %s, node0 %q", i, b[id], id, shown[0][id])
			}
		}
	}
	// Only a message's author reacts to it, so a message shows one
	// reaction at most, one that was sent to it (whatever its outcome: a
	// failed one may have reached the outbox).
	sent := map[string]map[string]bool{}
	for _, x := range reacts {
		if sent[x.target] == nil {
			sent[x.target] = map[string]bool{}
		}
		sent[x.target][x.emoji+" x1"] = true
	}
	for _, id := range ids {
		if s := shown[0][id]; s != "" && !sent[id][s] {
			return violation(InvReactions, "%s shows reactions %q, not one reaction sent to it", id, s)
		}
	}
	for _, x := range reacts {
		if (x.out == acked || x.out == queued) && shown[0][x.target] == "" {
			return violation(InvReactions, "node%d's reaction %s to %s (%s) shows on no member", x.from, x.emoji, x.target, x.out)
		}
	}
	return nil
}

func (o outcome) String() string {
	switch o {
	case acked:
		return "acknowledged"
	case queued:
		return "queued"
	case failed:
		return "failed"
	case shown:
		return "shown tentative"
	}
	return fmt.Sprintf("outcome %d", int(o))
}
