package web

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// Browser tests of what tells a person that something arrived: unread
// counts (in the list and the tab title, kept across reloads), previews,
// desktop notifications; and of telling groups and people with the same
// name apart.

// notificationSpy stands in for what the test cannot see in a headless
// browser: it records each desktop notification the page makes (passing
// it on to the real Notification) and each request for permission, and
// lets the test hide the tab (document.hidden), as switching to another
// tab would. Chromium's real permission, set by the test with
// Browser.setPermission, answers the requests.
const notificationSpy = `(() => {
	window.spy = { shown: [], asked: 0, hidden: false };
	const Real = window.Notification;
	class Spy extends Real {
		constructor(title, opts) {
			super(title, opts);
			window.spy.shown.push({ title, body: (opts && opts.body) || '', tag: (opts && opts.tag) || '' });
		}
		static get permission() { return Real.permission; }
		static requestPermission() { window.spy.asked++; return Real.requestPermission(); }
	}
	window.Notification = Spy;
	Object.defineProperty(Document.prototype, 'hidden', { get: () => window.spy.hidden, configurable: true });
	Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (window.spy.hidden ? 'hidden' : 'visible'), configurable: true });
	window.spyHide = (hidden) => { window.spy.hidden = hidden; document.dispatchEvent(new Event('visibilitychange')); return true; };
})()`

type shownNotification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
	Tag   string `json:"tag"`
}

// TestBrowserUnreadAndNotifications: messages that arrive while the tab is
// hidden count in the tab title and, once the person turned them on, show
// as desktop notifications; the browser is asked for permission only then,
// never on load. Unread counts and previews survive a reload.
func TestBrowserUnreadAndNotifications(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	walks, err := bob.CreateGroup(context.Background(), "walks")
	if err != nil {
		t.Fatal(err)
	}
	w.addMember(walks.GroupID, alice)
	u := startUI(t, alice, nil)
	p := shared.NewPage(t, pageTimeout)
	p.BeforeLoad(notificationSpy)
	// What the person answers when the browser asks: allow.
	p.Grant(u.URL, "notifications", "granted")
	p.Navigate(u.PageURL())
	p.WaitText("#node-state", "online")
	p.WaitText("#chat-title", "friends")
	p.WaitVisible("#notify-button")

	if asked := webtest.Eval[int](p, "window.spy.asked"); asked != 0 {
		t.Errorf("the page asked for permission to notify %d times on load", asked)
	}
	p.WaitText("#notify-button", "Turn on notifications")
	p.Click("#notify-button")
	p.WaitText("#notify-button", "Turn off notifications")
	if asked := webtest.Eval[int](p, "window.spy.asked"); asked != 1 {
		t.Errorf("the page asked %d times after one press, want once", asked)
	}

	// In view: no notification, no unread.
	bob.Send(context.Background(), gid, "while you look", time.Second)
	waitMessage(p, "while you look", "committed", "bob")
	if title := webtest.Eval[string](p, "document.title"); title != "DeMeS" {
		t.Errorf("title %q for a message in the open group, in view", title)
	}

	// Hidden: the title counts, and each message of someone else shows.
	webtest.Eval[bool](p, "window.spyHide(true)")
	bob.Send(context.Background(), gid, "while you are away", time.Second)
	w.node("carol").Send(context.Background(), walks.GroupID, "wrong group, carol is not in it", time.Second)
	bob.Send(context.Background(), walks.GroupID, "see you at the bridge", time.Second)
	send(p, "my own, no notification")
	p.WaitFor("the title to count 2", `() => document.title === '(2) DeMeS'`)
	p.WaitText(`#group-list [data-group-id="`+walks.GroupID+`"] .group-preview`, "bob: see you at the bridge")
	p.WaitText(`#group-list [data-group-id="`+walks.GroupID+`"] .unread`, "1")
	p.WaitText(`#group-list [data-group-id="`+gid+`"] .unread`, "1")
	got := webtest.Eval[[]shownNotification](p, "window.spy.shown")
	want := []shownNotification{
		{"bob in friends", "while you are away", "demes-" + gid},
		{"bob in walks", "see you at the bridge", "demes-" + walks.GroupID},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("notifications %+v, want %+v", got, want)
	}

	// Back in view: the open group is read, the other still counts.
	webtest.Eval[bool](p, "window.spyHide(false)")
	p.WaitFor("the title to count 1", `() => document.title === '(1) DeMeS'`)

	// A reload (or a new tab) keeps that, and the preview.
	p.Reload()
	p.WaitText("#node-state", "online")
	p.WaitText(`#group-list [data-group-id="`+walks.GroupID+`"] .group-preview`, "bob: see you at the bridge")
	p.WaitText(`#group-list [data-group-id="`+walks.GroupID+`"] .unread`, "1")
	p.WaitFor("the title to count 1 after the reload", `() => document.title === '(1) DeMeS'`)
	p.WaitText("#notify-button", "Turn off notifications")
	if n := count(p, `#group-list [data-group-id="`+gid+`"] .unread`); n != 0 {
		t.Error("the open group counts unread messages after a reload")
	}
	p.Click(`#group-list [data-group-id="` + walks.GroupID + `"]`)
	p.WaitFor("the title without a count", `() => document.title === 'DeMeS'`)
	p.Screenshot("unread")
}

