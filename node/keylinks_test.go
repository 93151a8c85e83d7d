package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// linkedHeaders returns, for each key header among frames (a group's log)
// from index from on, its log index, its sender's fingerprint bytes, its
// count of recipients and of linked stanzas, and its size.
type headerSeen struct {
	index             uint64
	sender            [32]byte
	recipients, links int
	size              int
}

func headersFrom(frames []transcript.Entry, from uint64) []headerSeen {
	var out []headerSeen
	for _, c := range transcripttest.SealedChats(frames) {
		if c.Index < from || !c.Info.HasHeader() {
			continue
		}
		out = append(out, headerSeen{index: c.Index, sender: c.Sender, recipients: len(c.Info.Recipients),
			links: c.Info.Linked, size: len(c.Sealed)})
	}
	return out
}

// sendRounds has each node of from send one message per round, rounds
// times, each waiting until it commits, and returns their texts:
// prefix + "round R from nodeI".
func (c *cluster) sendRounds(prefix string, rounds int, from ...int) []string {
	c.t.Helper()
	var texts []string
	for round := range rounds {
		for _, i := range from {
			text := fmt.Sprintf("%sround %d from node%d", prefix, round, i)
			c.send(i, text, 10*time.Second)
			texts = append(texts, text)
		}
	}
	return texts
}

// rotateEvery has each of the cluster's nodes start a new sender key after
// every n messages it sealed.
func rotateEvery(size, n int) func(*cluster) {
	return func(c *cluster) {
		for i := range size {
			c.Member(i).Tweak = func(cfg *node.Config) { cfg.RotateMessages = n }
		}
	}
}

// TestKeyLinks: once a member's first key header has committed, its next
// ones reach every other member over a key link (a linked stanza of 120
// bytes instead of an X-Wing stanza of 1,248), every member still reads
// every message, and a member that restarts reads the headers sealed over
// links it learnt before (their roots are in its key store).
func TestKeyLinks(t *testing.T) {
	t.Parallel()
	const size = 4
	c := newClusterWith(t, size, 241, simnet.LinkConfig{Latency: time.Millisecond}, rotateEvery(size, 1))
	c.form()
	c.waitPrekeys(size)
	all := []int{0, 1, 2, 3}
	sent := len(c.sendRounds("", 3, all...))
	c.converged(sent)
	c.sealedToPrekeysOnly()

	// Every sender's later headers are linked to all the others.
	full, linked := 0, 0
	allLinked := map[[32]byte]bool{}
	for _, h := range headersFrom(c.logFrames(), 0) {
		if h.links == h.recipients-1 {
			allLinked[h.sender] = true
			linked = max(linked, h.size)
		} else if h.links == 0 {
			full = max(full, h.size)
		}
	}
	if len(allLinked) != size {
		t.Fatalf("%d of %d members sealed a header linked to every other member", len(allLinked), size)
	}
	if linked >= full {
		t.Fatalf("a linked header's message is %d bytes, a full one's %d", linked, full)
	}
	if n := node.StoredKeyLinks(c.Node(1)); n < size-1 {
		t.Fatalf("node1's key store keeps %d key links, want at least %d", n, size-1)
	}

	// node1 restarts: the others' next headers reach it over the links it
	// learnt before, whose roots it read back from its key store.
	from := uint64(len(c.logFrames()))
	c.restart(1)
	sent += len(c.sendRounds("after the restart, ", 2, all...))
	c.converged(sent)
	n := 0
	for _, h := range headersFrom(c.logFrames(), from) {
		if h.sender != c.Member(1).ID.Public().Sign && h.links == h.recipients-1 {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no header after node1's restart reached it over a link: the test shows nothing")
	}

	// A transcript of a log with linked headers verifies, offline and
	// without a secret, and shows every message.
	doc, err := c.Node(2).Transcript(ctxT(t, 30*time.Second), c.GroupID, api.TranscriptRange{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := transcript.Verify(doc, []identity.PublicID{c.Member(2).ID.Public()})
	if err != nil {
		t.Fatalf("verify a transcript with linked key headers: %v", err)
	}
	if s.Messages != sent {
		t.Fatalf("the transcript shows %d of the %d messages", s.Messages, sent)
	}
}

// TestStolenDeviceKeyLinks: the roots of a member's key links open the
// linked stanzas to it without any prekey secret, so they are deleted with
// the secret of their prekey. A thief of the member's home reads the
// messages whose headers reached it over links while it keeps them, and
// none of them once its policy deleted them.
func TestStolenDeviceKeyLinks(t *testing.T) {
	t.Parallel()
	const size = 3
	c := newClusterWith(t, size, 242, simnet.LinkConfig{Latency: time.Millisecond}, rotateEvery(size, 1))
	c.form()
	c.waitPrekeys(size)
	old := c.sendRounds("old, ", 3, 0, 2)
	c.converged(len(old))
	c.sealedToPrekeysOnly()
	linkedToNode1 := 0
	for _, h := range headersFrom(c.logFrames(), 0) {
		if h.links == h.recipients-1 {
			linkedToNode1++
		}
	}
	if linkedToNode1 == 0 {
		t.Fatal("no header reached node1 over a link: the test shows nothing")
	}

	early := c.steal(1)
	if got := readsAny(early.read(t, c.GroupID, c.logFrames()), old...); len(got) != len(old) {
		t.Fatalf("a thief of node1's home reads %d of %d messages before any key was deleted; the attack should read all", len(got), len(old))
	}

	// Weeks pass for node1 (as in TestStolenDeviceForwardSecrecy).
	later := time.Now().Add(2*7*24*time.Hour + 7*24*time.Hour + 30*24*time.Hour + 7*24*time.Hour + time.Hour)
	node.ExpireKeysAt(c.Node(1), later)
	if n := node.StoredKeyLinks(c.Node(1)); n != 0 {
		t.Fatalf("node1's key store keeps %d key links after their prekeys' secrets were deleted", n)
	}
	stolen := c.steal(1)
	if r := readsAny(stolen.read(t, c.GroupID, c.logFrames()), old...); len(r) != 0 {
		t.Fatalf("a thief of node1's home reads %v after node1 deleted their keys (forward secrecy)", r)
	}
}
