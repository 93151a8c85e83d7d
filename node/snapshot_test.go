package node_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// Small snapshot settings, so that a test of a few hundred messages sees
// many snapshots, and a member stopped for a few dozen messages misses
// entries its host no longer holds in memory.
const (
	testSnapshotEntries = 20
	testSnapshotKeep    = 5
)

func newSnapshotCluster(t *testing.T, size int, seed int64) *cluster {
	return newClusterWith(t, size, seed, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				cfg.SnapshotEntries, cfg.SnapshotKeep = testSnapshotEntries, testSnapshotKeep
				// The history before the window is read from the log:
				// every list of messages the test compares is too.
				cfg.MessageWindow = testWindow
				// Latency maps in the log too, within a short test.
				cfg.PingInterval, cfg.LatencyInterval = 100*time.Millisecond, 300*time.Millisecond
			}
		}
	})
}

// sendMany sends n messages, each from the next live node in turn, and
// waits for each to commit.
func (c *cluster) sendMany(prefix string, n int) []string {
	c.t.Helper()
	var out []string
	for k := range n {
		live := c.Live()
		text := fmt.Sprintf("%s %d", prefix, k)
		c.sendCommitted(live[k%len(live)], text, 10*time.Second)
		out = append(out, text)
	}
	return out
}

