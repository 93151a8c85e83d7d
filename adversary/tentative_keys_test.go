package adversary

import (
	"net/http"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/state"
)

// TestTentativeJunkKeysNotKept: a member hands another tentative messages
// that each carry the header of a new sender key of its own, sealed to the
// members, and a ciphertext that does not open under that key. The
// receiver refuses each message, and must keep none of those keys: it
// opened each header, and kept the key (in its ring, its history and its
// key store, one write to disk each, on the group's goroutine) before it
// found that the message does not open. Tentative messages cost no log
// entry and no quota, and only those held count against the author's
// bound, so a member could have another's disk and memory grow without
// end, for as long as the retention keeps a key.
func TestTentativeJunkKeysNotKept(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 3, options{})
	g.form(0, 1, 2)
	const rogue = 2
	if _, err := g.node(rogue).Send(ctxT(t, 30*time.Second), g.id, "rogue's first", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	epoch := g.epochOf(rogue)

	// The control: a well-formed message under a new key is held, and
	// its key kept, so that the count below sees kept keys at all.
	good := crypto.NewSenderKey(g.gid, g.pub(rogue).Sign, epoch)
	frame, _ := g.sealedChatWith(rogue, good, true, "control")
	const junk = 40
	frames := [][]byte{frame}
	var refs []crypto.KeyRef
	for range junk {
		key := crypto.NewSenderKey(g.gid, g.pub(rogue).Sign, epoch)
		frames = append(frames, g.unopenable(rogue, key))
		refs = append(refs, key.Ref())
	}
	if code, _ := g.post(0, g.tentative(g.ident(rogue), 0, 1000, frames...)); code != http.StatusOK {
		t.Fatalf("the tentative envelope was answered %d, want 200", code)
	}
	if all, tent := g.shown(0, "control"); all != 1 || tent != 1 {
		t.Fatalf("the control is listed %d times (%d tentative), want once, tentative", all, tent)
	}
	loot, err := nodetest.TakeLoot(g.c.Member(0).Dir, g.ident(0))
	if err != nil {
		t.Fatal(err)
	}
	if loot.SenderKeys[good.Ref()] == nil {
		t.Fatal("node0's key store does not keep the control's key: the test is broken")
	}
	kept := 0
	for _, ref := range refs {
		if loot.SenderKeys[ref] != nil {
			kept++
		}
	}
	if kept > 0 {
		t.Fatalf("node0's key store keeps %d of the %d sender keys of tentative messages it refused", kept, junk)
	}
}

// unopenable returns a chat frame of member i whose key header holds key,
// sealed to the members, and whose ciphertext does not open under it.
func (g *group) unopenable(i int, key *crypto.SenderKey) []byte {
	g.t.Helper()
	f, _ := g.sealedChatWith(i, key, true, "junk")
	env, err := crypto.Verify(f)
	if err != nil {
		g.t.Fatal(err)
	}
	var b state.ChatBody
	if err := state.Decode(env.Payload, &b); err != nil {
		g.t.Fatal(err)
	}
	b.Sealed[len(b.Sealed)-1] ^= 1 // the ciphertext's tag
	f, err = crypto.Sign(g.ident(i), &crypto.Envelope{Type: crypto.TypeChat, Group: g.gid, Payload: mustEncode(g.t, &b), Counter: 1, Time: time.Now().UnixNano()})
	if err != nil {
		g.t.Fatal(err)
	}
	return f
}
