package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/transcript/transcripttest"
)

// oneKeyCluster is a group of three whose members seal under one sender
// key each for the whole test (no rotation by count; by age, after 7 days),
// and where node1 keeps keys for an hour and is further set by tweak1.
func oneKeyCluster(t *testing.T, seed int64, tweak1 func(*node.Config)) *cluster {
	return newClusterWith(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for i := 0; i < 3; i++ {
			c.Member(i).Tweak = func(cfg *node.Config) {
				cfg.RotateMessages = 1 << 20
				if i == 1 {
					cfg.KeyRetention = time.Hour
					tweak1(cfg)
				}
			}
		}
	})
}

// TestStolenDeviceWithinSenderKey (issue 19, items 2 and 6): a member keeps
// the messages of its retention window readable, and no older ones, even
// while their sender key is still in use. node0 seals every message of the
// test under one sender key (no rotation by count or age here); node1
// keeps keys for an hour. Two hours later, a thief of node1's home reads
// node0's newest message and none of the earlier ones, with the identity,
// the key store and the log in hand; before node1 advanced the key's floor,
// the same attack read them all. node1 itself stops showing them.
func TestStolenDeviceWithinSenderKey(t *testing.T) {
	t.Parallel()
	c := oneKeyCluster(t, 234, func(*node.Config) {})
	c.form()
	c.waitPrekeys(3)
	early := []string{"early one", "early two", "early three"}
	for _, text := range early {
		c.send(0, text, 10*time.Second)
	}
	c.converged(3)
	c.sealedToPrekeysOnly()
	frames := c.logFrames

	// The attack, while node1 keeps every key: it reads the early ones.
	if got := readsAny(c.steal(1).read(t, c.GroupID, frames()), early...); len(got) != len(early) {
		t.Fatalf("a thief of node1's home reads %v of %v while node1 keeps their keys; the attack should read all", got, early)
	}
	c.Eventually(t, 30*time.Second, "node1 lists the early messages again after its restart", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) == len(early)
	})

	// node1 notes when it saw them; two hours later they are past its
	// retention, and their sender key is not (it is node0's current one).
	now := time.Now()
	for _, at := range []time.Time{now, now.Add(2 * time.Hour)} {
		node.ExpireKeysAt(c.Node(1), at)
	}
	// node1 stops showing them at once, not only after a restart.
	c.Eventually(t, 30*time.Second, "node1 no longer shows the early messages", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) == 0
	})
	c.send(0, "late one", 10*time.Second)
	c.Eventually(t, 30*time.Second, "node1 reads the late message", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) > 0 && strings.Contains(ms[len(ms)-1].Text, "late one")
	})

	// Every message of node0 is under one sender key: the test is of
	// deletion within a key, not of a deleted key.
	keys := map[crypto.KeyRef]bool{}
	for _, ch := range transcripttest.SealedChats(frames()) {
		if ch.Sender == c.Member(0).ID.Public().Sign {
			keys[ch.Ref()] = true
			if !ch.Info.Ratchet {
				t.Fatalf("message %d is sealed without a counter", ch.Index)
			}
		}
	}
	if len(keys) != 1 {
		t.Fatalf("node0 sealed under %d sender keys; the test needs one", len(keys))
	}

	got := c.steal(1).read(t, c.GroupID, frames())
	if r := readsAny(got, early...); len(r) != 0 {
		t.Fatalf("a thief of node1's home reads %v, older than node1's retention (forward secrecy within a sender key)", r)
	}
	if r := readsAny(got, "late one"); len(r) != 1 {
		t.Fatalf("the thief does not read the message node1 still keeps the key of (%v): the attack is broken", got)
	}
	// And node1 itself no longer lists them after its restart.
	if r := c.listsAny(1, early...); len(r) != 0 {
		t.Fatalf("node1 still lists %q past its retention", r)
	}
}

// TestFloorsSurviveACrash: what a member noted of the messages it saw
// (marks) is stored before each snapshot, so a member that crashes and
// restarts from a snapshot, and so never applies those messages again,
// still deletes their keys once they are past its retention.
func TestFloorsSurviveACrash(t *testing.T) {
	t.Parallel()
	c := oneKeyCluster(t, 235, func(cfg *node.Config) {
		cfg.SnapshotEntries = 4
		cfg.MessageWindow = 2 // a restart opens only the two newest again
	})
	c.form()
	c.waitPrekeys(3)
	early := []string{"early one", "early two", "early three", "early four", "early five"}
	for _, text := range early {
		c.send(0, text, 10*time.Second)
	}
	// node2's messages push node1's snapshots past all of node0's, and
	// its window of opened messages too, so that node1's restart neither
	// applies nor opens any of node0's messages again.
	for i := range 8 {
		c.send(2, fmt.Sprintf("filler %d", i), 10*time.Second)
	}
	c.converged(len(early) + 8)
	// Crashed before any expiry pass: only the snapshots stored marks.
	c.Crash(1)
	c.start(1)
	c.Eventually(t, 30*time.Second, "node1 lists the messages after its restart", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) == len(early)+8
	})
	node.ExpireKeysAt(c.Node(1), time.Now().Add(2*time.Hour))
	if r := readsAny(c.steal(1).read(t, c.GroupID, c.logFrames()), early...); len(r) != 0 {
		t.Fatalf("a thief of node1's home reads %v, past its retention, after a crash and a restart from a snapshot", r)
	}
}
