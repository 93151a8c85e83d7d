package adversary

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestInviteeCannotSpendAMembersAllowance: an invitee asks an honest member
// (node1, not the host) for eight challenges and sends it eight join
// requests at once, each with a 60 KiB name. The member proposes the
// invitee's join for each request it holds, and the host charges each to
// the member's allowance for entries other than messages (controlgate.go):
// the invitee spent the member's allowance, and the member's own entries
// (invites, rekeys, prekeys) were dropped for a minute after. One join at
// a time is proposed for a joiner, whatever requests it sends.
func TestInviteeCannotSpendAMembersAllowance(t *testing.T) {
	const over = "proposal beyond the member's allowance for entries other than messages"
	g := newGroup(t, 3, options{})
	g.form(0, 1, 2)
	g.keepHost(0)
	const x = 1
	e := outsider(t, 0x58)
	invited := g.signedFresh(0, func() uint64 {
		return g.commit(0, 0, g.signBy(0, crypto.TypeInvite, &state.InviteBody{Invitee: e.Public().Bytes(), Expires: time.Now().Add(10 * time.Minute).UnixNano()}))
	})
	g.applied(invited, x)
	before := g.rejections(0, over)

	ctx := ctxT(t, 60*time.Second)
	link := node.NewHTTPLink()
	defer link.CloseIdle()
	name := strings.Repeat("n", 60<<10)
	var (
		bodies []*state.JoinBody
		joins  [][]byte
	)
	for range 8 {
		resp, err := link.Post(ctx, g.c.Member(x).URL, g.signAs(e, crypto.TypeChallenge, []byte{}))
		if err != nil {
			t.Fatal(err)
		}
		ch, err := crypto.ParseTrusted(resp)
		if err != nil || len(ch.Payload) != 32 {
			t.Fatalf("a malformed challenge (%v)", err)
		}
		bodies = append(bodies, &state.JoinBody{PublicID: e.Public().Bytes(), RaftID: state.RaftID(e.Public().Sign), Name: name, Nonce: ch.Payload})
	}
	// Consecutive counters, so that the requests pass the replay window
	// in whatever order they arrive.
	now := time.Now().UnixNano()
	for i, b := range bodies {
		payload, err := state.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		j, err := crypto.Sign(e, &crypto.Envelope{Type: crypto.TypeJoin, Group: g.gid, Counter: uint64(now) + uint64(i), Time: now, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		joins = append(joins, j)
	}
	var wg sync.WaitGroup
	for _, j := range joins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := link.Post(ctx, g.c.Member(x).URL, j); err != nil {
				t.Log(err)
			}
		}()
	}
	wg.Wait()
	// Sent after the joins, on the same link: once it commits, the host
	// has had every proposal the member forwarded for them.
	g.send(x, "after the joins")
	t.Logf("member: %v; drops over allowance: %d", g.isMember(0, e.Public()), g.rejections(0, over)-before)
	if n := g.rejections(0, over) - before; n > 0 {
		t.Fatalf("the host dropped %d of the member's proposals as beyond its allowance: an invitee's join requests spent it", n)
	}
}
