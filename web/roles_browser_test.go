package web

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/demes/demes/api"
	"github.com/demes/demes/web/webtest"
)

// Browser tests of membership: what an admin may do from the UI, what a
// member who is not one is shown instead, and the reasons the page gives
// when the node refuses.

// memberRow is the CSS selector of n's row in the members list.
func memberRow(n *fakeNode) string {
	return `#member-list [data-public-id="` + n.pub.String() + `"]`
}

// count is the number of elements that match sel.
func count(p *webtest.Page, sel string) int {
	return webtest.Eval[int](p, fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(sel)))
}

// confirm waits for the confirm dialog to ask something containing want,
// and presses its OK button.
func confirm(p *webtest.Page, want string) {
	p.T.Helper()
	p.WaitVisible("#confirm-dialog")
	p.WaitText("#confirm-text", want)
	p.Click("#confirm-ok")
}

func waitDialogClosed(p *webtest.Page, id string) {
	p.T.Helper()
	p.WaitFor(id+" to close", `(id) => !document.getElementById(id).open`, id)
}

func TestBrowserAdminRemovesMember(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob, carol := w.node("alice"), w.node("bob"), w.node("carol")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitFor("three members", `() => document.querySelectorAll('#member-list .member').length === 3`)

	// The admin badge on alice only; Remove next to the others, not herself.
	a.WaitText(memberRow(alice)+" .badge-admin", "admin")
	if n := count(a, "#member-list .badge-admin"); n != 1 {
		t.Errorf("%d admin badges, want 1 (alice's)", n)
	}
	if n := count(a, memberRow(alice)+" .member-remove"); n != 0 {
		t.Error("alice is offered to remove herself (she leaves instead)")
	}
	a.WaitVisible(memberRow(bob) + " .member-remove")
	a.ScreenshotElement("#side-panel", "members-admin")

	// Remove carol: asked first, then gone from the list and the group.
	a.Click(memberRow(carol) + " .member-remove")
	confirm(a, "carol receives nothing new")
	waitDialogClosed(a, "confirm-dialog")
	a.WaitFor("two members", `() => document.querySelectorAll('#member-list .member').length === 2`)
	if got := strings.Join(memberIDs(t, alice, gid), ","); got != "alice+admin,bob" {
		t.Errorf("members after the removal = %s", got)
	}
	// Carol's page says who removed her, not that she left.
	c := openUI(t, startUI(t, carol, nil))
	c.WaitVisible("#banner-left")
	c.WaitText("#group-facts", "alice removed you from this group")

	// Cancel changes nothing.
	a.Click(memberRow(bob) + " .member-remove")
	a.WaitVisible("#confirm-dialog")
	a.Click("#confirm-cancel")
	waitDialogClosed(a, "confirm-dialog")

	// When the node refuses all the same (here: this page's view was out of
	// date), the dialog stays and says why, in words.
	alice.failNextOp("Remove", fmt.Errorf("remove: only admins may remove members; ask an admin, or leave the group yourself: %w", api.ErrForbidden))
	a.Click(memberRow(bob) + " .member-remove")
	confirm(a, "bob receives nothing new")
	a.WaitText("#confirm-error", "Could not remove bob. Only admins may remove members (ask an admin, or leave the group yourself).")
	if txt := webtest.Eval[string](a, `document.querySelector('#confirm-error').textContent`); strings.Contains(txt, "not allowed") {
		t.Errorf("the refusal shows the node's internals: %q", txt)
	}
	a.Screenshot("remove-refused")
	if got := strings.Join(memberIDs(t, alice, gid), ","); got != "alice+admin,bob" {
		t.Errorf("members after a refused removal = %s", got)
	}

	// Making bob admin: his badge appears.
	a.Click("#confirm-cancel")
	a.Click(memberRow(bob) + " .member-admin-toggle")
	confirm(a, "bob will be able to remove members")
	a.WaitText(memberRow(bob)+" .badge-admin", "admin")
}

