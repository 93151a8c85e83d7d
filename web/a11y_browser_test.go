package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// Browser tests of accessibility (WCAG 2.1 AA): contrast in the light and
// the dark scheme, measured on the rendered page; one screen-reader
// announcement per new message; a keyboard path for every action.

// contrastAudit measures the page under root (a CSS selector) as rendered:
// every visible piece of text against what it sits on (4.5:1, or 3:1 for
// large text), and the graphics a person needs to see a control or a
// state (field and button borders, status dots, message signs, the focus
// ring, placeholders) at 3:1 (placeholders 4.5:1). Disabled controls are
// exempt, as WCAG has it. It returns what it checked, by kind, and each
// failure.
const contrastAudit = `(root) => {
	const parse = (c) => {
		const m = /rgba?\(([^)]+)\)/.exec(c || '');
		if (!m) return null;
		const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
		return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
	};
	const over = (top, bottom) => ({
		r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
		b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
	const lum = (c) => {
		const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
	};
	const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
	// The background an element is painted on: its own and its ancestors'
	// backgrounds, composed from the page's up.
	const bgOf = (e) => {
		const layers = [];
		for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
			const c = parse(getComputedStyle(n).backgroundColor);
			if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
		}
		let bg = { r: 255, g: 255, b: 255, a: 1 };
		for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
		return bg;
	};
	const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility === 'visible' &&
		!e.closest('.visually-hidden') && !e.closest('[inert]');
	const exempt = (e) => !!e.closest(':disabled, .node-offline, .spinner');
	const checked = {};
	const problems = [];
	const name = (e) => (e.id ? '#' + e.id : e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '')) +
		' "' + (e.textContent || '').trim().slice(0, 30) + '"';
	const check = (kind, e, fg, bg, min) => {
		if (!fg || fg.a === 0) return;
		const r = ratio(over(fg, bg), bg);
		checked[kind] = (checked[kind] || 0) + 1;
		if (r < min) problems.push(kind + ': ' + name(e) + ' ' + r.toFixed(2) + ':1, want ' + min + ':1');
	};
	const scope = document.querySelector(root);
	for (const e of scope.querySelectorAll('*')) {
		if (!visible(e) || exempt(e)) continue;
		const cs = getComputedStyle(e);
		const own = Array.from(e.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
		if (own) {
			const size = parseFloat(cs.fontSize);
			const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
			if (e instanceof SVGElement) {
				// SVG text: its fill, on the circle it sits in or the panel.
				const circle = e.classList.contains('node-rank') ? e.parentElement.querySelector('circle') : null;
				const bg = circle ? over(parse(getComputedStyle(circle).fill), bgOf(e.closest('svg'))) : bgOf(e.closest('svg'));
				check('svg text', e, parse(cs.fill), bg, large ? 3 : 4.5);
			} else {
				check('text', e, parse(cs.color), bgOf(e), large ? 3 : 4.5);
			}
		}
		if (e.matches('input:not([type=checkbox]), textarea, select, button')) {
			if (parseFloat(cs.borderTopWidth) > 0) check('control border', e, parse(cs.borderTopColor), bgOf(e.parentElement), 3);
		}
		if (e.matches('input:not([type=checkbox]), textarea')) {
			check('placeholder', e, parse(getComputedStyle(e, '::placeholder').color), bgOf(e), 4.5);
		}
		if (e.matches('.dot-online')) check('status dot', e, parse(cs.backgroundColor), bgOf(e.parentElement), 3);
		if (e.matches('.dot-offline, .dot-unknown')) check('status dot', e, parse(cs.borderTopColor), bgOf(e.parentElement), 3);
		if (e.matches('.msg-state')) check('message sign', e, parse(cs.color), bgOf(e), 3);
		if (e.matches('.badge-host, .unread')) check('badge', e, parse(cs.backgroundColor), bgOf(e.parentElement), 3);
	}
	// The focus ring of a field, drawn around it.
	const field = Array.from(scope.querySelectorAll('textarea:not(:disabled), input:not([type=checkbox]):not(:disabled)')).find(visible);
	if (field) {
		field.focus();
		check('focus ring', field, parse(getComputedStyle(field).outlineColor), bgOf(field.parentElement), 3);
		field.blur();
	}
	return { checked, problems };
}`

type audit struct {
	Checked  map[string]int `json:"checked"`
	Problems []string       `json:"problems"`
}

