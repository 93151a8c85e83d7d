package adversary

import (
	"net/http"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// The rogue and the host of the tests below: the host follows join order
// in a group without pings (options).
const rogue, host = 2, 0

// rogueGroup forms a group of three in which the rogue has sent one
// message ("rogue's first"), and returns it with the membership epoch of
// that message.
func rogueGroup(t *testing.T) (*group, uint64) {
	t.Helper()
	g := newGroup(t, 3, options{})
	g.form(0, 1, 2)
	if _, err := g.node(rogue).Send(ctxT(t, 30*time.Second), g.id, "rogue's first", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return g, g.epochOf(rogue)
}

// TestTentativeOrphansKeepTheQuota: a host proposes the tentative messages
// of another member it holds once their author has had time to propose
// them (node/tentative_orphan.go), so that a message the others were shown
// commits though its author lost it. A member must not get more into the
// log that way than it could propose itself: the rogue hands the host a
// thousand tentative messages, several times its quota of messages a
// minute, and proposes none. The host proposes them through the gate its
// members' proposals pass: the log takes the rogue's messages up to its
// quota, and none that the state machine refuses.
func TestTentativeOrphansKeepTheQuota(t *testing.T) {
	t.Parallel()
	g, epoch := rogueGroup(t)
	key := crypto.NewSenderKey(g.gid, g.pub(rogue).Sign, epoch)
	const flood = 1000
	for sent := 0; sent < flood; {
		var fs [][]byte
		for k := 0; k < 100; k++ {
			f, _ := g.sealedChatWith(rogue, key, sent+k == 0, "orphan")
			fs = append(fs, f)
		}
		if code, _ := g.post(host, g.tentative(g.ident(rogue), host, 1000+uint64(sent), fs...)); code != http.StatusOK {
			t.Fatalf("the rogue's tentative messages were answered %d, want 200", code)
		}
		sent += len(fs)
	}
	// Wait until the quota is full and the host went past it: it dropped
	// one of the rogue's messages at its gate, or (what must not happen)
	// put one in the log that the state machine refused.
	const overQuota = "proposal over the member's quota"
	rogueEntries := func() int {
		n := 0
		for _, e := range g.log(host) {
			if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeChat && env.Sender == g.pub(rogue).Sign {
				n++
			}
		}
		return n
	}
	g.c.Eventually(t, time.Minute, "the host to propose the rogue's messages past its quota", func() bool {
		all, tent := g.shown(host, "orphan")
		return all-tent+1 >= state.DefaultMsgsPerMinute && // with "rogue's first"
			(g.node(host).Status().Rejected[overQuota] > 0 || rogueEntries() > all-tent+1)
	})
	// What the log holds of the rogue is what the group accepted: every
	// chat entry of its in the log is a message listed as committed.
	inLog := rogueEntries()
	all, tent := g.shown(host, "orphan")
	committed := all - tent
	if committed == 0 {
		t.Fatalf("the host committed none of the tentative messages it holds")
	}
	if inLog != committed+1 { // and "rogue's first"
		t.Errorf("the log holds %d chat entries of the rogue, of which %d were accepted: the host proposed messages the state machine refused", inLog, committed+1)
	}
	// The quota counts messages by the time their author signed them,
	// all within a few seconds here: at most a minute's worth, and a
	// second one if the test ran past a minute.
	if max := 2 * state.DefaultMsgsPerMinute; committed > max {
		t.Errorf("the host committed %d of the rogue's messages, more than its quota allows (%d)", committed, max)
	}
	if st, _ := g.c.Status(host); st.Tentative == 0 {
		t.Errorf("the host holds none of the rogue's messages over its quota: they should wait, tentative")
	}
}

// TestTentativeOrphansNotRefused: the rogue hands the host a message
// carrying a sender key header sealed to the host alone (the host opens
// it and holds it, but the state machine refuses a header sealed to
// another member set than the group's), and twenty more under that key,
// without a header (the host opens them with the key the first gave; the
// state machine refuses them, the key never registered). A host that
// proposed these as orphans put into the log, again and again with its
// backoff, entries the state machine refuses and no quota counts: the
// rogue's messages must wait tentative, and the log take none of them.
func TestTentativeOrphansNotRefused(t *testing.T) {
	t.Parallel()
	g, epoch := rogueGroup(t)
	key := crypto.NewSenderKey(g.gid, g.pub(rogue).Sign, epoch)
	id := crypto.NewMessageID()
	sealed, err := crypto.SealMessage(g.ident(rogue), &crypto.Message{Group: g.gid, ID: id, Time: time.Now().UnixNano(), Body: []byte("orphan header")}, key, []identity.PublicID{g.pub(host)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := crypto.Sign(g.ident(rogue), &crypto.Envelope{Type: crypto.TypeChat, Group: g.gid, Payload: mustEncode(t, &state.ChatBody{ID: id[:], Sealed: sealed}), Counter: uint64(time.Now().UnixNano()), Time: time.Now().UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	fs := [][]byte{first}
	for k := 0; k < 20; k++ {
		f, _ := g.sealedChatWith(rogue, key, false, "orphan")
		fs = append(fs, f)
	}
	// Last, a message the rule takes (its header sealed to every member):
	// the host proposes the held messages in their order, so once this
	// one commits it has been through the others.
	control, _ := g.sealedChat(rogue, epoch, "control")
	fs = append(fs, control)
	if code, _ := g.post(host, g.tentative(g.ident(rogue), host, 1000, fs...)); code != http.StatusOK {
		t.Fatalf("the rogue's tentative messages were answered %d, want 200", code)
	}
	if all, tent := g.shown(host, "orphan"); all != len(fs)-1 || tent != len(fs)-1 {
		t.Fatalf("the host shows %d of the rogue's messages, %d tentative; want %d, all tentative", all, tent, len(fs)-1)
	}
	g.c.Eventually(t, 30*time.Second, "the host to propose the rogue's messages, the control committed", func() bool {
		all, tent := g.shown(host, "control")
		return all == 1 && tent == 0
	})
	res, _ := g.outcomes(host)
	refused := 0
	for _, r := range res {
		if r.Env != nil && r.Env.Type == crypto.TypeChat && r.Env.Sender == g.pub(rogue).Sign && r.Err != nil {
			refused++
		}
	}
	if refused > 0 {
		t.Errorf("the log holds %d chat entries of the rogue that the state machine refused: the host proposed them", refused)
	}
	if all, tent := g.shown(host, "orphan"); tent != all {
		t.Errorf("%d of the rogue's messages committed, want none", all-tent)
	}
}
