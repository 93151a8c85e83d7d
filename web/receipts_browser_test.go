package web

import (
	"context"
	"testing"
	"time"
)

// hideSpy lets a test hide the tab (document.hidden), as switching to
// another tab would.
const hideSpy = `(() => {
	window.hiddenNow = false;
	Object.defineProperty(Document.prototype, 'hidden', { get: () => window.hiddenNow, configurable: true });
	Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (window.hiddenNow ? 'hidden' : 'visible'), configurable: true });
	window.hide = (hidden) => { window.hiddenNow = hidden; document.dispatchEvent(new Event('visibilitychange')); return true; };
})()`

// newestMine is the receipt line under the newest message of the page's own.
const newestReceipt = `#message-list .msg.mine:last-of-type .msg-receipt`

// TestBrowserReceipts: the author sees its message delivered (a double
// check) and who read it, in words under its newest message; a member's
// page marks the group read only while the person can see it; a person
// who turns read receipts off in the page no longer sees anyone's.
func TestBrowserReceipts(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob, carol := w.node("alice"), w.node("bob"), w.node("carol")
	ctx := context.Background()

	// Bob's tab is open on the group, but hidden.
	ub := startUI(t, bob, nil)
	b := shared.NewPage(t, pageTimeout)
	b.BeforeLoad(hideSpy)
	b.Navigate(ub.PageURL())
	b.WaitText("#node-state", "online")
	b.WaitText("#chat-title", "friends")
	b.WaitFor("the tab hidden", `() => window.hide(true)`)

	a := openUI(t, startUI(t, alice, nil))
	a.WaitText("#chat-title", "friends")
	m, err := alice.Send(ctx, gid, "anyone there?", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Every member's device holds it: two checks, and "Delivered".
	a.WaitText(newestReceipt, "Delivered")
	a.WaitFor("a double check saying delivered to both", `() => {
		const i = document.querySelector('#message-list .msg.mine:last-of-type .msg-state .icon-checks');
		return !!i && i.getAttribute('aria-label').includes('Delivered to all 2 members');
	}`)
	b.WaitFor("bob's page to hold the message", `(text) => Array.from(document.querySelectorAll('#message-list .msg-text')).some((e) => e.textContent === text)`, "anyone there?")
	if got := w.readThrough(gid, bob); got != 0 {
		t.Fatalf("bob's hidden tab marked the group read through %d", got)
	}

	// Bob looks: his page marks it read, and alice sees it.
	b.WaitFor("the tab shown", `() => window.hide(false)`)
	a.WaitText(newestReceipt, "Read by bob")
	if got := w.readThrough(gid, bob); got != m.Index {
		t.Fatalf("bob's mark is %d, want %d", got, m.Index)
	}
	c := openUI(t, startUI(t, carol, nil))
	c.WaitText("#chat-title", "friends")
	a.WaitText(newestReceipt, "Read by everyone")
	a.WaitFor("the sign to say so", `() => document.querySelector('#message-list .msg.mine:last-of-type .msg-state .icon').getAttribute('aria-label').includes('read by everyone')`)

	// Alice turns read receipts off: she sees nobody's any more.
	a.WaitFor("the toggle on", `() => document.querySelector('#receipts-toggle').checked`)
	a.Click("#receipts-toggle")
	a.WaitText("#receipts-note", "you do not see theirs")
	a.WaitText(newestReceipt, "Delivered")
	if alice.ReadReceipts() {
		t.Fatal("the node still shares alice's read receipts")
	}
}