func runContrastAudit(t *testing.T, p *webtest.Page, root, scheme string, want ...string) {
	t.Helper()
	a := webtest.Eval[audit](p, `(`+contrastAudit+`)(`+jsString(root)+`)`)
	for _, pr := range a.Problems {
		t.Errorf("%s scheme, %s: %s", scheme, root, pr)
	}
	// The audit must have seen what matters, or it proves nothing.
	for _, kind := range want {
		if a.Checked[kind] == 0 {
			t.Errorf("%s scheme, %s: the audit checked no %s (checked %v)", scheme, root, kind, a.Checked)
		}
	}
}

// TestBrowserContrast: the page with everything it shows in everyday use
// (messages of others and our own, one on its way, the unread badge, the
// host badge, banners, errors, the details panel, dialogs) meets WCAG AA
// contrast in both colour schemes.
func TestBrowserContrast(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	walks, err := bob.CreateGroup(context.Background(), "walks")
	if err != nil {
		t.Fatal(err)
	}
	w.addMember(walks.GroupID, alice)
	bob.Send(context.Background(), gid, "Hello from bob", time.Second)
	p := openUI(t, startUI(t, alice, nil))
	p.Viewport(1280, 800)
	p.WaitText("#chat-title", "friends")
	send(p, "Hello from alice")
	waitMessage(p, "Hello from alice", "committed", "alice")
	w.setQuorum(gid, false)
	p.WaitVisible("#banner-quorum")
	send(p, "On its way")
	waitMessage(p, "On its way", "tentative", "alice")
	bob.Send(context.Background(), walks.GroupID, "Unread in walks", time.Second)
	p.WaitVisible(`#group-list [data-group-id="` + walks.GroupID + `"] .unread`)
	p.Click("#group-details summary")
	p.WaitVisible("#network svg")
	p.Click(`#member-list [data-public-id="` + bob.pub.String() + `"] .safety summary`)
	audit := func(want ...string) {
		t.Helper()
		// The error and banner styles, with stand-in text where the page
		// does not show them now: only their colours are measured here
		// (each one's behaviour has its own test).
		webtest.Eval[bool](p, `(() => {
			const box = document.createElement('div');
			box.id = 'stand-ins';
			for (const [tag, cls] of [['div', 'banner banner-error'], ['div', 'banner banner-warn'], ['p', 'error'], ['p', 'notice']]) {
				const e = document.createElement(tag);
				e.className = cls;
				e.textContent = 'Could not do it. Try again.';
				box.append(e);
			}
			document.querySelector('#chat-panel').prepend(box);
			return true; })()`)
		for _, scheme := range []string{"light", "dark"} {
			p.ColorScheme(scheme)
			runContrastAudit(t, p, "body", scheme, want...)
		}
		webtest.Eval[bool](p, `(document.querySelector('#stand-ins').remove(), true)`)
	}
	// With a message on its way and no host.
	audit("text", "svg text", "control border", "placeholder", "status dot", "message sign", "badge", "focus ring")
	// With a host again.
	w.setQuorum(gid, true)
	waitMessage(p, "On its way", "committed", "alice")
	p.WaitVisible("#member-list .badge-host")
	audit("text", "badge")
	p.ScreenshotDocs("desktop-dark")

	// A dialog, with an error in it.
	p.Click("#join-button")
	p.SetValue("#join-code", "demes-invite-cut")
	p.Click("#join-submit")
	p.WaitVisible("#join-error")
	for _, scheme := range []string{"light", "dark"} {
		p.ColorScheme(scheme)
		runContrastAudit(t, p, "#join-dialog", scheme, "text", "control border", "focus ring")
	}
	p.ColorScheme("")
}

