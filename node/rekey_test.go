package node_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// sealedInfos returns, in log order, what the sealed payload of every chat
// message of node i in node j's log says of its key.
func (c *cluster) sealedInfos(i, j int) []*crypto.SealedInfo {
	c.t.Helper()
	es, err := c.Node(j).LogFrames(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []*crypto.SealedInfo
	for _, e := range es {
		env, err := crypto.Verify(e.Frame)
		if err != nil || env.Type != crypto.TypeChat || env.Sender != c.Member(i).ID.Public().Sign {
			continue
		}
		var b state.ChatBody
		if err := state.Decode(env.Payload, &b); err != nil {
			c.t.Fatal(err)
		}
		info, err := crypto.ReadSealed(b.Sealed)
		if err != nil {
			c.t.Fatal(err)
		}
		out = append(out, info)
	}
	return out
}

// sealedBy returns, in log order, the epoch and key id of every chat
// message of node i in node j's log.
func (c *cluster) sealedBy(i, j int) []string {
	c.t.Helper()
	var out []string
	for _, info := range c.sealedInfos(i, j) {
		out = append(out, fmt.Sprintf("%d/%x", info.Epoch, info.KeyID[:4]))
	}
	return out
}

// headersBy returns how many of node i's chat messages in node j's log carry
// a key header, and under how many distinct sender keys they are sealed.
func (c *cluster) headersBy(i, j int) (headers, keys int) {
	c.t.Helper()
	distinct := map[[crypto.KeyIDSize]byte]bool{}
	for _, info := range c.sealedInfos(i, j) {
		distinct[info.KeyID] = true
		if info.HasHeader() {
			headers++
		}
	}
	return headers, len(distinct)
}

// TestKeyHeaderOncePerKey (issue 16, item 6: disk per message): a member
// sending many messages at once writes each new sender key's header into
// the log once, not on every message sent before the group registered the
// key. A header is 1216 bytes a member; 64 senders at once put one on a
// fifth of the messages, which doubled the disk a message costs.
func TestKeyHeaderOncePerKey(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 223, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(0).Tweak = func(cfg *node.Config) { cfg.RotateMessages = 20 }
	})
	c.form()
	c.waitVoters(3)
	const n, senders = 120, 24
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := s; k < n; k += senders {
				c.send(0, fmt.Sprint("burst ", k), 30*time.Second)
			}
		}()
	}
	wg.Wait()
	c.Eventually(t, 30*time.Second, "node1 to read all of node0's messages", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) == n
	})
	headers, keys := c.headersBy(0, 1)
	if keys < n/20 {
		t.Fatalf("%d messages under %d keys, want a new key every 20", n, keys)
	}
	// One a key in a steady group; a carrier lost in a leader change
	// costs one more for the messages rejected after it. Before, 95 of
	// the 120 carried one.
	if headers > n/4 {
		t.Fatalf("%d of %d messages carry a key header, under %d keys: want about one header a key", headers, n, keys)
	}
}

// TestSenderKeyRotationAndRekey (issue 19, item 3): a member seals under a
// new sender key after RotateMessages messages, and every member gets a
// new one after any member's rekey; the others read every message.
func TestSenderKeyRotationAndRekey(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 2, 221, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(0).Tweak = func(cfg *node.Config) { cfg.RotateMessages = 3 }
	})
	c.form()
	for k := 0; k < 7; k++ {
		c.send(0, fmt.Sprint("m", k), 10*time.Second)
	}
	c.Eventually(t, 30*time.Second, "node0's 7 messages in node1's log", func() bool { return len(c.sealedBy(0, 1)) == 7 })
	keys := c.sealedBy(0, 1)
	distinct := map[string]int{}
	for _, k := range keys {
		distinct[k]++
	}
	if len(distinct) != 3 {
		t.Fatalf("7 messages under %d keys (%v), want 3: a new key every 3 messages", len(distinct), keys)
	}
	// node1 asks for new keys: node0's next message is of a new epoch.
	if err := c.Node(1).Rekey(ctxT(t, 30*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	c.send(0, "after the rekey", 10*time.Second)
	c.Eventually(t, 30*time.Second, "node0's message after the rekey in node1's log", func() bool { return len(c.sealedBy(0, 1)) == 8 })
	keys = c.sealedBy(0, 1)
	var e1, e2 uint64
	fmt.Sscanf(keys[6], "%d/", &e1)
	fmt.Sscanf(keys[7], "%d/", &e2)
	if e2 <= e1 {
		t.Fatalf("the message after the rekey is of epoch %d, the one before of %d", e2, e1)
	}
	c.Eventually(t, 30*time.Second, "node1 to read all 8", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) == 8 && ms[7].Text == "after the rekey"
	})
	// Asking again at once is refused before anything is proposed
	// (state.RekeyInterval): the group would reject it.
	err := c.Node(1).Rekey(ctxT(t, 30*time.Second), c.GroupID)
	if !errors.Is(err, node.ErrInvalid) || !strings.Contains(err.Error(), "try again after") {
		t.Fatalf("a second rekey at once: %v, want ErrInvalid saying when to try again", err)
	}
}
