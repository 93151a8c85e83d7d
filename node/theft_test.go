package node_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/transcript"
)

// Tests that steal a device (issue 19, item 6). The thief takes a member's
// whole home at one moment: its identity, its store (the log) and its key
// store. Then it reads what it can of the group's ciphertext, the log it
// took and everything the group committed since (a passive attacker who
// records the traffic): every key header it can open with the identity key
// or with the prekey secrets it found, and every sender key it found.

// loot is what a thief took from a member's home: its identity and a copy
// of its directory.
type loot struct {
	id  *identity.Identity
	dir string
}

// steal stops node i, copies its directory, and starts it again, and waits
// until it has applied again what it had applied: a node restarted from an
// older snapshot lists itself a member before it has, and a test that read
// its epoch then (TestStolenDeviceForwardSecrecy, waiting for a new epoch)
// saw the replay's epochs for a rekey.
func (c *cluster) steal(i int) loot {
	c.t.Helper()
	applied := c.logStats(i).Applied
	c.Crash(i)
	dst := c.t.TempDir()
	src := c.Member(i).Dir
	ents, err := os.ReadDir(src)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		copyFile(c.t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
	c.start(i)
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("node%d a member again after its restart", i), func() bool {
		g, ok := c.Status(i)
		if !ok {
			return false
		}
		for _, m := range g.Members {
			if m.Self {
				return true
			}
		}
		return false
	})
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("node%d to apply again what it had applied", i), func() bool {
		return c.logStats(i).Applied >= applied
	})
	return loot{id: c.Member(i).ID, dir: dst}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// read returns the bodies of the chat messages among frames (a group's
