package web

import (
	"testing"

	"github.com/demes/demes/api"
	"github.com/demes/demes/web/webtest"
)

// TestBrowserForkAndCensorshipAlerts: what the node says of a host that
// holds back this member's messages, and of a fork, is shown above the
// conversation in the node's words (as text, never markup); a halted group
// takes no more messages.
func TestBrowserForkAndCensorshipAlerts(t *testing.T) {
	w, gid := newFriends(t)
	alice := w.node("alice")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitFor("the send box", `() => !document.querySelector('#compose').disabled`)
	if !webtest.Eval[bool](a, `document.querySelector('#banner-fork').hidden && document.querySelector('#banner-censor').hidden`) {
		t.Fatal("an alert shows in a healthy group")
	}

	w.setAlerts(gid, alice, nil, &api.CensorAlert{Host: w.node("bob").pub.String(), Voters: 1, Needed: 2,
		Message: "bob (the host) has not put your messages in the group's order for 7s <b>while</b> it did other members'."})
	a.WaitVisible("#banner-censor")
	a.WaitText("#banner-censor-text", "has not put your messages in the group's order for 7s <b>while</b>")
	if n := count(a, "#banner-censor b"); n != 0 {
		t.Error("the alert's text was taken as markup")
	}
	if webtest.Eval[bool](a, `document.querySelector('#compose').disabled`) {
		t.Error("a suspicion of censorship disables sending (messages still go out, and may reach another host)")
	}

	w.setAlerts(gid, alice, &api.ForkAlert{Index: 16, Message: "bob (the host) showed you and carol different histories of this group (they differ by entry 16)."}, nil)
	a.WaitVisible("#banner-fork")
	a.WaitText("#banner-fork-text", "showed you and carol different histories")
	a.WaitFor("the send box to close", `() => document.querySelector('#compose').disabled && document.querySelector('#send-button').disabled`)
	if !webtest.Eval[bool](a, `document.querySelector('#banner-censor').hidden`) {
		t.Error("the censorship banner shows beside the fork")
	}
	a.Screenshot("fork-alert")
}
