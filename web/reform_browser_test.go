package web

import (
	"testing"

	"github.com/demes/demes/api"
	"github.com/demes/demes/web/webtest"
)

// TestBrowserReform: the fork banner carries the one action that continues
// the group without the host that forked it. Alice's starts the successor
// and opens it (its banner says what it continues, and it takes messages
// again); carol's, once alice's successor is offered to her, joins it with
// the same button.
func TestBrowserReform(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob, carol := w.node("alice"), w.node("bob"), w.node("carol")
	fork := &api.ForkAlert{Index: 16, Host: bob.pub.String(), Peer: carol.pub.String(),
		Message: "bob (the host) showed you and carol different histories of this group (they differ by entry 16)."}
	w.setAlerts(gid, alice, fork, nil)
	w.setAlerts(gid, carol, &api.ForkAlert{Index: 16, Host: bob.pub.String(), Peer: alice.pub.String(), Message: "bob (the host) showed you and alice different histories."}, nil)

	a := openUI(t, startUI(t, alice, nil))
	a.WaitVisible("#banner-fork")
	a.WaitText("#reform-button", "Continue without bob")
	a.Screenshot("reform-banner")
	a.Click("#reform-button")
	a.WaitVisible("#banner-continues")
	a.WaitText("#banner-continues-text", `Continued from "friends" without bob`)
	a.WaitFor("the send box to open in the successor", `() => !document.querySelector('#compose').disabled`)
	if !webtest.Eval[bool](a, `document.querySelector('#banner-fork').hidden`) {
		t.Error("the fork banner shows in the successor")
	}
	a.Screenshot("reform-successor")

	c := openUI(t, startUI(t, carol, nil))
	c.WaitVisible("#banner-fork")
	c.WaitText("#reform-button", "Join the group alice continues it in, without bob")
	c.Click("#reform-button")
	c.WaitText("#banner-continues-text", "without bob")
	c.WaitFor("the send box to open in the successor", `() => !document.querySelector('#compose').disabled`)
	st := carol.Status()
	for _, g := range st.Groups {
		if g.Continues != nil {
			for _, m := range g.Members {
				if m.Name == "bob" {
					t.Error("bob is a member of the successor")
				}
			}
			if len(g.Members) != 2 {
				t.Errorf("the successor has %d members, want alice and carol", len(g.Members))
			}
		}
	}
}
