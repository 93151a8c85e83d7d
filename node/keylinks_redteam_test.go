package node_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/keystore"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// Red team of key links (38a6f39).

// readsFrom waits until node reader has read a message of sender's whose
// text starts with prefix, having sender write one a second meanwhile.
func (c *cluster) readsNewFrom(reader, sender int, prefix string, wait time.Duration) {
	c.t.Helper()
	k := 0
	var last time.Time
	c.Eventually(c.t, wait, fmt.Sprintf("node%d reads a message node%d sent with %q", reader, sender, prefix), func() bool {
		if ms, err := c.Committed(reader); err == nil {
			for _, m := range ms {
				if strings.HasPrefix(m.Text, prefix) {
					return true
				}
			}
		}
		if time.Since(last) >= time.Second {
			k++
			last = time.Now()
			_, _ = c.Send(ctxT(c.t, 10*time.Second), sender, fmt.Sprint(prefix, " ", k), 5*time.Second)
		}
		return false
	})
}

// TestLostLinkRootsRecover: a member whose key store lost the roots of the
// links to its current prekey (a write of the store that failed, a keys.db
// put back from a copy of the day before) but kept the prekey's secret
// cannot open what the others seal over those links. Before links, the
// member's recovery (noteKeysLost, then a rekey) gave it the others' next
// keys; with links, the others keep sealing over the links it lost, the
// rekey changes nothing, and it reads nothing of theirs until each link's
// renewal, a day later.
func TestLostLinkRootsRecover(t *testing.T) {
	t.Parallel()
	const size = 3
	c := newClusterWith(t, size, 271, simnet.LinkConfig{Latency: time.Millisecond}, rotateEvery(size, 1))
	c.form()
	c.waitPrekeys(size)
	c.converged(len(c.sendRounds("", 2, 0, 1, 2)))
	linked := false
	for _, h := range headersFrom(c.logFrames(), 0) {
		linked = linked || (h.sender == c.Member(0).ID.Public().Sign && h.links > 0)
	}
	if !linked {
		t.Fatal("node0 sealed no header over a link: the test shows nothing")
	}

	c.Crash(1)
	ks, err := keystore.Open(filepath.Join(c.Member(1).Dir, "keys.db"), c.Member(1).ID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ks.DeletePrefix("link/")
	ks.Close()
	if err != nil || n == 0 {
		t.Fatalf("deleted %d link roots: %v", n, err)
	}
	c.start(1)
	c.readsNewFrom(1, 0, "after the loss", 90*time.Second)
}

// TestForgedLinkFakesLostKeys is TestForgedStanzaFakesLostKeys with a
// linked stanza: a member seals a header whose stanza for node1 names
// node1's real current prekey and a link node1 never got. Node1 cannot
// open it, as it cannot open garbage; that must not make it believe it
// lost its key store (an alarm in its status, a rekey signed by it).
func TestForgedLinkFakesLostKeys(t *testing.T) {
	t.Parallel()
	c, gid, ps, epoch := forgeSetup(t, 272)
	evil := c.Member(2).ID
	now := time.Now()
	key := crypto.NewSenderKey(gid, evil.Public().Sign, epoch)
	// A link to node1's real prekey whose root node1 never sees.
	_, started, err := crypto.SealKeyHeaderLinked(key, []prekey.Recipient{{Prekey: ps[1]}}, now)
	if err != nil || len(started) != 1 {
		t.Fatal(err)
	}
	hdr, _, err := crypto.SealKeyHeaderLinked(key, []prekey.Recipient{{Prekey: ps[0]}, {Prekey: ps[1], Link: started[0], Linked: true}, {Prekey: ps[2]}}, now)
	if err != nil {
		t.Fatal(err)
	}
	id := crypto.NewMessageID()
	sealed, err := crypto.SealMessageWithHeader(evil, &crypto.Message{Group: gid, ID: id, Time: now.UnixNano(), Body: []byte("bait")}, key, hdr)
	if err != nil {
		t.Fatal(err)
	}
	c.baitNoAlarm(gid, id, sealed, "a forged linked stanza")
}

// TestIdentityHeaderIsNoCarrier: a key whose first header (to prekeys)
// started links, and that the group then registered with a header sealed
// to identity keys (the first message lost, sealed again while a member's
// prekey was not valid yet), carried no root to anyone: the links it
// started must not be used on its registration. Otherwise node2, which
// opened the key from its identity stanza, never learnt node0's link and
// cannot read node0's next key.
func TestIdentityHeaderIsNoCarrier(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 273, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for i := range 3 {
			c.Member(i).Tweak = func(cfg *node.Config) { cfg.RotateMessages = 1 << 20 }
		}
	})
	c.form()
	c.waitPrekeys(3)
	pending, err := node.StartKeyUnsent(c.Node(0), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if pending < 2 {
		t.Fatalf("node0 holds %d pending links, want one to each other member", pending)
	}
	// node1's clock is ahead: its next prekey, valid from a minute before
	// its time, is valid in node0's time in 8 s. node0 seals to identity
	// keys until then.
	validFrom := time.Now().Add(8 * time.Second)
	if err := node.RotatePrekeyValidFrom(c.Node(1), validFrom); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	c.Eventually(t, 20*time.Second, "node0's state names node1's new prekey", func() bool {
		if ok, err := node.NamesPrekey(c.Node(0), c.GroupID, c.Node(1)); err == nil && ok {
			return true
		}
		if time.Since(last) > time.Second {
			last = time.Now()
			_ = node.ProposePrekeySkewed(c.Node(1), c.GroupID, 68*time.Second)
		}
		return false
	})
	before := node.IdentitySealed(c.Node(0))
	c.send(0, "while node1's prekey is not valid yet", 10*time.Second)
	if time.Now().After(validFrom) {
		t.Skip("the machine was too slow to show anything: node1's prekey was valid before node0 sealed its message")
	}
	if node.IdentitySealed(c.Node(0)) == before {
		t.Fatal("node0 did not seal to identity keys: the test shows nothing")
	}
	c.Eventually(t, 20*time.Second, "node1's prekey to be valid in node0's time", func() bool {
		return time.Now().After(validFrom.Add(time.Second))
	})
	c.readsNewFrom(2, 0, "after node1's prekey is valid", 30*time.Second)
}

