package web

import (
	"testing"

	"github.com/demes/demes/api"
	"github.com/demes/demes/web/webtest"
)

// TestBrowserKeysAlert: what a node that lost its keys for a group says
// (it waits for new keys, then reads again from a point in the log) is
// shown above the conversation in the node's words, as text, and goes
// when the node no longer says it.
func TestBrowserKeysAlert(t *testing.T) {
	w, gid := newFriends(t)
	alice := w.node("alice")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitFor("the send box", `() => !document.querySelector('#compose').disabled`)
	if !webtest.Eval[bool](a, `document.querySelector('#banner-keys').hidden`) {
		t.Fatal("the keys alert shows for a node that has its keys")
	}

	w.setKeysAlert(gid, alice, &api.KeysAlert{
		Message: "Your device was restored from a backup, which holds no keys for this group: it asked the members for new ones, and reads new messages once they come."})
	a.WaitVisible("#banner-keys")
	a.WaitText("#banner-keys-text", "restored from a backup, which holds no keys for this group: it asked the members for new ones")
	if role := webtest.Eval[string](a, `document.querySelector('#banner-keys').getAttribute('role')`); role != "status" {
		t.Errorf("the keys alert has role %q, want status (a screen reader hears it without losing its place)", role)
	}
	if webtest.Eval[bool](a, `document.querySelector('#compose').disabled`) {
		t.Error("a lost key store disables sending")
	}
	a.Screenshot("keys-alert")

	w.setKeysAlert(gid, alice, &api.KeysAlert{RenewedAt: 42,
		Message: "Your device has new keys for this group: it reads the messages from entry 42 <b>on</b>."})
	a.WaitText("#banner-keys-text", "it reads the messages from entry 42 <b>on</b>.")
	if n := count(a, "#banner-keys b"); n != 0 {
		t.Error("the alert's text was taken as markup")
	}
	if webtest.Eval[bool](a, `document.querySelector('#banner-keys-text').textContent.includes('backup')`) {
		t.Error("the banner keeps the node's old words beside the new")
	}

	w.setKeysAlert(gid, alice, nil)
	a.WaitHidden("#banner-keys")

	// Behind a fork, the fork's banner says what matters.
	w.setKeysAlert(gid, alice, &api.KeysAlert{Message: "Your device lost its keys for this group."})
	a.WaitVisible("#banner-keys")
	w.setAlerts(gid, alice, &api.ForkAlert{Index: 16, Message: "bob (the host) showed you and carol different histories of this group."}, nil)
	a.WaitVisible("#banner-fork")
	a.WaitHidden("#banner-keys")
}

// TestBrowserRestoredAlert: while the node says its copy of the group was
// restored from a backup and is catching up (it takes no part in choosing
// a host until then), the page says so above the conversation in the
// node's words, as text, and sending stays open; the banner goes once the
// node no longer says it, and gives way to a fork's.
func TestBrowserRestoredAlert(t *testing.T) {
	w, gid := newFriends(t)
	alice := w.node("alice")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitFor("the send box", `() => !document.querySelector('#compose').disabled`)
	if !webtest.Eval[bool](a, `document.querySelector('#banner-restored').hidden`) {
		t.Fatal("the restored alert shows for a node that was not restored")
	}

	w.setRestored(gid, alice, "this node's copy of the group was restored from a backup: it votes for no new host (but the one it follows) and asks for no vote until it has caught up with a host")
	a.WaitVisible("#banner-restored")
	a.WaitText("#banner-restored-text", "This node's copy of the group was restored from a backup: it votes for no new host")
	if role := webtest.Eval[string](a, `document.querySelector('#banner-restored').getAttribute('role')`); role != "status" {
		t.Errorf("the restored alert has role %q, want status", role)
	}
	if webtest.Eval[bool](a, `document.querySelector('#compose').disabled`) {
		t.Error("a restored copy disables sending")
	}
	a.Screenshot("restored-alert")

	w.setRestored(gid, alice, "restored, and a member it does not know <b>sent</b> the group's traffic")
	a.WaitText("#banner-restored-text", "Restored, and a member it does not know <b>sent</b> the group's traffic.")
	if n := count(a, "#banner-restored b"); n != 0 {
		t.Error("the node's words were taken as markup")
	}

	w.setRestored(gid, alice, "")
	a.WaitHidden("#banner-restored")

	w.setRestored(gid, alice, "restored")
	a.WaitVisible("#banner-restored")
	w.setAlerts(gid, alice, &api.ForkAlert{Index: 16, Message: "bob (the host) showed you and carol different histories of this group."}, nil)
	a.WaitVisible("#banner-fork")
	a.WaitHidden("#banner-restored")
}

// TestBrowserForwardSecrecy: the members list says, in words, whether new
// keys are sealed to every member's prekey (forward secrecy) or who has
// not published one yet; it says nothing when the node does not tell.
func TestBrowserForwardSecrecy(t *testing.T) {
	w, gid := newFriends(t)
	alice := w.node("alice")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitText("#group-facts", "3 members")
	if !webtest.Eval[bool](a, `document.querySelector('#group-secrecy').hidden`) {
		t.Fatal("the forward secrecy line shows although the node says nothing of it")
	}

	w.setPrekeys(gid, false, "bob", "carol")
	a.WaitVisible("#group-secrecy")
	a.WaitText("#group-secrecy", "Forward secrecy: not yet — waiting for bob, carol to publish a key")

	w.setPrekeys(gid, false, "carol")
	a.WaitText("#group-secrecy", "Forward secrecy: not yet — waiting for carol to publish a key")

	w.setPrekeys(gid, true)
	a.WaitFor("forward secrecy on", `() => document.querySelector('#group-secrecy').textContent === 'Forward secrecy: on'`)
	a.WaitVisible("#group-secrecy")

	w.setPrekeys(gid, false)
	a.WaitHidden("#group-secrecy")
}
