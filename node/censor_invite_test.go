package node_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestCensorSeenForQueuedInvite: an admin queues an invite while it is cut
// off from its group; back, it has the host propose it, and the host drops
// that invite and nothing else of the admin's, committing its chat
// meanwhile. The admin must suspect the host. The invite's wait once ended
// with any later entry of the admin's, and each proposal of the invite
// started it again: chatting, the admin never suspected the host that kept
// its invite out (adversary.TestHostRefusesItsOwnRemovalNotOurChat is the
// same attack on a removal).
func TestCensorSeenForQueuedInvite(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 361, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) { cfg.CensorAfter = time.Second }
		}
	})
	c.form()
	c.waitVoters(3)
	c.setSettings(0, node.GroupSettings{MsgsPerMinute: 100_000})
	const admin = 0 // the group's creator
	ctx := ctxT(t, 2*time.Minute)
	host := c.waitHost(-1)
	if host == admin {
		if err := node.HandOver(ctx, c.Node(admin), c.GroupID, c.Member(1).ID.Public().Sign); err != nil {
			t.Fatal(err)
		}
		host = c.waitHost(admin)
	}
	// The host drops the admin's proposals that carry anything but chat.
	c.censorWhere(host, func(m *pb.Message) bool {
		for _, e := range m.GetEntries() {
			if env, err := crypto.Verify(e.GetData()); err != nil || env.Type != crypto.TypeChat || e.GetType() != pb.EntryNormal {
				return true
			}
		}
		return false
	}, admin)
	// The others answered the admin's pings before the cut, so that
	// "offline" below means silent since (a member that never answered
	// shows offline from the start, and an invite asked that early was
	// not queued but proposed).
	othersOnline := func(want bool) bool {
		g, ok := c.Status(admin)
		if !ok {
			return false
		}
		for _, m := range g.Members {
			if m.PublicID != c.Member(admin).ID.Public().String() && m.Online != want {
				return false
			}
		}
		return true
	}
	c.Eventually(t, 30*time.Second, "the admin to hear the others' pongs", func() bool { return othersOnline(true) })
	c.Isolate(admin)
	c.Eventually(t, 30*time.Second, "the cut-off admin to know no host and count the others offline", func() bool {
		g, ok := c.Status(admin)
		return ok && g.Host == "" && othersOnline(false)
	})
	newcomer, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(admin).Invite(ctx, c.GroupID, newcomer.Public().String()); !errors.Is(err, node.ErrQueued) {
		t.Fatalf("an invite while cut off: %v, want it queued", err)
	}
	c.net.Heal()
	c.Eventually(t, 30*time.Second, "the admin to follow the host again", func() bool {
		g, ok := c.Status(admin)
		return ok && g.Host == c.Member(host).ID.Public().String()
	})
	// The admin chats, and so does another member: the host commits both.
	var done atomic.Bool
	c.chatter(admin, func() bool { return !done.Load() })
	c.chatter(3-admin-host, func() bool { return !done.Load() })
	c.Eventually(t, 30*time.Second, "the admin to suspect the host that keeps its invite out", func() bool {
		if list, err := c.Node(admin).Invites(c.GroupID); err == nil && (len(list) != 1 || list[0].State != node.InviteQueued) {
			t.Fatalf("the invite is no longer queued (%+v): the host did not keep it out, and the test tests nothing", list)
		}
		g, ok := c.Status(admin)
		return ok && g.Censorship != nil && !g.Censorship.Since.IsZero()
	})
	done.Store(true)
}