// log) that the thief opens with its loot (nodetest.Loot).
func (l loot) read(t testing.TB, gid string, frames []transcript.Entry) map[string]bool {
	t.Helper()
	group, err := crypto.ParseGroupID(gid)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := nodetest.TakeLoot(l.dir, l.id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, o := range keys.Read(group, frames) {
		out[string(o.Body)] = true
	}
	return out
}

// readsAny returns the texts among want that the thief reads in got.
func readsAny(got map[string]bool, want ...string) []string {
	var out []string
	for body := range got {
		for _, w := range want {
			if strings.Contains(body, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

// logFrames returns the group's log as node0 holds it.
func (c *cluster) logFrames() []transcript.Entry {
	c.t.Helper()
	es, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	return es
}

// listsAny returns the texts among want that node i lists among its
// committed messages.
func (c *cluster) listsAny(i int, want ...string) []string {
	c.t.Helper()
	var out []string
	for _, m := range c.committed(i) {
		for _, w := range want {
			if strings.Contains(m.Text, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

// sealedToPrekeysOnly fails the test if a live node sealed a key header to
// identity keys: the forward secrecy tests are of headers sealed to
// prekeys.
func (c *cluster) sealedToPrekeysOnly() {
	c.t.Helper()
	for _, i := range c.Live() {
		if n := node.IdentitySealed(c.Node(i)); n != 0 {
			c.t.Fatalf("node%d sealed %d key headers to identity keys once every member had a prekey", i, n)
		}
	}
}

// waitPrekeys waits until every node's log holds the prekey of each of the
// k members.
func (c *cluster) waitPrekeys(k int) {
	c.t.Helper()
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("the prekeys of %d members in every log", k), func() bool {
		for _, i := range c.Live() {
			if n, err := node.MembersWithPrekeys(c.Node(i), c.GroupID); err != nil || n != k {
				return false
			}
		}
		return true
	})
}

// TestStolenDeviceForwardSecrecy: a thief who takes a member's home reads
// the group's messages as long as that member still keeps their keys; once
// the member's key policy has deleted them (the retention window and the
// prekey's grace period have passed), the same thief reads none of those
// messages, although the log still holds them and their key headers, and
// it holds the identity key.
func TestStolenDeviceForwardSecrecy(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 231, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitPrekeys(3)
	old := []string{"old from node0", "old from node1", "old from node2"}
	for i, text := range old {
		c.send(i, text, 10*time.Second)
	}
	c.converged(3)
	frames := c.logFrames
	c.sealedToPrekeysOnly()

	// The attack, while node1 still keeps its keys: it reads everything.
	early := c.steal(1)
	if got := readsAny(early.read(t, c.GroupID, frames()), old...); len(got) != len(old) {
		t.Fatalf("a thief of node1's home reads %v of %v before any key was deleted; the attack should read all", got, old)
	}

	// Weeks pass for node1: its policy deletes the keys of those messages
	// and the secrets of its prekeys, the one the log names included. It
	// makes a new prekey and asks the group for new keys sealed to it
	// (keyBook.renewIfLost, group.maybeRecoverKeys), as its weekly
	// rotations and the senders' would have given it by then.
	later := time.Now().Add(2*7*24*time.Hour + 7*24*time.Hour + 30*24*time.Hour + 7*24*time.Hour + time.Hour)
	before, err := node.GroupLogStats(c.Node(1), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	node.ExpireKeysAt(c.Node(1), later)
	c.Eventually(t, 60*time.Second, "node1 to ask for new keys (a new epoch)", func() bool {
		s, err := node.GroupLogStats(c.Node(1), c.GroupID)
		return err == nil && s.Epoch > before.Epoch
	})
	const last = "new from node0"
	c.send(0, last, 10*time.Second)
	c.Eventually(t, 30*time.Second, "node1 reads a message sent after it deleted its keys", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) > 0 && ms[len(ms)-1].Text == last
	})

	stolen := c.steal(1)
	got := stolen.read(t, c.GroupID, frames())
	if r := readsAny(got, old...); len(r) != 0 {
		t.Fatalf("a thief of node1's home reads %v after node1 deleted their keys (forward secrecy)", r)
	}
	if r := readsAny(got, last); len(r) != 1 {
		t.Fatalf("the thief does not read the message node1 still keeps the key of (%v): the attack is broken", got)
	}
	// And node1 itself no longer lists the old messages after a restart.
	if r := c.listsAny(1, old...); len(r) != 0 {
		t.Fatalf("node1 still lists %q after deleting its key", r)
	}
}

// TestStolenDevicePostCompromise: a thief who took a member's home reads
// what was sealed up to then, and, after that member's rekey (a new prekey,
// new sender keys for everyone), nothing more of the group's traffic.
func TestStolenDevicePostCompromise(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 232, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitPrekeys(3)
	before := []string{"before from node0", "before from node2"}
	for i, text := range before {
		c.send(i*2, text, 10*time.Second)
	}
	c.converged(2)
	loot := c.steal(1)

	if err := c.Node(1).Rekey(ctxT(t, 60*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	// The claim is about each sender's messages sealed after it applied
	// the rekey (docs/PROTOCOL.md): one sealed a moment before, under the
	// sender's old key, may still commit after the rekey. So each member
	// has applied it before it sends.
	rekeyed := c.Node(1).Status().Groups[0].Committed
	c.Eventually(t, 30*time.Second, "every member to apply node1's rekey", func() bool {
		for i := range c.Size() {
			for _, m := range c.Node(i).Status().Groups[0].Members {
				if m.Self && m.HoldsThrough < rekeyed {
					return false
				}
			}
		}
		return true
	})
	after := []string{"after from node0", "after from node1", "after from node2"}
	for i, text := range after {
		c.send(i, text, 10*time.Second)
	}
	c.converged(5)
	got := loot.read(t, c.GroupID, c.logFrames())
	if r := readsAny(got, before...); len(r) != len(before) {
		t.Fatalf("the thief reads %v of what was sealed before the theft; the attack should read it all", r)
	}
	if r := readsAny(got, after...); len(r) != 0 {
		t.Fatalf("the thief reads %v, sealed after node1's rekey (post-compromise security)", r)
	}
}

// TestLostKeyStore (issue 19, item 4): a restart takes keys from the key
// store, never from the log. A node whose key store is lost cannot read the
// history again from its log (the key headers are sealed to a prekey whose
// secret went with the store); it publishes a new prekey and asks for new
// keys by itself, and reads the group's next messages.
func TestLostKeyStore(t *testing.T) {
	t.Parallel()
	// No rotation by count in this test: only the rekey gives node1 keys.
	c := newClusterWith(t, 3, 233, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for i := 0; i < 3; i++ {
			c.Member(i).Tweak = func(cfg *node.Config) { cfg.RotateMessages = 1 << 20 }
		}
	})
	c.form()
	c.waitPrekeys(3)
	c.send(0, "before the loss", 10*time.Second)
	c.Eventually(t, 30*time.Second, "node1 reads the first message", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) == 1
	})

	c.Crash(1)
	if err := os.Remove(filepath.Join(c.Member(1).Dir, "keys.db")); err != nil {
		t.Fatal(err)
	}
	c.start(1)
	// node0 writes a message a second (under the group's quota of 120 a
	// minute: sent at each poll, they went over it within seconds once a
	// send over the quota answered at once, and the held ones kept node1
	// from reading anything for a minute) until node1 reads one.
	k := 0
	var last time.Time
	c.Eventually(t, 60*time.Second, "node1 reads a message sent after it lost its keys", func() bool {
		if ms, err := c.Committed(1); err == nil && len(ms) > 0 && strings.HasPrefix(ms[len(ms)-1].Text, "after the loss") {
			return true
		}
		if time.Since(last) >= time.Second {
			k++
			last = time.Now()
			_, _ = c.Send(ctxT(t, 10*time.Second), 0, fmt.Sprint("after the loss ", k), 5*time.Second)
		}
		return false
	})
	for _, m := range c.committed(1) {
		if m.Text == "before the loss" {
			t.Fatal("node1 read again, from its log, a message whose key went with its key store")
		}
	}
}
