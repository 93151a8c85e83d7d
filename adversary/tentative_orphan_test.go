package adversary

import (
	"net/http"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

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
	g := newGroup(t, 3, options{})
	g.form(0, 1, 2)
	const rogue, host = 2, 0 // the host follows join order here
	if _, err := g.node(rogue).Send(ctxT(t, 30*time.Second), g.id, "rogue's first", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	epoch := g.epochOf(rogue)
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
