package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/canon"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// Attacks of a malicious member on the forward secrecy machinery (issue 19):
// what it can publish in the log or seal into a key header, against the
// others' nodes.

// forgePrekey signs, as owner, a prekey record with any public key: what a
// member's own modified software can publish (the wire form of package
// prekey: a CBOR array of the record's bytes and their signature).
func forgePrekey(t testing.TB, owner *identity.Identity, public []byte, notBefore time.Time, lifetime time.Duration) []byte {
	t.Helper()
	sign := owner.Public().Sign
	record, err := canon.Marshal(&struct {
		_         struct{} `cbor:",toarray"`
		Version   uint64
		Owner     []byte
		Public    []byte
		NotBefore int64
		Expires   int64
	}{Version: prekey.Version, Owner: sign[:], Public: public, NotBefore: notBefore.UnixNano(), Expires: notBefore.Add(lifetime).UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := canon.Marshal(&struct {
		_         struct{} `cbor:",toarray"`
		Record    []byte
		Signature []byte
	}{Record: record, Signature: owner.Sign(append([]byte("DeMeS prekey v1\x00"), record...))})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// proposeAs signs e as node i and has it committed: it proposes it until
// node0's log holds it.
func (c *cluster) proposeAs(i int, e *crypto.Envelope) {
	c.t.Helper()
	frame, err := c.Node(i).SignRaw(e)
	if err != nil {
		c.t.Fatal(err)
	}
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("node%d's %v entry in the log", i, e.Type), func() bool {
		es, err := c.Node(0).LogFrames(c.GroupID)
		if err != nil {
			return false
		}
		for _, x := range es {
			if string(x.Frame) == string(frame) {
				return true
			}
		}
		c.Node(i).ProposeRaw(context.Background(), c.GroupID, frame)
		return false
	})
}

// TestLowOrderPrekeyBlocksSealing: a member publishes a prekey whose X25519
// half is a point of small order. Its signature is its own and its ML-KEM
// half is sound, so unless the point is refused, every other member seals
// to it, and every seal fails (X25519 with a small-order point gives no
// shared secret): nobody in the group can send a message that needs a new
// key header, that is after any rekey, until the member is removed.
func TestLowOrderPrekeyBlocksSealing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 251, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitPrekeys(3)

	evil := c.Member(2).ID
	real, _, err := prekey.Generate(evil, time.Now(), prekey.DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	public := append([]byte(nil), real.PublicKey()...)
	clear(public[len(public)-32:]) // the X25519 point 0, of small order
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	c.proposeAs(2, &crypto.Envelope{Type: crypto.TypePrekey, Group: gid,
		Payload: forgePrekey(t, evil, public, time.Now(), prekey.DefaultLifetime)})
	// A new epoch: every member's next message carries a new key header.
	if err := c.Node(1).Rekey(ctxT(t, 30*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctxT(t, 20*time.Second), 0, "after the bad prekey", 10*time.Second); err != nil {
		t.Fatalf("node0 cannot send after node2 published a prekey with a small-order point: %v", err)
	}
}

// baitNoAlarm has node2 commit sealed, a chat message of id forged to
// bait node1, and checks that node1 neither raised the lost-keys alarm nor
// committed a rekey because of it (what names the bait in failures).
func (c *cluster) baitNoAlarm(gid crypto.GroupID, id [16]byte, sealed []byte, what string) {
	t := c.t
	t.Helper()
	body, err := state.Encode(&state.ChatBody{ID: id[:], Sealed: sealed})
	if err != nil {
		t.Fatal(err)
	}
	c.proposeAs(2, &crypto.Envelope{Type: crypto.TypeChat, Group: gid, Payload: body})

	// Node1 applied the bait once it reads a later message.
	c.send(0, "after the bait", 10*time.Second)
	var after uint64
	c.Eventually(t, 30*time.Second, "node1 reads node0's message after the bait", func() bool {
		ms, err := c.Committed(1)
		if err == nil && len(ms) > 0 && ms[len(ms)-1].Text == "after the bait" {
			after = ms[len(ms)-1].Index
			return true
		}
		return false
	})
	// The alarm is raised as the bait is applied (noteKeysLost), before
	// any rekey: once node1's status covers the message after the bait,
	// it would show it.
	c.Eventually(t, 30*time.Second, "node1's status to cover the message after the bait", func() bool {
		g, ok := c.Status(1)
		return ok && g.Committed >= after
	})
	if g, ok := c.Status(1); ok && g.Keys != nil {
		t.Errorf("node1 believes it lost its keys after %s: %q", what, g.Keys.Message)
	}
	frames, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range frames {
		if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeRekey && env.Sender == c.Member(1).ID.Public().Sign {
			t.Errorf("node1 committed a rekey (index %d) because of %s", e.Index, what)
		}
	}
}

// forgeSetup forms a group of three (seed), has node2 send a message, and
// returns what node2 needs to forge a key header: the group's id, each
// member's prekey as the log has it, and node2's epoch.
func forgeSetup(t *testing.T, seed int64) (*cluster, crypto.GroupID, []*prekey.Prekey, uint64) {
	t.Helper()
	c := newCluster(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitPrekeys(3)
	c.send(2, "hello from node2", 10*time.Second)
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[[32]byte][]byte{}
	for _, e := range frames {
		if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypePrekey {
			latest[env.Sender] = env.Payload
		}
	}
	var ps []*prekey.Prekey
	for i := range 3 {
		p, err := prekey.Decode(latest[c.Member(i).ID.Public().Sign])
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	var seals []string
	c.Eventually(t, 30*time.Second, "node2's message in node0's log", func() bool {
		seals = c.sealedBy(2, 0)
		return len(seals) > 0
	})
	var epoch uint64
	fmt.Sscanf(seals[len(seals)-1], "%d/", &epoch)
	return c, gid, ps, epoch
}

// TestForgedStanzaFakesLostKeys: a member seals a message whose key header
// names, in node1's stanza, a prekey id node1 never had. Node1 cannot open
// it (no such secret), as it cannot open any header it is not really given;
// that must not make it believe it lost its key store: no alarm in its
// status, no rekey signed by it. Otherwise a member makes any other member
// raise a false alarm ("this node lost its keys ... older ones stay
// unreadable") and commit a rekey, once per epoch, for the price of one
// message each.
func TestForgedStanzaFakesLostKeys(t *testing.T) {
	t.Parallel()
	c, gid, ps, epoch := forgeSetup(t, 252)
	evil := c.Member(2).ID
	to := []*prekey.Prekey{ps[0], ps[2]}
	// Node1's stanza: a prekey id it never had. A stanza's owner and id are
	// plain bytes (HPKE's base mode authenticates no sender); a prekey
	// signed by node1's identity is only the shortest way to write one here,
	// the attacker needs no secret of node1's.
	fake, _, err := prekey.Generate(c.Member(1).ID, time.Now().Add(-time.Minute), prekey.DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	to = append(to, fake)
	key := crypto.NewSenderKey(gid, evil.Public().Sign, epoch)
	id := crypto.NewMessageID()
	sealed, err := crypto.SealMessageToPrekeys(evil, &crypto.Message{Group: gid, ID: id, Time: time.Now().UnixNano(), Body: []byte("bait")}, key, to, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.baitNoAlarm(gid, id, sealed, "a forged stanza")
	if ms := c.committed(0); !strings.Contains(ms[len(ms)-1].Text, "after the bait") {
		t.Fatalf("node0's last message is %q", ms[len(ms)-1].Text)
	}
}
