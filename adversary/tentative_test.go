package adversary

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// Attacks on tentative delivery (node/tentative.go): a member hands its
// messages that the group has not committed yet directly to the others,
// who show them at once as tentative. A member must not be able to show
// anything as another's, to show a message twice, to push its messages
// ahead for good, or to fill another member's memory; nobody else may show
// anything at all.

// tentativeItem and tentativeBody are the wire form of a tentative
// envelope's payload, as the node encodes it.
type tentativeItem struct {
	_     struct{} `cbor:",toarray"`
	Order uint64
	Frame []byte
}

type tentativeBody struct {
	_     struct{} `cbor:",toarray"`
	Items []tentativeItem
}

// sealedChat returns a chat frame signed by member i, sealed to every
// member of the group in epoch under a new sender key of i's (with its
// key header, as a first message under a key carries).
func (g *group) sealedChat(i int, epoch uint64, text string) (frame []byte, id [16]byte) {
	g.t.Helper()
	return g.sealedChatWith(i, crypto.NewSenderKey(g.gid, g.pub(i).Sign, epoch), true, text)
}

// sealedChatWith is sealedChat under key, with its key header or not (a
// later message under a key the receiver has opened already).
func (g *group) sealedChatWith(i int, key *crypto.SenderKey, header bool, text string) (frame []byte, id [16]byte) {
	g.t.Helper()
	id = crypto.NewMessageID()
	return g.sealedChatID(i, key, header, text, id), id
}

// sealedChatID is sealedChatWith for a message under the id given.
func (g *group) sealedChatID(i int, key *crypto.SenderKey, header bool, text string, id [16]byte) (frame []byte) {
	g.t.Helper()
	var members []identity.PublicID
	st, _ := g.c.Status(0)
	for _, m := range st.Members {
		p, err := identity.ParsePublicID(m.PublicID)
		if err != nil {
			g.t.Fatal(err)
		}
		members = append(members, p)
	}
	if !header {
		members = nil
	}
	sealed, err := crypto.SealMessage(g.ident(i), &crypto.Message{Group: g.gid, ID: id, Time: time.Now().UnixNano(), Body: []byte(text)}, key, members)
	if err != nil {
		g.t.Fatal(err)
	}
	frame, err = crypto.Sign(g.ident(i), &crypto.Envelope{Type: crypto.TypeChat, Group: g.gid, Payload: mustEncode(g.t, &state.ChatBody{ID: id[:], Sealed: sealed}), Counter: uint64(time.Now().UnixNano()), Time: time.Now().UnixNano()})
	if err != nil {
		g.t.Fatal(err)
	}
	return frame
}

// tentative is a tentative envelope from signer to node to, carrying
// frames at the orders given.
func (g *group) tentative(signer *identity.Identity, to int, order uint64, frames ...[]byte) []byte {
	g.t.Helper()
	var items []tentativeItem
	for k, f := range frames {
		items = append(items, tentativeItem{Order: order + uint64(k), Frame: f})
	}
	env, err := crypto.Sign(signer, &crypto.Envelope{Type: crypto.TypeTentative, Group: g.gid, To: g.pub(to).Sign,
		Payload: mustEncode(g.t, &tentativeBody{Items: items}), Counter: uint64(time.Now().UnixNano()), Time: time.Now().UnixNano()})
	if err != nil {
		g.t.Fatal(err)
	}
	return env
}

// epochOf returns the membership epoch of node i's latest committed chat
// message.
func (g *group) epochOf(i int) uint64 {
	g.t.Helper()
	// Node i's message committed on node i, by a majority that node0 may
	// not be part of yet (CI: node0's log did not hold it yet).
	var epoch uint64
	g.c.Eventually(g.t, 30*time.Second, fmt.Sprintf("a chat message of node%d in node0's log", i), func() bool {
		es := g.log(0)
		for k := len(es) - 1; k >= 0; k-- {
			env, err := crypto.Verify(es[k].Frame)
			if err != nil || env.Type != crypto.TypeChat || env.Sender != g.pub(i).Sign {
				continue
			}
			var b state.ChatBody
			if err := state.Decode(env.Payload, &b); err != nil {
				g.t.Fatal(err)
			}
			info, err := crypto.ReadSealed(b.Sealed)
			if err != nil {
				g.t.Fatal(err)
			}
			epoch = info.Epoch
			return true
		}
		return false
	})
	return epoch
}

