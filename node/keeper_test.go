package node_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// friends forms issue 18's two-friend group: node0 (Ana) creates it and
// invites node1 (Ben); with keeper, node2 runs as a keeper and Ana adds it.
func friends(t *testing.T, seed int64, keeper bool) *cluster {
	t.Helper()
	c := newClusterWith(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(2).Tweak = func(cfg *node.Config) { cfg.Keeper = true }
	})
	ctx := ctxT(t, 60*time.Second)
	g, err := c.Node(0).CreateGroup(ctx, "ana and ben")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(1).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	if keeper {
		code, id, err := c.Node(0).AddKeeper(ctx, c.GroupID, c.Member(2).ID.Public().String(), "")
		if err != nil {
			t.Fatal(err)
		}
		if id != c.Member(2).ID.Public().String() {
			t.Fatalf("AddKeeper named %s, want node2", id)
		}
		if _, err := c.Node(2).Join(ctx, code); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestTwoFriendsWithKeeper: with a keeper, a group of two keeps committing
// while one friend is offline; the keeper votes but reads nothing and sends
// nothing.
func TestTwoFriendsWithKeeper(t *testing.T) {
	t.Parallel()
	c := friends(t, 191, true)
	c.Eventually(t, 30*time.Second, "3 voters (the keeper one of them) on node0", func() bool {
		g, ok := c.Status(0)
		if !ok {
			return false
		}
		voters, keepers := 0, 0
		for _, m := range g.Members {
			if m.Voter {
				voters++
			}
			if m.Keeper {
				keepers++
			}
		}
		return voters == 3 && keepers == 1
	})
	if m := c.send(0, "hello ben", 10*time.Second); m.State != node.StateCommitted {
		t.Fatalf("hello: %s", m.State)
	}
	c.Stop(1)
	away := c.send(0, "while ben is away", 20*time.Second)
	if away.State != node.StateCommitted {
		t.Fatalf("with a keeper, a group of two does not commit while one friend is offline: %s", away.State)
	}
	// Nor does the keeper learn who reads what: node0's pings carry its
	// read mark to the members who read, not to the keeper. (The keeper
	// learns from the same pings that node0 holds a message sent after
	// the mark.)
	if _, err := c.Node(0).MarkRead(ctxT(t, 10*time.Second), c.GroupID, away.ID); err != nil {
		t.Fatal(err)
	}
	after := c.send(0, "after the read mark", 20*time.Second)
	c.waitHolds(2, 0, after.Index, "the keeper to see node0 hold the later message")
	if _, r := c.receiptOf(2, 0); r != 0 {
		t.Fatalf("the keeper learnt node0's read mark (%d)", r)
	}
	// The keeper lists nothing it could read, and cannot send.
	if ms, err := c.Node(2).Messages(c.GroupID); err != nil || len(ms) != 0 {
		t.Fatalf("the keeper lists %d messages (%v)", len(ms), err)
	}
	if _, err := c.Node(2).Send(ctxT(t, 10*time.Second), c.GroupID, "from the keeper", time.Second); !errors.Is(err, node.ErrForbidden) {
		t.Fatalf("the keeper's send: %v, want a refusal", err)
	}
	// Nor could it read with its identity keys: no key header names it.
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	var headers [][]byte
	var senders [][32]byte
	c.Eventually(t, 30*time.Second, "the three messages in the keeper's log", func() bool {
		es, err := c.Node(2).LogFrames(c.GroupID)
		if err != nil {
			return false
		}
		headers, senders = nil, nil
		for _, e := range es {
			env, err := crypto.Verify(e.Frame)
			if err != nil || env.Type != crypto.TypeChat {
				continue
			}
			var b state.ChatBody
			if err := state.Decode(env.Payload, &b); err != nil {
				t.Fatal(err)
			}
			headers, senders = append(headers, b.Sealed), append(senders, env.Sender)
		}
		return len(headers) == 3
	})
	refused := 0
	for k, sealed := range headers {
		_, err := crypto.OpenSenderKey(c.Member(2).ID, gid, sealed, senders[k])
		switch {
		case errors.Is(err, crypto.ErrNotRecipient):
			refused++ // a key header, not sealed to the keeper
		case errors.Is(err, crypto.ErrNoHeader):
			// A later message under a key whose header came before.
		default:
			t.Fatalf("the keeper's identity on a message's key header: %v, want not a recipient", err)
		}
	}
	if refused == 0 {
		t.Fatal("no key header among the keeper's messages: the test checked nothing")
	}
	c.start(1)
	c.friendsAgree(3)
}

// friendsAgree waits until node0 and node1 list the same committed
// messages, want of them.
func (c *cluster) friendsAgree(want int) {
	c.t.Helper()
	c.Eventually(c.t, 30*time.Second, "node0 and node1 list the same messages", func() bool {
		a, err0 := c.Committed(0)
		b, err1 := c.Committed(1)
		return err0 == nil && err1 == nil && len(a) == want && tentTexts(a) == tentTexts(b)
	})
}

// TestTwoFriendsWithoutKeeper: without a keeper, the same group cannot
// commit while Ben is offline: Ana's message goes tentative, and commits
// once he is back.
func TestTwoFriendsWithoutKeeper(t *testing.T) {
	t.Parallel()
	c := friends(t, 192, false)
	c.Eventually(t, 30*time.Second, "2 voters on node0", func() bool { return c.Voters(0) == 2 })
	c.Stop(1)
	m := c.send(0, "while ben is away", 3*time.Second)
	if m.State != node.StateTentative {
		t.Fatalf("without a keeper: %s, want tentative", m.State)
	}
	c.start(1)
	c.friendsAgree(1)
}

// TestKeeperOfferSurvivesCrash: a keeper that took an admin's code (202,
// "it joins by itself", as `demes keeper add` tells the admin) and crashed
// before its join got anywhere joins once it is back: the code is kept on
// its disk before the keeper answers, not only in the join's goroutine.
func TestKeeperOfferSurvivesCrash(t *testing.T) {
	t.Parallel()
	c := friends(t, 216, false)
	ctx := ctxT(t, 60*time.Second)
	code, _, err := c.Node(0).AddKeeper(ctx, c.GroupID, c.Member(2).ID.Public().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	// Cut off, the keeper's join reaches nobody until the crash. The offer
	// is handed to its peer handler as offerKeeper's POST would be.
	c.Isolate(2)
	rec := httptest.NewRecorder()
	c.Node(2).PeerHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, node.KeeperPath, strings.NewReader(code)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("the keeper answered the offer %d %s, want 202", rec.Code, rec.Body)
	}
	c.Crash(2)
	c.net.Heal()
	c.start(2)
	c.Eventually(t, 30*time.Second, "the keeper a member of the group on node0", func() bool {
		g, ok := c.Status(0)
		if !ok {
			return false
		}
		for _, m := range g.Members {
			if m.Keeper {
				return true
			}
		}
		return false
	})
}