func TestBrowserMemberIsToldWhy(t *testing.T) {
	w, _ := newFriends(t)
	alice, dave := w.node("alice"), w.node("dave")
	b := openUI(t, startUI(t, w.node("bob"), nil))
	a := openUI(t, startUI(t, alice, nil))
	b.WaitFor("three members", `() => document.querySelectorAll('#member-list .member').length === 3`)
	b.WaitText(memberRow(alice)+" .badge-admin", "admin")

	// No admin actions for bob, and the settings say who changes them.
	if n := count(b, "#member-list .member-actions"); n != 0 {
		t.Errorf("bob, no admin, is offered %d rows of admin actions", n)
	}
	b.WaitVisible("#settings-section")
	b.WaitText("#settings-note", "Only admins change the group’s settings.")
	if !webtest.Eval[bool](b, `document.querySelector('#setting-members-invite').disabled`) {
		t.Error("bob may flip the group's settings")
	}

	// Inviting: the form is disabled and says why.
	b.Click("#invite-button")
	b.WaitVisible("#invite-not-allowed")
	b.WaitText("#invite-not-allowed", "Only admins may invite people to this group.")
	if !webtest.Eval[bool](b, `document.querySelector('#invite-submit').disabled && document.querySelector('#invite-public-id').disabled`) {
		t.Error("the invite form is usable by a member who may not invite")
	}
	b.Screenshot("invite-not-allowed")

	// Alice lets every member invite; bob's page follows, dialog open.
	a.WaitText("#settings-note", "When this is off, only admins may invite.")
	a.Click("#setting-members-invite")
	b.WaitFor("bob's setting to show on", `() => document.querySelector('#setting-members-invite').checked`)
	b.WaitHidden("#invite-not-allowed")
	b.SetValue("#invite-public-id", dave.pub.String())
	b.SetValue("#invite-expires", "86400")
	b.Click("#invite-submit")
	b.WaitFor("an invite code", `() => document.querySelector('#invite-code').value.startsWith('DEMES-INVITE-')`)
	b.Click(`[data-close="invite-dialog"]`)

	// The open invite: at bob's as his own (he may revoke it), at alice's
	// as bob's (she is admin, so she may too).
	pending := `#pending-list [data-invitee="` + dave.pub.String() + `"]`
	b.WaitText(pending, "invited by you · expires in 24 hours")
	b.WaitVisible(pending + " .pending-revoke")
	a.WaitText(pending, "invited by bob")
	a.WaitVisible(pending + " .pending-revoke")
	a.WaitText(pending, dave.pub.Fingerprint())
}

