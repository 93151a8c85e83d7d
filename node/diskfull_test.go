package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestFullDiskNeverAcknowledges is a disk fault the store can report: one
// member's store lives on a tmpfs of a few MiB, and it sends large messages
// until its disk is full. A write that fails (bbolt cannot grow its file,
// or its commit fails) must stop the group on that node, never acknowledge:
// every send it acknowledged as committed is in the other members' logs,
// every one it acknowledged as queued was written to its outbox first, and
// the others go on. Needs root to mount the tmpfs; skipped otherwise.
func TestFullDiskNeverAcknowledges(t *testing.T) {
	t.Parallel()
	small := filepath.Join(t.TempDir(), "small")
	if err := os.MkdirAll(small, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=3m,mode=0700"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })

	c := newClusterWith(t, 3, 171, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(2).Dir = small
	})
	c.form()
	c.waitVoters(3)
	if err := c.Node(0).SetSettings(ctxT(t, 30*time.Second), c.GroupID, node.GroupSettings{MsgsPerMinute: 100000}); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("y", crypto.MaxBody-100)
	var acked []string
	var failed error
	for k := 0; k < 200 && failed == nil; k++ {
		text := fmt.Sprintf("%03d %s", k, body)
		m, err := c.Send(ctxT(t, 30*time.Second), 2, text, 5*time.Second)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			// Not acknowledged, and not the disk either: on a loaded
			// machine a send can outlast its context. The next one goes
			// on filling the disk.
		case err != nil:
			failed = err
		case m.State == node.StateCommitted:
			acked = append(acked, text)
		}
	}
	if failed == nil {
		t.Fatal("200 messages of 64 KiB fit on a 3 MiB disk: the test filled nothing")
	}
	t.Logf("%d sends acknowledged before the disk was full; the first send refused: %v", len(acked), failed)
	// The others go on, and hold every message node2 acknowledged.
	c.send(0, "the others go on", 10*time.Second)
	c.Eventually(t, 30*time.Second, "node0 and node1 to hold every message node2 acknowledged", func() bool {
		for _, i := range []int{0, 1} {
			have := map[string]bool{}
			for _, m := range c.committed(i) {
				have[m.Text] = true
			}
			for _, text := range acked {
				if !have[text] {
					return false
				}
			}
		}
		return true
	})
	// node2 acknowledges nothing more, and says why.
	m, err := c.Send(ctxT(t, 20*time.Second), 2, "after the disk is full", 2*time.Second)
	if err == nil {
		t.Errorf("node2 acknowledged a send after its disk was full: %+v", m)
	} else if !errors.Is(err, node.ErrStopped) || !strings.Contains(err.Error(), "cannot write to the disk") {
		t.Errorf("send after the disk was full: %v; want it to say the node cannot write to its disk", err)
	}
}