// TestLinkRootsGoWithTheirPrekey: a link root is kept exactly as long as
// its prekey's secret, even when the node's PrekeyGrace changed between
// the prekey's making and the root's arrival (a restart with another
// --key-retention, which bounds it). Otherwise the root stays in keys.db
// after the secret went, and a thief of the home opens with it the linked
// stanzas that nothing else opens any more.
func TestLinkRootsGoWithTheirPrekey(t *testing.T) {
	t.Parallel()
	grace := time.Hour
	c := newClusterWith(t, 2, 274, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(1).Tweak = func(cfg *node.Config) { cfg.PrekeyGrace = grace }
	})
	c.form()
	c.waitPrekeys(2)
	// node1 restarts with a week's grace; its prekey (an hour's) stays.
	grace = 7 * 24 * time.Hour
	c.restart(1)
	c.send(0, "over a new link to node1", 10*time.Second)
	c.converged(1)
	if node.StoredKeyLinks(c.Node(1)) == 0 {
		t.Fatal("node1 keeps no link root: the test shows nothing")
	}
	frames, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	var p *prekey.Prekey
	for _, e := range frames {
		if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypePrekey && env.Sender == c.Member(1).ID.Public().Sign {
			if p, err = prekey.Decode(env.Payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two hours after the prekey's expiry, its secret (kept an hour
	// after it) is gone from the store; so must the roots be.
	node.ExpireKeysAt(c.Node(1), p.Expires.Add(2*time.Hour))
	if node.StoredPrekeys(c.Node(1)) != 0 {
		t.Fatalf("node1's store keeps %d prekey secrets: the test shows nothing", node.StoredPrekeys(c.Node(1)))
	}
	if n := node.StoredKeyLinks(c.Node(1)); n != 0 {
		t.Fatalf("node1's key store keeps %d link roots after their prekey's secret was deleted", n)
	}
}