// TestBrowserAnnouncesEachMessageOnce: a screen reader hears each new
// message of someone else once, in the open group or another; our own
// messages, and messages that only change state (tentative, then committed),
// are not announced again. The message list is no live region: it is
// re-rendered as states change.
func TestBrowserAnnouncesEachMessageOnce(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	walks, err := bob.CreateGroup(context.Background(), "walks")
	if err != nil {
		t.Fatal(err)
	}
	w.addMember(walks.GroupID, alice)
	p := openUI(t, startUI(t, alice, nil))
	p.WaitText("#chat-title", "friends")

	if live := webtest.Eval[string](p, `document.querySelector('#message-list').getAttribute('aria-live') || ''`); live != "" {
		t.Errorf("the message list is a live region (aria-live=%q): re-rendered messages would be read again", live)
	}
	if !webtest.Eval[bool](p, `(() => { const a = document.querySelector('#announcer');
		return a.getAttribute('aria-live') === 'polite' && !a.closest('[aria-hidden=true], [hidden], [inert]') && getComputedStyle(a).display !== 'none'; })()`) {
		t.Fatal("no polite live region that a screen reader can hear")
	}
	webtest.Eval[bool](p, `(() => { window.announced = [];
		new MutationObserver((list) => { for (const r of list) for (const n of r.addedNodes) window.announced.push(n.textContent); })
			.observe(document.querySelector('#announcer'), { childList: true, subtree: true, characterData: true });
		return true; })()`)

	send(p, "mine, not announced")
	waitMessage(p, "mine, not announced", "committed", "alice")
	w.setQuorum(gid, false)
	send(p, "mine, tentative first")
	waitMessage(p, "mine, tentative first", "tentative", "alice")
	bob.Send(context.Background(), walks.GroupID, "over in walks", time.Second)
	w.setQuorum(gid, true)
	waitMessage(p, "mine, tentative first", "committed", "alice")
	bob.Send(context.Background(), gid, "one from bob", time.Second)
	w.node("carol").Send(context.Background(), gid, "one from carol", time.Second)
	waitMessage(p, "one from carol", "committed", "carol")
	p.WaitVisible(`#group-list [data-group-id="` + walks.GroupID + `"] .unread`)

	got := webtest.Eval[[]string](p, `window.announced`)
	want := []string{"bob in walks: over in walks", "bob: one from bob", "carol: one from carol"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("announced %q, want %q", got, want)
	}
}

// clickables lists the elements with click (or key) handlers that a
// keyboard cannot reach: every action must be a button, a link, a form
// field or a summary. The drawer's backdrop is the one exception, as
// Escape and the drawer's Close button do what a tap beside it does.
const clickables = `(() => {
	const out = [];
	for (const e of document.querySelectorAll('*')) {
		const l = getEventListeners(e);
		if (!l.click && !l.mousedown && !l.pointerdown && !l.touchstart) continue;
		if (e.matches('button, a[href], input, select, textarea, summary, #drawer-backdrop')) continue;
		out.push(e.id || e.tagName);
	}
	return out;
})()`

// unnamed lists the visible controls without an accessible name, and any
// element that takes itself out of the natural tab order.
const unnamed = `(() => {
	const out = [];
	for (const e of document.querySelectorAll('button, a[href], input, select, textarea, summary, img, svg[role=img], [role=img]')) {
		if (e.getClientRects().length === 0) continue;
		let name = e.getAttribute('aria-label') || e.getAttribute('alt') || '';
		if (!name && (e.matches('input, select, textarea'))) name = Array.from(e.labels || []).map((l) => l.textContent).join(' ');
		if (!name && e.matches('button, a, summary')) name = e.textContent;
		if (!name.trim()) out.push('no name: ' + (e.id || e.className || e.tagName));
	}
	for (const e of document.querySelectorAll('[tabindex]')) if (e.tabIndex > 0) out.push('tabindex > 0: ' + (e.id || e.tagName));
	return out;
})()`

// TestBrowserKeyboardAndNames: every action is a control a keyboard
// reaches, and every control has a name a screen reader can say.
func TestBrowserKeyboardAndNames(t *testing.T) {
	w, _ := newFriends(t)
	alice := w.node("alice")
	u := startUI(t, alice, alice)
	p := openUI(t, u)
	p.WaitFor("three members", `() => document.querySelectorAll('#member-list .member').length === 3`)
	p.WaitVisible("#demo-toggle")
	p.Click("#group-details summary")
	p.WaitVisible("#network svg")
	if bad := webtest.EvalDevTools[[]string](p, clickables); len(bad) > 0 {
		t.Errorf("actions a keyboard cannot reach: %v", bad)
	}
	if bad := webtest.Eval[[]string](p, unnamed); len(bad) > 0 {
		t.Errorf("controls without a name: %v", bad)
	}
	// The phone's drawers: opened from the keyboard, closed with Escape.
	p.Viewport(390, 844)
	p.WaitFor("the phone layout", `() => matchMedia('(max-width: 680px)').matches`)
	p.WaitVisible("#groups-toggle")
	webtest.Eval[bool](p, `(document.querySelector('#groups-toggle').focus(), true)`)
	p.KeyEvent("\r")
	p.WaitVisible("#groups-panel")
	p.WaitFor("the focus in the drawer", `() => document.querySelector('#groups-panel').contains(document.activeElement)`)
	if bad := webtest.EvalDevTools[[]string](p, clickables); len(bad) > 0 {
		t.Errorf("actions a keyboard cannot reach on a phone: %v", bad)
	}
	if bad := webtest.Eval[[]string](p, unnamed); len(bad) > 0 {
		t.Errorf("controls without a name on a phone: %v", bad)
	}
}
