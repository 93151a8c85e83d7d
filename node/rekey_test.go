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
	var out []*crypto.SealedInfo
	for _, f := range c.chatFrames(i, j) {
		out = append(out, f.info)
	}
	return out
}

// chatFrame is one of a member's chat messages in the log: its id and what
// its sealing says.
type chatFrame struct {
	id   string
	info *crypto.SealedInfo
}

// chatFrames returns node i's chat messages in node j's log, in log order.
func (c *cluster) chatFrames(i, j int) []chatFrame {
	c.t.Helper()
	es, err := c.Node(j).LogFrames(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []chatFrame
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
		out = append(out, chatFrame{id: fmt.Sprintf("%x", b.ID), info: info})
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

// TestKeyHeaderOncePerKey (issue 16, item 6: disk per message): a member
// sending many messages at once writes each new sender key's header into
// the log once, not on every message sent before the group registered the
// key. A header is 1216 bytes a member; 64 senders at once put one on a
// fifth of the messages, which doubled the disk a message costs.
func TestKeyHeaderOncePerKey(t *testing.T) {
	t.Parallel()
	burstHeaders(t, nil)
}

// TestKeyHeaderOncePerFallbackKey: the same while a member has no valid
// prekey, so that every new sender key's header is sealed to the members'
// identity keys. Under load that happened at the start of
// TestKeyHeaderOncePerKey (a member's prekey not yet committed), and every
// message under such a key carried the header: 20 of 20.
func TestKeyHeaderOncePerFallbackKey(t *testing.T) {
	t.Parallel()
	c := burstHeaders(t, func(c *cluster) {
		// node2's prekeys expire two milliseconds after they are made.
		c.Member(2).Tweak = func(cfg *node.Config) { cfg.PrekeyRotate = time.Millisecond }
	})
	if node.IdentitySealed(c.Node(0)) == 0 {
		t.Fatal("node0 sealed no key header to identity keys: the test did not test the fallback")
	}
}

// burstHeaders has node0 send a burst of messages from many goroutines,
// with a new sender key every 20 messages, and checks that each key's
// header is in the log about once.
func burstHeaders(t *testing.T, tune func(*cluster)) *cluster {
	c := newClusterWith(t, 3, 223, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(0).Tweak = func(cfg *node.Config) { cfg.RotateMessages = 20 }
		if tune != nil {
			tune(c)
		}
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
	// One a key in a steady group; a carrier lost in a leader change
	// costs one more for the messages rejected after it. Before, 95 of
	// the 120 carried one; under a key sealed to identity keys, all 20.
	frames := c.chatFrames(0, 1)
	perKey := map[[crypto.KeyIDSize]byte]int{}
	headers := 0
	for _, f := range frames {
		if _, ok := perKey[f.info.KeyID]; !ok {
			perKey[f.info.KeyID] = 0
		}
		if f.info.HasHeader() {
			perKey[f.info.KeyID]++
			headers++
		}
	}
	if len(perKey) < n/20 {
		t.Fatalf("%d messages under %d keys, want a new key every 20", n, len(perKey))
	}
	most := 0
	for _, k := range perKey {
		most = max(most, k)
	}
	// The bounds leave room for load: beside the browser tests, a run
	// of TestKeyHeaderOncePerFallbackKey, whose keys change every few
	// messages as node2's prekeys come and go, had a leader change
	// (node0's queued messages proposed again) and 30 headers, 6 of them
	// under one key. The bug these catch put a header on most messages.
	if headers > n/3 || most > 10 {
		// The log's sequence: key/H for a header, + for a message id
		// seen before in the log.
		var seq []string
		seen := map[string]bool{}
		for _, f := range frames {
			s := fmt.Sprintf("%x", f.info.KeyID[:2])
			if f.info.HasHeader() {
				s += "/H"
			}
			if seen[f.id] {
				s += "+"
			}
			seen[f.id] = true
			seq = append(seq, s)
		}
		t.Fatalf("%d of %d messages carry a key header, under %d keys, %d under one: want about one header a key; the log: %s",
			headers, n, len(perKey), most, strings.Join(seq, " "))
	}
	return c
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
