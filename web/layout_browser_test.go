package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/demes/demes/web/webtest"
)

// Browser tests of the layout: a phone held upright (390x844, touch) and a
// laptop (1280x800). The screenshots of both go to docs/img with
// DEMES_SCREENSHOTS=1.

// fillChat has bob and carol write enough for the message list to scroll.
func fillChat(t *testing.T, w *fakeWorld, gid string, n int) {
	t.Helper()
	for k := range n {
		from := w.node("bob")
		text := fmt.Sprintf("Message %d: shall we walk up the hill on Saturday?", k+1)
		if k%3 == 1 {
			from = w.node("carol")
			text = fmt.Sprintf("Reply %d: yes, if it does not rain.", k+1)
		}
		if _, err := from.Send(context.Background(), gid, text, time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// inViewport is true when the element's box lies inside the viewport.
const inViewport = `(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
	return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth; }`

// pageScrolls is true when the page itself (not an element in it) can
// scroll, either way.
const pageScrolls = `(() => { const e = document.scrollingElement;
	return e.scrollHeight > window.innerHeight + 1 || e.scrollWidth > window.innerWidth + 1; })()`

// smallTargets lists the visible controls outside closed drawers that are
// less than 44 px in either direction.
const smallTargets = `Array.from(document.querySelectorAll('button, select, summary, input, textarea, .toggle'))
	.filter((e) => e.getClientRects().length > 0 && !e.closest('.visually-hidden') && !(e.matches('input[type=checkbox]') && e.closest('.toggle')))
	.map((e) => [e, e.getBoundingClientRect()])
	.filter(([e, r]) => r.height < 43.5 || r.width < 43.5)
	.map(([e, r]) => (e.id || e.className || e.tagName) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))`

func TestBrowserPhoneLayout(t *testing.T) {
	w, gid := newFriends(t)
	bob := w.node("bob")
	walks, err := bob.CreateGroup(context.Background(), "walks")
	if err != nil {
		t.Fatal(err)
	}
	fillChat(t, w, gid, 24)
	u := startUI(t, bob, bob) // demo mode: "Stop my node" must not crowd the screen either
	p := shared.NewPage(t, pageTimeout)
	p.Viewport(390, 844)
	p.Touch()
	p.Navigate(u.PageURL())
	p.WaitText("#node-state", "online")
	p.WaitText("#chat-title", "friends")
	p.WaitFor("the messages", `() => document.querySelectorAll('#message-list .msg').length === 24`)

	// The conversation first: the send box in view, no group list, no
	// page that scrolls around a list that scrolls.
	for _, sel := range []string{"#compose", "#send-button", "#chat-title", "#groups-toggle", "#members-toggle"} {
		if !webtest.Eval[bool](p, `(`+inViewport+`)(`+jsString(sel)+`)`) {
			t.Errorf("%s is not fully in view at 390x844", sel)
		}
	}
	for _, sel := range []string{"#groups-panel", "#side-panel", "#demo-toggle"} {
		if webtest.Eval[bool](p, `document.querySelector(`+jsString(sel)+`).getClientRects().length > 0`) {
			t.Errorf("%s shows on the phone's first screen", sel)
		}
	}
	if webtest.Eval[bool](p, pageScrolls) {
		t.Error("the page itself scrolls on a phone")
	}
	if !webtest.Eval[bool](p, `(() => { const l = document.querySelector('#message-list'); return l.scrollHeight > l.clientHeight; })()`) {
		t.Error("the message list does not scroll its 24 messages")
	}
	if small := webtest.Eval[[]string](p, smallTargets); len(small) > 0 {
		t.Errorf("tap targets under 44 px: %v", small)
	}
	p.ScreenshotDocs("phone")

	// On a touch keyboard Enter starts a new line; the Send button sends.
	p.SendKeys("#compose", "first line\nsecond line")
	if v := webtest.Eval[string](p, `document.querySelector('#compose').value`); v != "first line\nsecond line" {
		t.Errorf("the send box holds %q after Enter on a touch keyboard, want two lines", v)
	}
	if n := count(p, "#message-list .msg"); n != 24 {
		t.Errorf("the list has %d messages after Enter on a touch keyboard, want the 24 from before", n)
	}
	p.Click("#send-button")
	waitMessage(p, "first line\nsecond line", "committed", "bob")

	// The groups are a drawer: it opens from its button, holds the focus,
	// closes with Escape, and picking a group closes it too.
	p.Click("#groups-toggle")
	p.WaitVisible("#groups-panel")
	p.WaitVisible(`#group-list [data-group-id="` + walks.GroupID + `"]`)
	if !webtest.Eval[bool](p, `document.querySelector('#groups-toggle').getAttribute('aria-expanded') === 'true' &&
		document.querySelector('#groups-panel').contains(document.activeElement) && document.querySelector('#chat-panel').inert`) {
		t.Error("the open drawer does not hold the focus (expanded state, focus inside, the rest inert)")
	}
	if small := webtest.Eval[[]string](p, smallTargets); len(small) > 0 {
		t.Errorf("tap targets under 44 px in the groups drawer: %v", small)
	}
	p.ScreenshotDocs("phone-groups")
	p.Do("press Escape", chromedp.KeyEvent("\x1b"))
	p.WaitHidden("#groups-panel")
	p.WaitFor("the focus back on the button", `() => document.activeElement === document.querySelector('#groups-toggle')`)
	p.Click("#groups-toggle")
	p.Click(`#group-list [data-group-id="` + walks.GroupID + `"]`)
	p.WaitHidden("#groups-panel")
	p.WaitText("#chat-title", "walks")

	// So are the members.
	p.Click("#members-toggle")
	p.WaitVisible("#side-panel")
	p.WaitVisible("#member-list .member")
	p.Click("#side-panel [data-drawer-close]")
	p.WaitHidden("#side-panel")
}

func TestBrowserDesktopLayout(t *testing.T) {
	w, gid := newFriends(t)
	fillChat(t, w, gid, 12)
	u := startUI(t, w.node("alice"), nil)
	p := shared.NewPage(t, pageTimeout)
	p.Viewport(1280, 800)
	p.Navigate(u.PageURL())
	p.WaitText("#node-state", "online")
	p.WaitFor("the messages", `() => document.querySelectorAll('#message-list .msg').length === 12`)
	send(p, "Saturday it is. I will bring the map.")
	waitMessage(p, "Saturday it is. I will bring the map.", "committed", "alice")
	p.WaitVisible("#member-list .member")

	// Three columns, all in view; no drawer buttons; Enter sends (above).
	for _, sel := range []string{"#groups-panel", "#side-panel", "#compose", "#identity-button"} {
		if !webtest.Eval[bool](p, `(`+inViewport+`)(`+jsString(sel)+`)`) {
			t.Errorf("%s is not fully in view at 1280x800", sel)
		}
	}
	for _, sel := range []string{"#groups-toggle", "#members-toggle"} {
		if webtest.Eval[bool](p, `document.querySelector(`+jsString(sel)+`).getClientRects().length > 0`) {
			t.Errorf("%s shows on a wide screen", sel)
		}
	}
	if webtest.Eval[bool](p, pageScrolls) {
		t.Error("the page itself scrolls at 1280x800")
	}
	p.ScreenshotDocs("desktop")
}
