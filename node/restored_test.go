package node_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/node/store"
)

// TestRestoredVoterCatchesUpUnderTheSameHost: a voter restored from a backup
// of its store has lost log entries it had acknowledged, while the host,
// which stayed up, remembers them as acknowledged: raft never lowers what
// it knows a follower holds, so its heartbeats commit beyond the restored
// log, which the member refuses (an honest host never sends that), and the
// member never caught up while that host led (found by a fresh-user QA
// pass: the README said a restored node catches up). The host, told so,
// hands leadership over, and the new term starts every member's progress
// afresh.
func TestRestoredVoterCatchesUpUnderTheSameHost(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 66, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	h := c.waitHost(-1)
	f := (h + 1) % 3
	c.send(h, "before the backup", 10*time.Second)
	c.Eventually(t, 30*time.Second, "the follower to hold the first message", func() bool {
		return c.shows(f, "before the backup")
	})
	backup := c.backupStore(f)
	for i := range 3 {
		c.send(h, fmt.Sprintf("after the backup %d", i), 10*time.Second)
	}
	c.Eventually(t, 30*time.Second, "the follower to hold the later messages", func() bool {
		return c.shows(f, "after the backup 2")
	})
	c.Stop(f)
	c.restoreStore(f, backup)
	before, _ := c.Status(h)
	c.start(f)
	if c.shows(f, "after the backup 2") {
		t.Fatal("the restored store holds what was committed after the backup: the test would prove nothing")
	}
	c.Eventually(t, 60*time.Second, "the restored follower to catch up", func() bool {
		return c.shows(f, "after the backup 2")
	})
	// By a new term: node h handed over (or, on a loaded machine, lost
	// its lease), not by h sending what raft never sends.
	if after, _ := c.Status(f); after.Term <= before.Term {
		t.Fatalf("the restored follower caught up in term %d, the host's term before it came back", after.Term)
	}
	c.send(f, "back from the backup", 30*time.Second)
	c.Eventually(t, 30*time.Second, "the restored follower to take part in elections again", func() bool {
		hold, err := node.RestoredHold(c.Node(f), c.GroupID)
		return err == nil && !hold
	})
}

// TestLostLogOfAnEarlierTerm: a member's refusal of a heartbeat as
// committing beyond its log speaks of the host's progress in the term of
// that heartbeat; one reported after the host was elected again (it waited
// in the group's queue) says nothing of the new term, whose progress
// started afresh, and must not make the host hand over. Of the current
// term, it does.
func TestLostLogOfAnEarlierTerm(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 351, simnet.LinkConfig{}, nil)
	c.form()
	c.waitVoters(3)
	c.send(c.waitHost(-1), "something to acknowledge", 30*time.Second)
	ctx := ctxT(t, 30*time.Second)
	// Each round asks the host as it is then: a refusal of the term before
	// must not make it hand over, and one of its term, a moment later and
	// so under the same conditions, does once raft counts the other voter
	// active and caught up (on a loaded machine that may take a moment,
	// and a host elected meanwhile is the next round's).
	c.Eventually(t, 30*time.Second, "the host to hand over on a refusal of its term", func() bool {
		h := c.Host()
		st, ok := c.Status(h)
		if h < 0 || !ok || st.Term < 2 {
			return false
		}
		key := c.Member((h + 1) % 3).ID.Public().Sign
		if to, err := node.LostLogReport(ctx, c.Node(h), c.GroupID, key, st.Term-1); err != nil || to != 0 {
			t.Fatalf("a refusal of term %d, the host in term %d: handing over to %d (%v), want no handover", st.Term-1, st.Term, to, err)
		}
		to, err := node.LostLogReport(ctx, c.Node(h), c.GroupID, key, st.Term)
		if err != nil {
			t.Fatal(err)
		}
		return to != 0
	})
}

// backupStore returns a copy of node i's store, taken while it runs, as
// demes backup takes it.
func (c *cluster) backupStore(i int) []byte {
	c.t.Helper()
	var b bytes.Buffer
	if _, err := c.Node(i).BackupStore(&b, func(int64) {}); err != nil {
		c.t.Fatal(err)
	}
	return b.Bytes()
}

// restoreStore puts backup back as the store of node i, which is down, and
// marks it restored, as demes restore does: its groups hold their votes
// until they caught up (restored.go).
func (c *cluster) restoreStore(i int, backup []byte) {
	c.t.Helper()
	path := filepath.Join(c.Member(i).Dir, "store.db")
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := store.MarkRestored(path); err != nil {
		c.t.Fatal(err)
	}
}
