package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/demes/demes/node"
)

// Churn runs (Options.Churn): members join, leave and stay away during the
// faults. The run starts Options.Spares nodes besides the group's, in no
// group; Join steps have a live member invite one of them. Leave steps have
// a member other than node0 leave (node0, the creator, stays, so that the
// group keeps an admin and a member to ask who the members are). An Away
// step takes a member down until the schedule ends: it must then catch up
// with whatever changed, up to every member it knew having left. A join
// that failed (its answer lost) while the group committed it is run again
// while the group settles, as its person would (a member may repeat a
// join).

// churnTimeout bounds an invite, join or leave of a churn step; under faults
// one may fail, which the run logs and goes on.
const churnTimeout = 20 * time.Second

// formChurn creates the group on node0 with the first Options.Nodes nodes,
// lets every member invite, and waits until they all count their voters.
func (r *runner) formChurn(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.Settle)
	defer cancel()
	first := r.c.Node(0)
	g, err := first.CreateGroup(ctx, "chaos")
	if err != nil {
		return err
	}
	r.c.GroupID = g.GroupID
	for i := 1; i < r.o.Nodes; i++ {
		code, err := first.Invite(ctx, g.GroupID, r.c.Member(i).ID.Public().String())
		if err != nil {
			return fmt.Errorf("invite node%d: %w", i, err)
		}
		if _, err := r.c.Node(i).Join(ctx, code); err != nil {
			return fmt.Errorf("join node%d: %w", i, err)
		}
	}
	if err := first.SetSettings(ctx, g.GroupID, node.GroupSettings{MembersInvite: true}); err != nil {
		return fmt.Errorf("let every member invite: %w", err)
	}
	want := min(r.o.Nodes, 5)
	return r.c.Until(ctx, fmt.Sprintf("%d voters on every member", want), func() bool {
		for i := 0; i < r.o.Nodes; i++ {
			if r.c.Voters(i) != want {
				return false
			}
		}
		return true
	})
}

// inGroup reports whether node i runs and is a member of the group.
func (r *runner) inGroup(i int) (node.GroupStatus, bool) {
	g, ok := r.c.Status(i)
	return g, ok && g.Role != "left"
}

// live returns the live nodes a step may pick: in churn runs, the live
// members only.
func (r *runner) live() []int {
	if !r.o.Churn {
		return r.c.Live()
	}
	var out []int
	for _, i := range r.c.Live() {
		if _, ok := r.inGroup(i); ok {
			out = append(out, i)
		}
	}
	return out
}

// down returns the crashed nodes a Restart may pick: not the one away.
func (r *runner) down() []int {
	var out []int
	for _, i := range r.c.Down() {
		if !r.away[i] {
			out = append(out, i)
		}
	}
	return out
}

// churnStep runs a Join, Leave or Away step.
func (r *runner) churnStep(ctx context.Context, k int, s Step, rep *Report, pick func([]int) int) error {
	members := r.live()
	switch s.Kind {
	case Join:
		var spares []int
		for _, i := range r.c.Live() {
			if _, ok := r.c.Status(i); !ok && i >= r.o.Nodes {
				spares = append(spares, i)
			}
		}
		inviter, joiner := pick(members), pick(spares)
		if inviter < 0 || joiner < 0 {
			r.logf("%d %s: no live member or no spare", k, s.Kind)
			return nil
		}
		r.logf("%d %s: node%d invites node%d", k, s.Kind, inviter, joiner)
		r.sends.Add(1)
		go func() {
			defer r.sends.Done()
			r.join(ctx, inviter, joiner)
		}()
	case Leave:
		var can []int
		for _, i := range members {
			if i != 0 {
				can = append(can, i)
			}
		}
		g, ok := r.inGroup(0)
		if !ok || len(g.Members) <= 3 {
			r.logf("%d %s: node0 is down or the group is small", k, s.Kind)
			return nil
		}
		target := pick(can)
		if target < 0 {
			r.logf("%d %s: no member to leave", k, s.Kind)
			return nil
		}
		r.logf("%d %s: node%d leaves", k, s.Kind, target)
		r.sends.Add(1)
		go func() {
			defer r.sends.Done()
			r.leave(ctx, target)
		}()
	case Away:
		h := r.c.Host()
		var can []int
		for _, i := range members {
			if i != h {
				can = append(can, i)
			}
		}
		target := pick(can)
		if target < 0 {
			r.logf("%d %s: no member to take away", k, s.Kind)
			return nil
		}
		r.c.Crash(target)
		r.away[target] = true
		rep.Crashes++
		r.logf("%d %s: node%d is away until the end", k, s.Kind, target)
	}
	return nil
}

