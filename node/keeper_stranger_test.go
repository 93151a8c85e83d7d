package node_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestKeeperRefusesAStranger: a keeper's operator runs it for the groups of
// people it chose; a stranger, who shares no group with the keeper and whom
// its operator never named, must not make it join a group of the
// stranger's own by posting a code to its peer listener. Each code takes one
// of the keeper's at most 100 groups (maxKept): a stranger that creates 100
// groups and posts their codes (one join at a time, each a few seconds)
// fills them, and the keeper then answers every admin's offer, its own
// friends' included, "keeps as many groups as it takes" (503); each of those
// groups is also a log the keeper stores and votes in, at the stranger's
// quotas (50 MiB a day a member, and the stranger may invite sock puppets).
//
// A keeper given the people it keeps groups for (Config.KeepFor, demes
// serve --keep-for) takes a code only when one of them made it (a code is
// signed by its inviter). One given none still takes anyone's, as the
// README says.
func TestKeeperRefusesAStranger(t *testing.T) {
	t.Parallel()
	friend := [32]byte{1, 2, 3}
	c := newClusterWith(t, 2, 291, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(0).Tweak = func(cfg *node.Config) { cfg.Keeper, cfg.KeepFor = true, [][32]byte{friend} }
	})
	ctx := ctxT(t, 60*time.Second)
	// Node 1, a stranger to the keeper, makes a group of its own and a
	// keeper invite for it, which its admin role allows.
	g, err := c.Node(1).CreateGroup(ctx, "strangers")
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := c.Node(1).AddKeeper(ctx, g.GroupID, c.Member(0).ID.Public().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	// It posts the code to the keeper's peer listener, as `demes keeper
	// add URL` does.
	rec := httptest.NewRecorder()
	c.Node(0).PeerHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, node.KeeperPath, strings.NewReader(code)))
	if rec.Code == http.StatusAccepted {
		// Taken: the keeper joins by itself.
		c.Eventually(t, 30*time.Second, "the keeper to join the stranger's group", func() bool {
			return len(c.Node(0).Groups()) > 0
		})
		t.Fatalf("the keeper joined a stranger's group on the stranger's word alone: %+v", c.Node(0).Groups())
	}
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "--keep-for") {
		t.Errorf("the stranger's offer: %d %q, want 403 saying whose groups the keeper keeps", rec.Code, rec.Body.String())
	}
}

// TestKeeperNotHeldBusyByAStranger: a keeper joins one group at a time, and
// answers every other offer meanwhile with 503. A stranger who posts it a
// keeper code of a group of its own whose members do not answer (the
// stranger's node cut off here; a code needs no group at all, only the
// signature of a throwaway identity, and may name any address to contact)
// holds it busy for as long as the join tries (10 s while nobody answers,
// up to keeperJoinTimeout, 2 minutes, for a member that answers and never
// adds it), and posts again: the admin of a group the keeper's operator
// serves is refused meanwhile. The admin's invite is committed; the code
// can still be joined with by hand on the keeper. A keeper given the people
// it keeps groups for (Config.KeepFor) refuses the stranger's offer before
// it takes the one slot.
func TestKeeperNotHeldBusyByAStranger(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 292, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(0).Tweak = func(cfg *node.Config) { cfg.Keeper, cfg.KeepFor = true, [][32]byte{c.Member(2).ID.Public().Sign} }
	})
	ctx := ctxT(t, 60*time.Second)
	codes := make([]string, 3)
	for _, i := range []int{1, 2} {
		g, err := c.Node(i).CreateGroup(ctx, "group")
		if err != nil {
			t.Fatal(err)
		}
		if codes[i], _, err = c.Node(i).AddKeeper(ctx, g.GroupID, c.Member(0).ID.Public().String(), ""); err != nil {
			t.Fatal(err)
		}
	}
	offer := func(code string) int {
		rec := httptest.NewRecorder()
		c.Node(0).PeerHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, node.KeeperPath, strings.NewReader(code)))
		return rec.Code
	}
	c.Isolate(1)
	stranger := offer(codes[1])
	if stranger != http.StatusForbidden {
		t.Errorf("the stranger's offer: %d, want 403", stranger)
	}
	if code := offer(codes[2]); code != http.StatusAccepted {
		t.Fatalf("the admin's offer, while the keeper tries the stranger's group: %d, want taken (the stranger's was answered %d)", code, stranger)
	}
}