func TestBrowserRevokeInvite(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob, dave := w.node("alice"), w.node("bob"), w.node("dave")
	a := openUI(t, startUI(t, alice, nil))
	b := openUI(t, startUI(t, bob, nil))
	a.WaitVisible("#pending-empty")

	code, err := alice.InviteFor(context.Background(), gid, dave.pub.String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pending := `#pending-list [data-invitee="` + dave.pub.String() + `"]`
	a.WaitText(pending, "invited by you · expires in 7 days")
	// Bob, neither its inviter nor an admin, sees it and may not revoke it.
	b.WaitText(pending, "invited by alice")
	if n := count(b, pending+" .pending-revoke"); n != 0 {
		t.Error("bob is offered to revoke alice's invite")
	}
	a.ScreenshotElement("#side-panel", "open-invites")

	a.Click(pending + " .pending-revoke")
	confirm(a, "stops working")
	waitDialogClosed(a, "confirm-dialog")
	a.WaitVisible("#pending-empty")
	b.WaitVisible("#pending-empty")
	if _, err := dave.Join(context.Background(), code); err == nil {
		t.Error("dave joined with a revoked invite")
	}
}

func TestBrowserLeave(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	a := openUI(t, startUI(t, alice, nil))
	b := openUI(t, startUI(t, bob, nil))
	b.WaitText("#chat-title", "friends")
	send(b, "bye all")
	waitMessage(b, "bye all", "committed", "bob")

	b.Click("#leave-button")
	confirm(b, "You keep the messages you have")
	waitDialogClosed(b, "confirm-dialog")
	b.WaitVisible("#banner-left")
	b.WaitText("#group-facts", "you left this group")
	if !webtest.Eval[bool](b, `document.querySelector('#compose').disabled && document.querySelector('#leave-button').disabled && document.querySelector('#invite-button').disabled`) {
		t.Error("compose, leave or invite stay enabled in a group this node left")
	}
	b.WaitHidden("#invites-section")
	// The history stays.
	waitMessage(b, "bye all", "committed", "bob")
	b.Screenshot("left-group")

	a.WaitFor("two members at alice's", `() => document.querySelectorAll('#member-list .member').length === 2`)
	if got := strings.Join(memberIDs(t, alice, gid), ","); got != "alice+admin,carol" {
		t.Errorf("members after bob left = %s", got)
	}
}

// TestBrowserMembersKeepStateAcrossRefresh: a status refresh (here a new
// round-trip time) does not rebuild the rows of members who did not change,
// so an open safety number stays open and a focused button keeps the focus.
func TestBrowserMembersKeepStateAcrossRefresh(t *testing.T) {
	w, _ := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitText(memberRow(bob)+" .member-facts", "online · 11 ms away")
	a.Click(memberRow(bob) + " .safety summary")
	a.WaitFor("the safety number to open", `(sel) => document.querySelector(sel).open`, memberRow(bob)+" .safety")
	webtest.Eval[bool](a, `(document.querySelector('`+memberRow(bob)+` .member-remove').focus(), true)`)

	w.setLatency(bob, 30)
	a.WaitText(memberRow(bob)+" .member-facts", "online · 33 ms away")
	if !webtest.Eval[bool](a, `document.querySelector('`+memberRow(bob)+` .safety').open`) {
		t.Error("the safety number closed when the round-trip time changed")
	}
	if !webtest.Eval[bool](a, `document.activeElement === document.querySelector('`+memberRow(bob)+` .member-remove')`) {
		t.Error("the Remove button lost the focus when the round-trip time changed")
	}
}

// TestBrowserAdminRenamesGroup: an admin renames the group from the
// settings; the header and the group list follow; a member who is not an
// admin is not offered the form.
func TestBrowserAdminRenamesGroup(t *testing.T) {
	w, _ := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitVisible("#rename-form")
	// Typed as a person does (an input event), then the person looks
	// away (the field loses the focus) while the page refreshes: what was
	// typed stays. (A refresh used to put the group's name back into a
	// field that had lost the focus.)
	webtest.Eval[bool](a, `(() => { const el = document.querySelector('#rename-name'); el.focus(); el.value = 'readers'; el.dispatchEvent(new Event('input', {bubbles: true})); el.blur(); return true; })()`)
	w.setLatency(bob, 30)
	a.WaitText(memberRow(bob)+" .member-facts", "online · 33 ms away")
	if got := webtest.Eval[string](a, `document.querySelector('#rename-name').value`); got != "readers" {
		t.Fatalf("the rename field holds %q after a refresh, want what was typed", got)
	}
	a.Click("#rename-submit")
	a.WaitText("#chat-title", "readers")
	a.WaitText("#group-list", "readers")

	b := openUI(t, startUI(t, w.node("bob"), nil))
	b.WaitText("#chat-title", "readers")
	if !webtest.Eval[bool](b, `document.querySelector('#rename-form').hidden`) {
		t.Error("bob, no admin, is offered to rename the group")
	}
}

// TestBrowserJoinedLaterNote: a member who joined after the group started
// is told why the messages before its join are not shown; the creator is
// not.
func TestBrowserJoinedLaterNote(t *testing.T) {
	w, _ := newFriends(t)
	b := openUI(t, startUI(t, w.node("bob"), nil))
	b.WaitVisible("#joined-note")
	b.WaitText("#joined-note", "Messages sent before you joined")
	a := openUI(t, startUI(t, w.node("alice"), nil))
	a.WaitFor("the status", `() => document.querySelector('#chat-title').textContent.includes('friends')`)
	if !webtest.Eval[bool](a, `document.querySelector('#joined-note').hidden`) {
		t.Error("the group's creator is told it joined later")
	}
}

// TestBrowserKeeperAndReconnect: an admin adds a keeper by its address,
// with the keeper's id to check it by, from the group's settings and is
// told it joins by itself; a member who is
// not an admin is not offered to. With no host, the page offers to point
// the device at a member (reconnect), and says how it went.
func TestBrowserKeeperAndReconnect(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitVisible("#keeper-form")
	webtest.Eval[bool](a, `(() => { const el = document.querySelector('#keeper-target'); el.value = 'http://127.0.0.1:7946'; return true; })()`)
	webtest.Eval[bool](a, `(() => { const el = document.querySelector('#keeper-id'); el.value = ' demes1keeperid '; return true; })()`)
	a.Click("#keeper-submit")
	a.WaitText("#keeper-result", "Keeper added: it joins the group by itself.")
	w.mu.Lock()
	got, gotID := alice.lastKeeper, alice.lastKeeperID
	w.mu.Unlock()
	if got != "http://127.0.0.1:7946" || gotID != "demes1keeperid" {
		t.Errorf("the node was asked to add %q with the id %q", got, gotID)
	}
	if !webtest.Eval[bool](a, `document.querySelector('#reconnect-form').hidden`) {
		t.Error("the reconnect form shows while the group has a host")
	}

	b := openUI(t, startUI(t, bob, nil))
	b.WaitText("#chat-title", "friends")
	if !webtest.Eval[bool](b, `document.querySelector('#keeper-form').hidden`) {
		t.Error("bob, no admin, is offered to add a keeper")
	}
	w.setQuorum(gid, false)
	b.WaitVisible("#reconnect-form")
	webtest.Eval[bool](b, `(() => { const el = document.querySelector('#reconnect-target'); el.value = 'http://127.0.0.1:7000'; return true; })()`)
	b.Click("#reconnect-submit")
	b.WaitText("#reconnect-result", "In step with that member")
}
