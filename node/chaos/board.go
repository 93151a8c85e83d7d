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
// restarts meet stored boards, and members that return or join meet boards
// they must catch up with, every third send or so is a reaction of the
// sending node to the last message it had acknowledged, with an emoji that
// changes every few reactions, and the settled group is checked for one
// board: every member shows the same reactions on every message it can
// read all of (those after its latest join: checkBoards); a message shows
// at most one reaction, one sent to it (its author's: a later one replaces
// an earlier one); and each acknowledged or queued reaction shows on its
// target (none takes one back; a queued one of a member that left is
// dropped with its outbox).

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
	done   time.Time // when the reaction's post returned (restore.go)
	// unchanged is set when the node had the reaction already, committed
	// or queued: acknowledged as it, it stands for that one (restore.go).
	unchanged bool
}

// reactTarget returns the message node from last had acknowledged, "" if
// none, when the j-th send of step k should be a reaction.
func (r *runner) reactTarget(from, k, j int) string {
	if (k+j)%reactEvery != reactEvery-1 {
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
		var m node.Message
		m, res.out, res.err = r.call(ctx, from, wait, func(ctx context.Context, n *node.Node) (node.Message, error) {
			return n.Post(ctx, r.c.GroupID, content.Content{Kind: content.Reaction, Ref: &ref, Emoji: emoji}, wait)
		})
		res.unchanged = m.Unchanged
	}
	res.done = time.Now()
	r.mu.Lock()
	r.reacts = append(r.reacts, res)
	r.mu.Unlock()
}

// boardView is what one settled member shows: the reactions on each
// message it lists, and the log index of its latest join (0 in runs without
// churn), after which it can read every message and every reaction.
type boardView struct {
	node     string
	joinedAt uint64
	notes    map[string]shownNote // by message id
}

// shownNote is a listed message's log index and its reactions as a member
// shows them, emoji and counts (not whether they are the reader's).
type shownNote struct {
	index     uint64
	reactions string
}

// boardView returns node i's view, joined at joinedAt.
func (r *runner) boardView(i int, joinedAt uint64) (boardView, error) {
	ms, err := r.c.Committed(i)
	if err != nil {
		return boardView{}, err
	}
	v := boardView{node: fmt.Sprintf("node%d", i), joinedAt: joinedAt, notes: make(map[string]shownNote, len(ms))}
	for _, m := range ms {
		parts := make([]string, 0, len(m.Reactions))
		for _, x := range m.Reactions {
			parts = append(parts, fmt.Sprintf("%s x%d", x.Emoji, x.Count))
		}
		sort.Strings(parts)
		v.notes[m.ID] = shownNote{index: m.Index, reactions: strings.Join(parts, " ")}
	}
	return v, nil
}

// boardViews returns the view of every member of the settled group (in a
// churn run, the current members, as node0 lists them, each from its
// latest join), and which senders' queued reactions must show: those of
// current members (one that left took its outbox with it, as for texts).
func (r *runner) boardViews() ([]boardView, map[int]bool, error) {
	var views []boardView
	current := map[int]bool{}
	if !r.o.Churn {
		for i := range r.c.Members() {
			v, err := r.boardView(i, 0)
			if err != nil {
				return nil, nil, err
			}
			views, current[i] = append(views, v), true
		}
		return views, current, nil
	}
	g, ok := r.inGroup(0)
	if !ok {
		return nil, nil, fmt.Errorf("node0 is down or not in the group")
	}
	for _, m := range g.Members {
		i := r.c.Index(m.PublicID)
		mg, ok := r.inGroup(i)
		if i < 0 || !ok {
			return nil, nil, fmt.Errorf("member %s is down or not in the group", m.PublicID)
		}
		v, err := r.boardView(i, mg.JoinedAt)
		if err != nil {
			return nil, nil, err
		}
		views, current[i] = append(views, v), true
	}
	return views, current, nil
}

// checkBoards waits until the settled group shows one board, in which every
// acknowledged or queued reaction shows on its target (see above).
func (r *runner) checkBoards(ctx context.Context) error {
	r.mu.Lock()
	reacts := append([]reactResult(nil), r.reacts...)
	r.mu.Unlock()
	return r.waitSettled(ctx, func() (why, stop error) {
		views, current, err := r.boardViews()
		if err != nil {
			return err, nil
		}
		return checkBoards(views, reacts, current), nil
	})
}

// checkBoards checks the boards of a settled group, as each member shows
// them, against every reaction of the run. A message must show the same
// reactions on every member that lists it and joined before it (and so can
// read every reaction to it: reactions come after their targets); a member
// that joined later, or lists it from an earlier membership, may miss
// some. current are the senders whose queued reactions must show. Whether
// every member lists what it must is the delivery check's (check.go).
func checkBoards(views []boardView, reacts []reactResult, current map[int]bool) error {
	type seen struct {
		index uint64
		id    string
	}
	var msgs []seen
	for _, v := range views {
		for id, n := range v.notes {
			msgs = append(msgs, seen{n.index, id})
		}
	}
	sort.Slice(msgs, func(i, j int) bool { // the same report for the same run
		return msgs[i].index < msgs[j].index || msgs[i].index == msgs[j].index && msgs[i].id < msgs[j].id
	})
	shown := map[string]string{} // by id, as every member that must shows it
	for k, m := range msgs {
		if k > 0 && msgs[k-1] == m {
			continue
		}
		first := -1
		for i, v := range views {
			n, ok := v.notes[m.id]
			if !ok || v.joinedAt >= m.index {
				continue
			}
			if first < 0 {
				first, shown[m.id] = i, n.reactions
			} else if n.reactions != shown[m.id] {
				return violation(InvOneBoard, "%s shows reactions %q on %s, %s %q", v.node, n.reactions, m.id, views[first].node, shown[m.id])
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
	ids := make([]string, 0, len(shown))
	for id := range shown {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if s := shown[id]; s != "" && !sent[id][s] {
			return violation(InvReactions, "%s shows reactions %q, not one reaction sent to it", id, s)
		}
	}
	for _, x := range reacts {
		s, must := shown[x.target]
		if must && (x.out == acked || x.out == queued && current[x.from]) && s == "" {
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
