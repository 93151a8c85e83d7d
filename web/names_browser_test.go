package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/web/webtest"
)

// TestBrowserNameBidiControls: a member whose display name holds a
// right-to-left override ("\u202eecila", drawn "alice") is shown by the
// letters it has, with no control left in the page to reorder the name,
// or what follows it on the line, into another.
func TestBrowserNameBidiControls(t *testing.T) {
	w, gid := newFriends(t)
	zed := w.joinAs(t, gid, "zed", "\u202eecila")
	zed.Send(context.Background(), gid, "hello from zed", time.Second)

	p := openUI(t, startUI(t, w.node("alice"), nil))
	waitMessage(p, "hello from zed", "committed", "ecila")
	p.WaitFor("zed in the member list", `() => [...document.querySelectorAll('#member-list .member-name')].some((e) => e.textContent === 'ecila')`)
	for _, sel := range []string{"#message-list", "#member-list"} {
		if txt := webtest.Eval[string](p, `document.querySelector('`+sel+`').textContent`); strings.ContainsAny(txt, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069") {
			t.Errorf("%s holds a bidirectional control: %q", sel, txt)
		}
	}
}

// TestBrowserSharedNamesLabelled: beyond a message's author and the member
// list, every line that names a member whose name the node flags as
// shared (bob, and zed who joined as "Bob ") has the whole fingerprint
// after it: the reply button and the quote of a reply, "Replying to", the
// read receipts, an admin's confirmation to remove the member, and the
// network picture, so that an impostor's "Bob " reads apart from bob.
func TestBrowserSharedNamesLabelled(t *testing.T) {
	w, gid := newFriends(t)
	ctx := context.Background()
	bob := w.node("bob")
	zed := w.joinAs(t, gid, "zed", "Bob ")
	bobFP, zedFP := bob.pub.Fingerprint(), zed.pub.Fingerprint()
	if _, err := zed.Send(ctx, gid, "another bob", time.Second); err != nil {
		t.Fatal(err)
	}

	p := openUI(t, startUI(t, w.node("alice"), nil))
	p.WaitText("#chat-title", "friends")
	id := messageID(p, "another bob")
	zedLabel := "Bob  (" + zedFP + ")"
	p.Click(msgSel(id, `button[aria-label="Reply to `+zedLabel+`"]`))
	p.WaitText("#draft-text", "Replying to "+zedLabel+": another bob")
	send(p, "which bob are you?")
	reply := messageID(p, "which bob are you?")
	p.WaitText(msgSel(reply, ".msg-quote"), "Reply to "+zedLabel+": another bob")

	// Bob and zed read it.
	for _, n := range []*fakeNode{bob, zed} {
		if _, err := n.MarkRead(ctx, gid, reply); err != nil {
			t.Fatal(err)
		}
	}
	p.WaitText(newestReceipt, "Read by bob ("+bobFP+") and "+zedLabel)

	// Alice, an admin, is asked to confirm zed's removal by name and
	// fingerprint.
	p.Click(memberRow(zed) + " .member-remove")
	p.WaitVisible("#confirm-dialog")
	if got := webtest.Eval[string](p, `document.querySelector('#confirm-title').textContent + ' ' + document.querySelector('#confirm-text').textContent`); strings.Count(got, zedFP) != 2 {
		t.Errorf("the confirmation reads %q, want zed's fingerprint after each of his names", got)
	}
	p.Click("#confirm-cancel")

	// The network picture: its names, and their titles.
	p.Click("#group-details summary")
	p.WaitVisible("#network svg")
	for _, n := range []*fakeNode{bob, zed} {
		fp := n.pub.Fingerprint()
		node := `#network g[data-public-id="` + n.pub.String() + `"]`
		if got := webtest.Eval[string](p, `document.querySelector('`+node+` title').textContent`); !strings.Contains(got, fp) {
			t.Errorf("the network's title of %s is %q, without the fingerprint %s", n.name, got, fp)
		}
		if got := webtest.Eval[string](p, `document.querySelector('`+node+`').textContent`); !strings.Contains(got, fp) {
			t.Errorf("the network shows %s as %q, without the fingerprint %s", n.name, got, fp)
		}
	}
	alice := `#network g[data-public-id="` + w.node("alice").pub.String() + `"]`
	if got := webtest.Eval[string](p, `document.querySelector('`+alice+`').textContent`); strings.Contains(got, "(") && !strings.Contains(got, "(you)") {
		t.Errorf("the network shows alice, whose name is her own, as %q", got)
	}
}

// TestBrowserReformSharedName: the fork banner's button names the member
// the group would go on without as the member list does: when zed, who
// joined as "Bob ", is the host that forked it, "Continue without" shows
// his fingerprint, not a name that reads as bob's.
func TestBrowserReformSharedName(t *testing.T) {
	w, gid := newFriends(t)
	alice := w.node("alice")
	zed := w.joinAs(t, gid, "zed", "Bob ")
	w.setAlerts(gid, alice, &api.ForkAlert{Index: 16, Host: zed.pub.String(), Peer: w.node("carol").pub.String(), Message: "a fork"}, nil)

	p := openUI(t, startUI(t, alice, nil))
	p.WaitVisible("#banner-fork")
	want := "Continue without Bob  (" + zed.pub.Fingerprint() + ")"
	p.WaitFor("the button to name zed by name and fingerprint", `(want) => document.querySelector('#reform-button').textContent === want`, want)
}

// TestBrowserSharedNameHost: zed, who joined as "Bob ", hosts the group:
// the line above the member list and the details panel (its host, its
// voters, the paths to the others) name him with his fingerprint.
func TestBrowserSharedNameHost(t *testing.T) {
	w, gid := newFriends(t)
	alice := w.node("alice")
	zed := w.joinAs(t, gid, "zed", "Bob ")
	w.mu.Lock()
	g := w.groups[gid]
	for i, m := range g.members {
		if m == zed {
			// The fake's host is its first member.
			g.members[0], g.members[i] = zed, g.members[0]
		}
	}
	w.mu.Unlock()
	w.setPath(alice, zed, "relayed")
	label := "Bob  (" + zed.pub.Fingerprint() + ")"

	p := openUI(t, startUI(t, alice, nil))
	p.WaitFor("the line above the members to name zed as host", `(want) => document.querySelector('#group-facts').textContent.includes(want)`, "host: "+label)
	p.Click("#group-details summary")
	p.WaitFor("the details to name zed as host", `(want) => document.querySelector('#group-raft').textContent.includes(want)`, "Host (raft leader)"+label)
	facts := webtest.Eval[string](p, `document.querySelector('#group-raft').textContent`)
	if !strings.Contains(facts, "through a relay: "+label) {
		t.Errorf("the paths do not name zed as %q: %q", label, facts)
	}
	if n := strings.Count(facts, zed.pub.Fingerprint()); n < 3 {
		t.Errorf("the details name zed with his fingerprint %d times, want 3 (host, voter or learner, path): %q", n, facts)
	}
}