func (c *cluster) logStats(i int) node.LogStats {
	c.t.Helper()
	s, err := node.GroupLogStats(c.Node(i), c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// stored reads, from the store of a node that is down, its snapshot index
// and the index of its last log entry.
func (c *cluster) stored(i int) (snapshot, last uint64) {
	c.t.Helper()
	st, err := store.Open(filepath.Join(c.Member(i).Dir, "store.db"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	snap, err := st.LoadSnapshot(gid[:])
	if err != nil {
		c.t.Fatal(err)
	}
	_, last, err = st.LogBounds(gid[:])
	if err != nil {
		c.t.Fatal(err)
	}
	return snap.GetMetadata().GetIndex(), last
}

type memberView struct {
	ID, Name string
	Voter    bool
}

func (c *cluster) members(i int) []memberView {
	var out []memberView
	for _, g := range c.Node(i).Status().Groups {
		for _, m := range g.Members {
			out = append(out, memberView{m.PublicID, m.Name, m.Voter})
		}
	}
	return out
}

// checkRestored checks what a node restarted from a snapshot must show: it
// started from the snapshot stored when it went down, applied exactly the
// entries after it, and lists messages (all of them, with their authors,
// times and positions) and members as the others do.
func (c *cluster) checkRestored(i int, snapAtStop uint64, want []node.Message, members []memberView) {
	c.t.Helper()
	if snapAtStop == 0 {
		c.t.Fatalf("%s went down without a snapshot", c.Member(i).Name)
	}
	var s node.LogStats
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("%s to list %d messages again", c.Member(i).Name, len(want)), func() bool {
		s = c.logStats(i)
		return len(c.committed(i)) >= len(want)
	})
	if got := c.committed(i); !reflect.DeepEqual(got, want) {
		for k := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[k], want[k]) {
				c.t.Fatalf("%s after its restart lists as message %d %+v, want %+v", c.Member(i).Name, k, got[k], want[k])
			}
		}
		c.t.Fatalf("%s after its restart lists %d messages, want %d", c.Member(i).Name, len(got), len(want))
	}
	c.t.Logf("%s after its restart: %+v", c.Member(i).Name, s)
	if s.RestoredFrom != snapAtStop {
		c.t.Fatalf("%s restarted from the snapshot at %d, the store held one at %d", c.Member(i).Name, s.RestoredFrom, snapAtStop)
	}
	// Every accepted message id is back (stored beside the snapshots,
	// store.IDChunks), so that a retry counts once. (s may predate the
	// last messages listed: asked again.)
	if n := c.logStats(i).MessageIDs; n != len(want) {
		c.t.Fatalf("%s holds %d accepted message ids after its restart, want %d", c.Member(i).Name, n, len(want))
	}
	// Every entry after the snapshot applied once, none before it.
	if s.AppliedHere != s.Applied-s.RestoredFrom || s.AppliedHere >= s.Applied {
		c.t.Fatalf("%s applied %d entries since its restart from %d, at %d: want exactly those after the snapshot", c.Member(i).Name, s.AppliedHere, s.RestoredFrom, s.Applied)
	}
	if got := c.members(i); !reflect.DeepEqual(got, members) {
		c.t.Fatalf("%s lists members %v, want %v", c.Member(i).Name, got, members)
	}
}

// checkBounded checks that every live node holds only a bounded tail of the
// log in memory, while raft still sees the whole log.
func (c *cluster) checkBounded() {
	c.t.Helper()
	for _, i := range c.Live() {
		s := c.logStats(i)
		// After each apply, fewer than SnapshotEntries entries are applied
		// since the last snapshot, which compacted to SnapshotKeep before it.
		if s.FirstIndex != 1 || s.MemFirst <= 1 || s.Applied+1-s.MemFirst >= testSnapshotEntries+testSnapshotKeep {
			c.t.Fatalf("%s: raft's first index %d, memory from %d, applied %d: want 1, and fewer than %d entries up to the applied one in memory",
				c.Member(i).Name, s.FirstIndex, s.MemFirst, s.Applied, testSnapshotEntries+testSnapshotKeep)
		}
	}
}

// TestSnapshotRestart: a group goes through many snapshots. A member stopped
// cleanly and a host killed each restart from their latest snapshot, applying
// only the log after it, and show the same history, members and epoch as
// before; a member that was down while more messages were sent than its host
// keeps in memory catches up by the log and lists every one of them; every
// node holds a bounded tail of the log in memory; new messages flow; and an
// exported transcript, from index 1, verifies.
func TestSnapshotRestart(t *testing.T) {
	t.Parallel()
	c := newSnapshotCluster(t, 3, 21)
	c.form()
	c.waitVoters(3)
	sent := c.sendMany("first", 150)
	ref := c.converged(len(sent))
	checkExactlyOnce(t, ref, sent)
	c.checkBounded()
	h := c.Host()
	epoch := c.logStats(h).Epoch
	members := c.members(h)

	// A follower stops cleanly and restarts at once.
	f := (h + 1) % 3
	c.Stop(f)
	snap, _ := c.stored(f)
	c.start(f)
	c.checkRestored(f, snap, ref, members)
	if e := c.logStats(f).Epoch; e != epoch {
		t.Fatalf("epoch %d after the restart, %d before", e, epoch)
	}

	// The host is killed; more messages than the others keep in memory are
	// sent while it is down.
	c.Crash(h)
	snap, last := c.stored(h)
	nh := c.waitHost(h)
	sent = append(sent, c.sendMany("while the host was down", 3*(testSnapshotEntries+testSnapshotKeep))...)
	ref = c.converged(len(sent))
	checkExactlyOnce(t, ref, sent)
	// The new host holds the entries the old one misses in its store only.
	if s := c.logStats(nh); s.MemFirst <= last+1 {
		t.Fatalf("the new host holds the log from %d in memory; the old one needs %d on: the test does not read the log back from the store", s.MemFirst, last+1)
	}
	c.start(h)
	c.checkRestored(h, snap, ref, members)
	if e := c.logStats(h).Epoch; e != epoch {
		t.Fatalf("epoch %d after the restart, %d before", e, epoch)
	}
	c.checkBounded()

	// New messages from every node, the restarted ones included.
	sent = append(sent, c.sendMany("after the restarts", 6)...)
	ref = c.converged(len(sent))
	checkExactlyOnce(t, ref, sent)
	for _, i := range c.Live() {
		if ms := c.committed(i); !reflect.DeepEqual(ms, ref) {
			t.Fatalf("%s lists %s\nwant %s", c.Member(i).Name, nodetest.Texts(ms), nodetest.Texts(ref))
		}
	}

	checkSnapshotsOfLog(t, c.Node(h), c.GroupID)

	// The transcript holds the whole history, from the first entry, and
	// its exporter attests it.
	trust := []identity.PublicID{c.Member(h).ID.Public()}
	doc, err := c.Node(h).Transcript(ctxT(t, 30*time.Second), c.GroupID, api.TranscriptRange{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := transcript.Verify(doc, trust)
	if err != nil {
		t.Fatalf("verify the transcript of the restarted host: %v", err)
	}
	if s.FirstIndex != 1 || s.Messages != len(ref) || s.LastIndex < ref[len(ref)-1].Index {
		t.Fatalf("transcript of %d..%d with %d messages; want 1..%d or more with %d", s.FirstIndex, s.LastIndex, s.Messages, ref[len(ref)-1].Index, len(ref))
	}
}

// TestQueuedMessageSurvivesSnapshotRestart is TestQueuedMessageSurvivesRestart
// with the key registration before the snapshot the node restarts from: the
// node recovers its sender key from the key headers of the stored log
// before the snapshot, which it reads but does not apply again.
func TestQueuedMessageSurvivesSnapshotRestart(t *testing.T) {
	t.Parallel()
	c := newSnapshotCluster(t, 3, 22)
	c.form()
	c.waitVoters(3)
	reg := c.send(2, "registers the key", 10*time.Second)
	sent := append([]string{"registers the key"}, c.sendMany("more", 2*testSnapshotEntries)...)
	c.converged(len(sent))
	c.Isolate(2)
	if m := c.send(2, "queued across a restart", 500*time.Millisecond); m.State != node.StateTentative {
		t.Fatalf("a minority committed a message: %+v", m)
	}
	c.Crash(2)
	if snap, _ := c.stored(2); snap <= reg.Index {
		t.Fatalf("node2's snapshot at %d does not cover the key registration at %d", snap, reg.Index)
	}
	c.start(2)
	if s := c.logStats(2); s.RestoredFrom == 0 {
		t.Fatal("node2 did not restart from its snapshot")
	}
	c.Eventually(t, 30*time.Second, "the restarted node to restore its outbox", func() bool {
		return c.Node(2).Status().Groups[0].Queued == 1
	})
	c.net.Heal()
	checkExactlyOnce(t, c.converged(len(sent)+1), append(sent, "queued across a restart"))
	c.Eventually(t, 30*time.Second, "an empty outbox", func() bool { return c.Node(2).Status().Groups[0].Queued == 0 })
}

// damageSnapshot damages the stored snapshot of node i, which is down: on
// disk (a flipped bit in the stored value), or in its content (a state that
// does not decode, stored as a valid snapshot).
func (c *cluster) damageSnapshot(i int, onDisk bool) {
	c.t.Helper()
	path := filepath.Join(c.Member(i).Dir, "store.db")
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	if onDisk {
		// The layout of package store: groups / group id / snap / snapshot.
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			c.t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bolt.Tx) error {
			sb := tx.Bucket([]byte("groups")).Bucket(gid[:]).Bucket([]byte("snap"))
			if sb == nil {
				return errors.New("no snapshot to damage")
			}
			v := append([]byte(nil), sb.Get([]byte("snapshot"))...)
			if len(v) == 0 {
				return errors.New("no snapshot to damage")
			}
			v[len(v)/2] ^= 1
			return sb.Put([]byte("snapshot"), v)
		})
		if err != nil {
			c.t.Fatal(err)
		}
		return
	}
	st, err := store.Open(path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	snap, err := st.LoadSnapshot(gid[:])
	if err != nil || snap == nil {
		c.t.Fatalf("no snapshot to damage (%v)", err)
	}
	snap.Data = snap.Data[:len(snap.Data)-1]
	if err := st.SaveSnapshot(gid[:], snap); err != nil {
		c.t.Fatal(err)
	}
}

// TestDamagedSnapshotAppliesTheLog: a node whose stored snapshot is damaged
// applies its whole log again, which the store keeps, and shows the same
// history as before.
func TestDamagedSnapshotAppliesTheLog(t *testing.T) {
	t.Parallel()
	c := newSnapshotCluster(t, 3, 23)
	c.form()
	c.waitVoters(3)
	sent := c.sendMany("m", 2*testSnapshotEntries)
	ref := c.converged(len(sent))
	members := c.members(0)
	for _, d := range []struct {
		i      int
		onDisk bool
	}{{1, true}, {2, false}} {
		i := d.i
		c.Stop(i)
		c.damageSnapshot(i, d.onDisk)
		c.start(i)
		c.Eventually(t, 30*time.Second, fmt.Sprintf("%s to list the messages again", c.Member(i).Name), func() bool { return len(c.committed(i)) >= len(ref) })
		if got := c.committed(i); !reflect.DeepEqual(got, ref) {
			t.Fatalf("%s lists %s\nwant %s", c.Member(i).Name, nodetest.Texts(got), nodetest.Texts(ref))
		}
		if s := c.logStats(i); s.RestoredFrom != 0 || s.AppliedHere != s.Applied {
			t.Fatalf("%s restarted from %d and applied %d entries up to %d: want the whole log applied", c.Member(i).Name, s.RestoredFrom, s.AppliedHere, s.Applied)
		}
		if got := c.members(i); !reflect.DeepEqual(got, members) {
			t.Fatalf("%s lists members %v, want %v", c.Member(i).Name, got, members)
		}
	}
	sent = append(sent, c.sendMany("after", 3)...)
	ref = c.converged(len(sent))
	checkExactlyOnce(t, ref, sent)
	// The snapshot after the whole log applied again replaces the message
	// ids stored beside the damaged one's (store.IDRuns): the next
	// restart restores from it, every id once.
	c.Stop(1)
	snap, _ := c.stored(1)
	c.start(1)
	c.checkRestored(1, snap, ref, members)
}

// checkSnapshotsOfLog applies a node's real log (joins, promotions, latency
// maps, checkpoints, chats) to a state machine and checks, at many
// positions, that a state restored from a snapshot equals the original,
// unexported fields included, and applies the rest of the log with the same
// results to the same state.
func checkSnapshotsOfLog(t *testing.T, n *node.Node, groupID string) {
	t.Helper()
	entries, err := n.LogFrames(groupID)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := crypto.ParseGroupID(groupID)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(s *state.State, e transcript.Entry) state.Result {
		if e.Kind == transcript.KindConf {
			return s.ApplyConf(e.Index, e.NodeID, e.Change, e.Frame)
		}
		return s.ApplyEntry(e.Index, e.Frame)
	}
	orig := state.New(gid)
	results := make([]state.Result, len(entries))
	type point struct {
		k    int // entries applied
		data []byte
	}
	var points []point
	for k, e := range entries {
		results[k] = apply(orig, e)
		if k%17 == 0 || k == len(entries)-1 {
			data, err := orig.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			r, err := state.Restore(gid, data)
			if err != nil {
				t.Fatalf("restore at %d: %v", e.Index, err)
			}
			if !reflect.DeepEqual(r, orig) {
				t.Fatalf("the state restored at %d differs", e.Index)
			}
			points = append(points, point{k + 1, data})
		}
	}
	checks := 0
	for _, r := range results {
		if r.Check != nil {
			checks++
		}
	}
	t.Logf("snapshots of a log of %d entries: %d messages, %d checkpoints, %d latency maps, %d members", len(entries), orig.MsgIDs.Len(), checks, len(orig.Latency), len(orig.Members))
	if orig.MsgIDs.Len() == 0 || checks == 0 {
		t.Fatalf("the log fills little of the state: %d messages, %d checkpoints", orig.MsgIDs.Len(), checks)
	}
	for _, p := range points {
		r, err := state.Restore(gid, p.data)
		if err != nil {
			t.Fatal(err)
		}
		for k := p.k; k < len(entries); k++ {
			if got := apply(r, entries[k]); !reflect.DeepEqual(got, results[k]) {
				t.Fatalf("restored after %d entries: entry %d gives %+v, want %+v", p.k, entries[k].Index, got, results[k])
			}
		}
		if !reflect.DeepEqual(r, orig) {
			t.Fatalf("restored after %d entries: the final state differs", p.k)
		}
	}
}