// shown returns how many times node i lists a message whose text has
// prefix, and how many of those are tentative.
func (g *group) shown(i int, prefix string) (all, tentative int) {
	g.t.Helper()
	ms, err := g.node(i).Messages(g.id)
	if err != nil {
		g.t.Fatal(err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m.Text, prefix) {
			all++
			if m.State == node.StateTentative {
				tentative++
			}
		}
	}
	return all, tentative
}

func TestTentativeAttacks(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 4, options{})
	g.form(0, 1, 2)
	const rogue = 2
	if _, err := g.node(rogue).Send(ctxT(t, 30*time.Second), g.id, "rogue's first", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := g.node(0).Send(ctxT(t, 30*time.Second), g.id, "honest", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	epoch := g.epochOf(rogue)
	order := uint64(1000)
	// The messages go to node1, which does not host (the host follows
	// join order here): a host proposes the tentative messages it holds
	// once their author has had time to (TestTentativeOrphansKeepTheQuota),
	// and what is checked here is what a member shows.
	const to = 1

	// The control: a member's own well-formed message is shown, once,
	// tentative. Without it, the refusals below would prove nothing.
	frame, _ := g.sealedChat(rogue, epoch, "control")
	env := g.tentative(g.ident(rogue), to, order, frame)
	if code, _ := g.post(to, env); code != http.StatusOK {
		t.Fatalf("a member's own tentative message was answered %d, want 200", code)
	}
	if all, tent := g.shown(to, "control"); all != 1 || tent != 1 {
		t.Fatalf("the control is listed %d times (%d tentative), want once, tentative", all, tent)
	}

	t.Run("replayed envelope", func(t *testing.T) {
		if code, _ := g.post(to, env); code == http.StatusOK {
			t.Errorf("the same tentative envelope again was answered 200, want a refusal")
		}
		if all, _ := g.shown(to, "control"); all != 1 {
			t.Errorf("the control is listed %d times after its replay, want once", all)
		}
	})

	t.Run("outsider", func(t *testing.T) {
		out := g.ident(3) // never invited
		f, _ := g.sealedChat(3, epoch, "outsider")
		if code, _ := g.post(to, g.tentative(out, to, order, f)); code != http.StatusForbidden {
			t.Errorf("an outsider's tentative message was answered %d, want 403", code)
		}
		if all, _ := g.shown(to, "outsider"); all != 0 {
			t.Errorf("node1 lists an outsider's message")
		}
	})

	t.Run("another member's message", func(t *testing.T) {
		// node0's committed message and a new one of node0's, in the
		// rogue's envelope: a member sends only its own. (Two checks stop
		// it: the envelope's signer must be the chat frame's, and the
		// record inside must be signed by the envelope's signer.)
		var honest []byte
		for _, e := range g.log(0) {
			if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeChat && env.Sender == g.pub(0).Sign {
				honest = e.Frame
			}
		}
		fresh, _ := g.sealedChat(0, epoch, "as if from node0")
		g.post(to, g.tentative(g.ident(rogue), to, order, honest, fresh))
		if all, _ := g.shown(to, "as if from node0"); all != 0 {
			t.Errorf("node1 lists node0's message that the rogue handed over")
		}
		if all, _ := g.shown(to, "honest"); all != 1 {
			t.Errorf("node1 lists node0's committed message %d times, want once", all)
		}
	})

	t.Run("another member's message, to the host", func(t *testing.T) {
		// A member that holds another's tentative message hands it to the
		// host, which proposes it for its author (relayOrphans). What the
		// rogue hands over is held as its author's, once: node1's message
		// that node1 handed the rogue, and node0's committed one again.
		var honest []byte
		for _, e := range g.log(0) {
			if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeChat && env.Sender == g.pub(0).Sign {
				honest = e.Frame
			}
		}
		handed, _ := g.sealedChat(1, epoch, "node1's, handed on")
		if code, _ := g.post(host, g.tentative(g.ident(rogue), host, order, honest, handed)); code != http.StatusOK {
			t.Fatalf("the rogue's tentative envelope to the host was answered %d, want 200", code)
		}
		ms, err := g.node(host).Messages(g.id)
		if err != nil {
			t.Fatal(err)
		}
		shown := 0
		for _, m := range ms {
			if m.Text == "node1's, handed on" {
				shown++
				if m.Author != g.pub(1).String() {
					t.Errorf("the host shows node1's message as %s's", m.Author)
				}
			}
		}
		if shown != 1 {
			t.Errorf("the host lists node1's message %d times, want once", shown)
		}
		if all, _ := g.shown(host, "honest"); all != 1 {
			t.Errorf("the host lists node0's committed message %d times, want once", all)
		}
	})

	t.Run("committed message again", func(t *testing.T) {
		var own []byte
		for _, e := range g.log(0) {
			if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeChat && env.Sender == g.pub(rogue).Sign {
				own = e.Frame
			}
		}
		g.post(to, g.tentative(g.ident(rogue), to, order, own))
		if all, tent := g.shown(to, "rogue's first"); all != 1 || tent != 0 {
			t.Errorf("a committed message handed over again is listed %d times (%d tentative), want once, committed", all, tent)
		}
	})

	t.Run("order far ahead", func(t *testing.T) {
		f, _ := g.sealedChat(rogue, epoch, "always last")
		g.post(to, g.tentative(g.ident(rogue), to, 1<<62, f))
		if all, _ := g.shown(to, "always last"); all != 0 {
			t.Errorf("node1 lists a message whose order is far ahead of its clock")
		}
	})

	t.Run("tampered record", func(t *testing.T) {
		f, _ := g.sealedChat(rogue, epoch, "tampered")
		env, _ := crypto.Verify(f)
		var b state.ChatBody
		if err := state.Decode(env.Payload, &b); err != nil {
			t.Fatal(err)
		}
		b.Sealed[len(b.Sealed)-1] ^= 1 // the ciphertext's tag
		f2, err := crypto.Sign(g.ident(rogue), &crypto.Envelope{Type: crypto.TypeChat, Group: g.gid, Payload: mustEncode(t, &b), Counter: 1, Time: time.Now().UnixNano()})
		if err != nil {
			t.Fatal(err)
		}
		g.post(to, g.tentative(g.ident(rogue), to, order, f2))
		if all, _ := g.shown(to, "tampered"); all != 0 {
			t.Errorf("node1 lists a message whose ciphertext was changed")
		}
	})

	t.Run("flood", func(t *testing.T) {
		// More than a member may have waiting, in envelopes under the
		// frame limit, under one sender key (its header opened once).
		key := crypto.NewSenderKey(g.gid, g.pub(rogue).Sign, epoch)
		for sent := 0; sent < 1010; {
			var fs [][]byte
			for k := 0; k < 101; k++ {
				f, _ := g.sealedChatWith(rogue, key, sent+k == 0, "flood")
				fs = append(fs, f)
			}
			g.post(to, g.tentative(g.ident(rogue), to, order, fs...))
			sent += len(fs)
		}
		st, _ := g.c.Status(to)
		if st.Tentative > 1000 {
			t.Errorf("node1 holds %d tentative messages of one member, want at most 1000", st.Tentative)
		}
	})

	t.Run("removed member", func(t *testing.T) {
		if err := g.node(0).Remove(ctxT(t, 30*time.Second), g.id, g.pub(rogue).String()); err != nil {
			t.Fatal(err)
		}
		g.c.Eventually(t, 30*time.Second, "the rogue's messages dropped on node1", func() bool {
			all, _ := g.shown(to, "control")
			return all == 0
		})
		f, _ := g.sealedChat(rogue, epoch, "after removal")
		if code, _ := g.post(to, g.tentative(g.ident(rogue), to, order, f)); code == http.StatusOK {
			t.Errorf("a removed member's tentative message was answered 200")
		}
		if all, _ := g.shown(to, "after removal"); all != 0 {
			t.Errorf("node1 lists a removed member's message")
		}
	})
}
