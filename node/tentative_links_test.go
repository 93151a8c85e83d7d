package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestTentativeJunkLinksNotKept: a member hands node1 tentative messages
// whose key headers carry, in node1's stanza (sealed to its real prekey),
// the root of a new key link each, and whose ciphertexts do not open. Node1
// refuses each message, and must keep none of those roots: opening the
// header keeps the root it carries (a write to the key store, kept until
// the prekey's secret goes), and tentative messages cost their author no
// log entry and no quota, and those refused count for nothing, so a member
// could otherwise have another's key store grow without end
// (adversary.TestTentativeJunkKeysNotKept is the same for the sender keys).
func TestTentativeJunkLinksNotKept(t *testing.T) {
	t.Parallel()
	c, gid, ps, epoch := forgeSetup(t, 277)
	evil := c.Member(2).ID
	// Node2's message of forgeSetup opens a link to node1 too, once node1
	// applies it: counted before, not among the junk's.
	c.converged(1)
	before := node.StoredKeyLinks(c.Node(1))
	const junk = 20
	var items []handMade
	// Item 0, the control, opens: its root is kept, so that the count
	// below sees kept roots at all.
	for k := range junk + 1 {
		key := crypto.NewSenderKey(gid, evil.Public().Sign, epoch)
		now := time.Now()
		hdr, _, err := crypto.SealKeyHeaderLinked(key, []prekey.Recipient{{Prekey: ps[0]}, {Prekey: ps[1]}, {Prekey: ps[2]}}, now)
		if err != nil {
			t.Fatal(err)
		}
		id := crypto.NewMessageID()
		sealed, err := crypto.SealMessageWithHeader(evil, &crypto.Message{Group: gid, ID: id, Time: now.UnixNano(), Body: []byte("junk")}, key, hdr)
		if err != nil {
			t.Fatal(err)
		}
		if k > 0 {
			sealed[len(sealed)-1] ^= 1 // the ciphertext's tag
		}
		body, err := state.Encode(&state.ChatBody{ID: id[:], Sealed: sealed})
		if err != nil {
			t.Fatal(err)
		}
		frame, err := crypto.Sign(evil, &crypto.Envelope{Type: crypto.TypeChat, Group: gid, Payload: body, Counter: 1, Time: now.UnixNano()})
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, handMade{id: id, text: "junk", order: 1000 + uint64(k), frame: frame})
	}
	c.hand(2, 1, items...)
	switch n := node.StoredKeyLinks(c.Node(1)) - before; {
	case n == 0:
		t.Fatal("node1 keeps no root of the control, which it holds: the test shows nothing")
	case n > 1:
		t.Fatalf("node1's key store keeps %d new link roots from %d tentative messages it refused", n-1, junk)
	}
	if all := c.tentativeShown(1, "junk"); all != 1 {
		t.Fatalf("node1 shows %d of the messages, want the control alone", all)
	}
}

// tentativeShown returns how many of node i's messages are tentative with
// text text.
func (c *cluster) tentativeShown(i int, text string) int {
	c.t.Helper()
	ms, err := c.Node(i).Messages(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.Text == text && m.State == node.StateTentative {
			n++
		}
	}
	return n
}