// TestBrowserSameNames: two groups with the same name show the start of
// their ids. Two members whose names the node flags as shared ("bob" and
// an impostor's "Bob ") show their whole fingerprints beside the name, on
// their messages (one loaded before the impostor joined too), in the
// member list and in search results; members with names of their own show
// none.
func TestBrowserSameNames(t *testing.T) {
	w, gid := newFriends(t)
	alice := w.node("alice")
	other, err := alice.CreateGroup(context.Background(), "friends")
	if err != nil {
		t.Fatal(err)
	}
	w.node("bob").Send(context.Background(), gid, "the real bob", time.Second)
	alice.Send(context.Background(), gid, "hi bob", time.Second)

	p := openUI(t, startUI(t, alice, nil))
	// The list comes with the page's first groups request, which may
	// answer after the status that openUI waits for.
	p.WaitFor("two groups in the list", `() => document.querySelectorAll('#group-list .group-name').length === 2`)
	names := webtest.Eval[[]string](p, `Array.from(document.querySelectorAll('#group-list .group-name')).map((e) => e.textContent).sort()`)
	wantNames := []string{"friends · " + gid[:6], "friends · " + other.GroupID[:6]}
	sort.Strings(wantNames)
	if strings.Join(names, "|") != strings.Join(wantNames, "|") {
		t.Errorf("group list %q, want %q", names, wantNames)
	}
	p.Click(`#group-list [data-group-id="` + gid + `"]`)
	p.WaitText("#chat-title", "friends · "+gid[:6])
	waitMessage(p, "hi bob", "committed", "alice")
	if n := count(p, "#message-list .msg-fp, #member-list .member-fp"); n != 0 {
		t.Errorf("%d fingerprints shown beside names while every name is different", n)
	}

	// zed joins as "Bob ", and writes.
	zed := w.joinAs(t, gid, "zed", "Bob ")
	zed.Send(context.Background(), gid, "another bob", time.Second)
	waitMessage(p, "another bob", "committed", "Bob ")
	bobFP, zedFP := w.node("bob").pub.Fingerprint(), zed.pub.Fingerprint()
	const shown = `(sel, item, name) => Array.from(document.querySelectorAll(sel)).map((li) =>
		li.querySelector(item).textContent + ': ' + (li.querySelector(name) || {textContent: '-'}).textContent).join('|')`
	wantFPs := strings.Join([]string{"the real bob: " + bobFP, "hi bob: -", "another bob: " + zedFP}, "|")
	p.WaitFor("the fingerprints beside the two bobs' messages", `(sel, item, name, want) => (`+shown+`)(sel, item, name) === want`,
		"#message-list .msg", ".msg-text", ".msg-fp", wantFPs)
	wantMembers := strings.Join([]string{"alice: -", "bob: " + bobFP, "carol: -", "Bob : " + zedFP}, "|")
	p.WaitFor("the fingerprints beside the two bobs in the member list", `(sel, item, name, want) => (`+shown+`)(sel, item, name) === want`,
		"#member-list .member", ".member-name", ".member-fp", wantMembers)
	if got := webtest.Eval[string](p, `document.querySelector('#message-list .msg-fp').title`); !strings.Contains(got, "looks the same") {
		t.Errorf("the fingerprint's title is %q, want it to say why it is there", got)
	}
	// A search names the authors the same way, on one line.
	webtest.Eval[bool](p, `(() => { document.querySelector('#search-text').value = 'bob'; return true; })()`)
	p.Click("#search-submit")
	p.WaitText("#search-summary", "3 messages")
	authors := webtest.Eval[string](p, `Array.from(document.querySelectorAll('#search-list .msg-author')).map((e) => e.textContent).join('|')`)
	if want := "Bob  (" + zedFP + ")|alice|bob (" + bobFP + ")"; authors != want {
		t.Errorf("the search names the authors %q, want %q", authors, want)
	}
}

