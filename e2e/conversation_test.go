package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// notifySpy records the desktop notifications a page makes (passing them
// on to the real Notification) and lets the test hide the tab, as
// switching to another tab would.
const notifySpy = `(() => {
	window.spy = { shown: [], hidden: false };
	const Real = window.Notification;
	class Spy extends Real {
		constructor(title, opts) { super(title, opts); window.spy.shown.push({ title, body: (opts && opts.body) || '' }); }
		static get permission() { return Real.permission; }
		static requestPermission() { return Real.requestPermission(); }
	}
	window.Notification = Spy;
	Object.defineProperty(Document.prototype, 'hidden', { get: () => window.spy.hidden, configurable: true });
	Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (window.spy.hidden ? 'hidden' : 'visible'), configurable: true });
	window.spyHide = (hidden) => { window.spy.hidden = hidden; document.dispatchEvent(new Event('visibilitychange')); return true; };
})()`

// e2eMsg is the CSS selector of something in the list item of message id.
func e2eMsg(id, inner string) string {
	return fmt.Sprintf(`#message-list li[data-id=%q] %s`, id, inner)
}

// e2eMessageID waits until p lists a committed message with text, and
// returns its id.
func e2eMessageID(p *webtest.Page, text string) string {
	p.T.Helper()
	e2eWaitMessage(p, text, "committed", "")
	return webtest.Eval[string](p, `Array.from(document.querySelectorAll('#message-list .msg')).find((li) =>
		li.querySelector('.msg-text').textContent === `+jsonString(text)+`).dataset.id`)
}

// TestE2EConversation: the conversation features on three real nodes, in
// the browser. Bob, on a phone-sized page (390x844, touch), replies to
// alice's message (the reply quotes it on every side) and reacts to it;
// carol's reaction, sent through her node, shows on alice's page; alice
// edits her message and then deletes it, and every page follows; bob
// searches the group and finds his reply. Carol turned notifications on in
// her page: with her tab hidden, bob's message shows as a desktop
// notification. When carol's node stops answering (its UI listener closes,
// as a killed demes serve's would), her page says so and will not send.
// Nothing here goes through a test double: each page talks to its own
// demes node, and the nodes to each other over HTTP on loopback.
func TestE2EConversation(t *testing.T) {
	b := webtest.NewBrowser(t) // skips without a browser, unless $CI is set
	alice, bob, carol, g := e2eThree(t, "picnic")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e2ePage(t, b, alice)
	bp := b.NewPage(t, e2ePageTimeout)
	bp.Step = e2eStep
	bp.Viewport(390, 844)
	bp.Touch()
	bp.Navigate(bob.pageURL())
	bp.WaitText("#node-state", "online")
	a.WaitText("#chat-title", "picnic")
	bp.WaitText("#chat-title", "picnic")
	cp := b.NewPage(t, e2ePageTimeout)
	cp.Step = e2eStep
	cp.BeforeLoad(notifySpy)
	cp.Grant(carol.ui, "notifications", "granted")
	cp.Navigate(carol.pageURL())
	cp.WaitText("#node-state", "online")
	cp.WaitText("#chat-title", "picnic")
	cp.WaitText("#notify-button", "Turn on notifications")
	cp.Click("#notify-button")
	cp.WaitText("#notify-button", "Turn off notifications")

	e2eSend(a, "picnic at noon?")
	id := e2eMessageID(bp, "picnic at noon?")

	// Bob replies: the draft quotes alice, and so does the reply, on both
	// pages.
	bp.Click(e2eMsg(id, `button[aria-label="Reply to alice"]`))
	bp.WaitText("#draft-text", "Replying to alice: picnic at noon?")
	bp.SendKeys("#compose", "yes, I bring the blanket")
	bp.Click("#send-button") // on touch, Enter makes a new line
	reply := e2eMessageID(a, "yes, I bring the blanket")
	a.WaitText(e2eMsg(reply, ".msg-quote"), "Reply to you: picnic at noon?")
	bp.WaitText(e2eMsg(reply, ".msg-quote"), "Reply to alice: picnic at noon?")

	// Reactions: bob's from his page, carol's through her node.
	bp.Click(e2eMsg(id, `button[aria-label="React to this message"]`))
	bp.Click(e2eMsg(id, `button[aria-label="React with 🎉"]`))
	a.WaitText(e2eMsg(id, ".msg-reactions"), "🎉 1")
	if _, err := carol.svc.Send(ctx, g.GroupID, "count me in", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cid := e2eMessageID(a, "count me in")
	bp.Click(e2eMsg(cid, `button[aria-label="React to this message"]`))
	bp.Click(e2eMsg(cid, `button[aria-label="React with 👍"]`))
	a.WaitText(e2eMsg(cid, ".msg-reactions"), "👍 1")

	// Alice edits her message, then deletes it; every page follows, and
	// the reply's quote says so.
	a.Click(e2eMsg(id, `button[aria-label="Edit your message"]`))
	a.WaitText("#draft-text", "Editing your message")
	webtest.Eval[string](a, "document.querySelector('#compose').value = ''")
	e2eSend(a, "picnic at one?")
	e2eWaitMessage(bp, "picnic at one?", "committed", "alice")
	bp.WaitText(e2eMsg(id, ".msg-edited"), "edited")
	bp.WaitText(e2eMsg(reply, ".msg-quote"), "Reply to alice: picnic at one?")
	a.Click(e2eMsg(id, `button[aria-label="Delete your message"]`))
	a.WaitText(e2eMsg(id, ".msg-confirm"), "Delete this message for everyone?")
	a.Click(e2eMsg(id, `button[aria-label="Yes, delete it"]`))
	for _, p := range []*webtest.Page{a, bp} {
		p.WaitText(e2eMsg(id, ".msg-text"), "Message deleted")
		p.WaitText(e2eMsg(reply, ".msg-quote"), "message deleted")
	}

	// Bob searches the group from his phone: his node decrypts and finds
	// the reply, and the deleted message is not found.
	webtest.Eval[bool](bp, `(() => { document.querySelector('#search-text').value = 'BLANKET'; return true; })()`)
	bp.Click("#search-submit")
	bp.WaitText("#search-summary", "1 message with “BLANKET”, newest first.")
	bp.WaitText("#search-list .msg-text", "yes, I bring the blanket")
	webtest.Eval[bool](bp, `(() => { document.querySelector('#search-text').value = 'picnic at'; return true; })()`)
	bp.Click("#search-submit")
	bp.WaitText("#search-summary", "No message holds “picnic at”.")

	// Carol's tab is hidden; bob's message becomes a notification.
	cp.WaitFor("carol's tab hidden", `() => window.spyHide(true)`)
	bp.SendKeys("#compose", "see you there")
	bp.Click("#send-button")
	cp.WaitFor("a notification of bob's message", `() => window.spy.shown.some((n) => n.body.includes('see you there'))`)
	cp.WaitFor("carol's tab shown", `() => window.spyHide(false)`)

	// Carol's node stops answering her page.
	carol.closeUI()
	cp.WaitVisible("#banner-conn")
	cp.WaitText("#banner-conn", "Your DeMeS node is not answering, so you cannot send.")
	cp.WaitFor("the send box disabled", `() => document.querySelector('#compose').disabled`)
}