func (r *runner) join(ctx context.Context, inviter, joiner int) {
	ctx, cancel := context.WithTimeout(ctx, churnTimeout)
	defer cancel()
	n, j := r.c.Node(inviter), r.c.Node(joiner)
	if n == nil || j == nil {
		r.logf("join of node%d: a node crashed first", joiner)
		return
	}
	code, err := n.Invite(ctx, r.c.GroupID, r.c.Member(joiner).ID.Public().String())
	if err != nil {
		r.logf("join of node%d: invite: %v", joiner, err)
		return
	}
	r.mu.Lock()
	r.codes[joiner] = code
	r.mu.Unlock()
	if _, err := j.Join(ctx, code); err != nil {
		r.logf("join of node%d: %v", joiner, err)
		return
	}
	r.logf("node%d joined", joiner)
}

// rejoin runs a join again, as the person whose join failed would: its
// join may have been committed without the answer reaching it, and a
// member may repeat its join (node/join.go). At most one per node and
// churnTimeout.
func (r *runner) rejoin(ctx context.Context, i int) {
	r.mu.Lock()
	code, busy := r.codes[i], r.rejoining[i]
	if code == "" || busy {
		r.mu.Unlock()
		return
	}
	r.rejoining[i] = true
	r.mu.Unlock()
	r.logf("node%d, a member by node0's list, does not count itself one: joining again", i)
	r.sends.Add(1)
	go func() {
		defer r.sends.Done()
		defer func() {
			r.mu.Lock()
			delete(r.rejoining, i)
			r.mu.Unlock()
		}()
		jctx, cancel := context.WithTimeout(ctx, churnTimeout)
		defer cancel()
		if n := r.c.Node(i); n != nil {
			if _, err := n.Join(jctx, code); err != nil {
				r.logf("join of node%d again: %v", i, err)
			}
		}
	}()
}

func (r *runner) leave(ctx context.Context, i int) {
	ctx, cancel := context.WithTimeout(ctx, churnTimeout)
	defer cancel()
	n := r.c.Node(i)
	if n == nil {
		r.logf("leave of node%d: it crashed first", i)
		return
	}
	if err := n.Leave(ctx, r.c.GroupID); err != nil {
		r.logf("leave of node%d: %v", i, err)
		return
	}
	r.mu.Lock()
	r.left[i] = true
	r.mu.Unlock()
	r.logf("node%d left", i)
}

// memberSeqs returns every current member's settled sequence (the members
// as node0 lists them), and the set of current members. It fails while one
// is down, not in the group by its own account, or has an outbox to send.
func (r *runner) memberSeqs() ([]memberSeq, map[int]bool, error) {
	g, ok := r.inGroup(0)
	if !ok {
		return nil, nil, errors.New("node0 is down or not in the group")
	}
	var out []memberSeq
	current := map[int]bool{}
	for _, m := range g.Members {
		i := r.c.Index(m.PublicID)
		if i < 0 {
			return nil, nil, fmt.Errorf("node0 lists a member %s of no node", m.PublicID)
		}
		mg, ok := r.inGroup(i)
		if !ok {
			return nil, nil, &notMember{i}
		}
		if mg.Queued != 0 {
			return nil, nil, fmt.Errorf("node%d has %d messages in its outbox", i, mg.Queued)
		}
		seq, err := r.committed(i)
		if err != nil {
			return nil, nil, err
		}
		r.mu.Lock()
		rejoined := r.left[i]
		r.mu.Unlock()
		out = append(out, memberSeq{node: fmt.Sprintf("node%d", i), joinedAt: mg.JoinedAt, seq: seq, rejoined: rejoined})
		current[i] = true
	}
	return out, current, nil
}

// settleChurn waits until every current member is up, has sent its outbox,
// and lists the common sequence from its join on, with every acknowledged
// send and every queued send of a current member in it.
func (r *runner) settleChurn(ctx context.Context, results []sendResult) error {
	return r.waitSettled(ctx, func() (why, stop error) {
		ms, current, err := r.memberSeqs()
		var nm *notMember
		if errors.As(err, &nm) && r.c.Node(nm.i) != nil {
			r.rejoin(ctx, nm.i)
		}
		if err != nil {
			return err, nil
		}
		if _, err := checkChurn(ms, results, current); err != nil {
			var v *Violation
			if errors.As(err, &v) && v.Invariant == InvOneOrder {
				return nil, err // no wait mends two messages at one index
			}
			return err, nil
		}
		return nil, nil
	})
}

// notMember is a node that node0 lists as a member but that does not count
// itself one (or is down).
type notMember struct{ i int }

func (e *notMember) Error() string {
	return fmt.Sprintf("node%d, a member by node0's list, is down or does not count itself a member", e.i)
}