// TestBrowserPlainErrors: the node's errors, as its API returns them,
// reach the person as what happened and what to do, without the layers of
// the node's own wording.
func TestBrowserPlainErrors(t *testing.T) {
	w, _ := newFriends(t)
	p := openUI(t, startUI(t, w.node("alice"), nil))
	cases := []struct {
		action, msg string
		status      int
		want        string
	}{
		{"join", "failed to join: join: invite code does not verify: verify envelope: unsupported version: 129: invalid request", 400,
			"This invite code is incomplete or damaged. Ask for a new one or paste it again in full."},
		{"join", "failed to join: join: invite code does not verify: bad signature: invalid request", 400,
			"This invite code is incomplete or damaged. Ask for a new one or paste it again in full."},
		{"join", "failed to join: join: invite code is damaged (was it cut when copied?): illegal base64 data at input byte 12: invalid request", 400,
			"This invite code is incomplete or damaged. Ask for a new one or paste it again in full."},
		{"join", `failed to join: join: not an invite code: it must start with "demes-invite-": invalid request`, 400,
			"This is not an invite code."},
		{"join", "failed to join: join: this invite expired on Mon, 01 Dec 2026 10:00:00 UTC; ask for a new one: invalid request", 400,
			"This invite has expired. Ask the person who invited you for a new one."},
		{"join", "failed to join: join: this invite is for SHA256:ab12, not for this node (SHA256:cd34): invalid request", 400,
			"This invite was made for someone else."},
		{"join", "failed to join: join: no member of the group accepted the join: dial tcp 10.0.0.7:7000: connect: connection refused", 500,
			"Nobody in the group could be reached."},
		{"join", "failed to join: context deadline exceeded", 504, "Nobody in the group could be reached."},
		{"send", "failed to send: group \"ab\": not found", 404, "This group is no longer on your node."},
		{"send", "failed to send: raft: stopped", 500, "Your node could not do this."},
		{"send", "", 0, "Your DeMeS node is not answering."},
		{"invite", "failed to invite: invite: not a public id: bad checksum: invalid request", 400, "That is not a public id."},
		{"member", "only admins may remove members", 403, "Only admins may remove members."},
	}
	for _, c := range cases {
		got := webtest.Await[string](p, `import('/errors.js').then((m) => m.plain({ message: `+jsString(c.msg)+`, status: `+strconv.Itoa(c.status)+`, hint: '' }, `+jsString(c.action)+`))`)
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s %d %q:\n  says %q\n  want %q", c.action, c.status, c.msg, got, c.want)
		}
		for _, internal := range []string{"failed to", "invalid request", "envelope", "base64", "signature", "raft", "dial", "deadline"} {
			if strings.Contains(got, internal) {
				t.Errorf("%s %q: says %q, with the internal %q", c.action, c.msg, got, internal)
			}
		}
	}
}
