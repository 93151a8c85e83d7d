package web

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/web/webtest"
)

// These tests drive the embedded UI in headless Chromium against handlers on
// real loopback listeners, backed by the fake world. They skip without a
// browser unless $CI is set (see package webtest).

// shared is the test binary's browser, started by the first browser test.
var shared *webtest.Browser

func TestMain(m *testing.M) {
	shared = webtest.New()
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// pageTimeout bounds each page; generous, for loaded 2-core machines.
const pageTimeout = 2 * time.Minute

// openUI opens u's address, as `demes serve` prints it, and waits until the
// page has its status and its event stream.
func openUI(t *testing.T, u *testUI) *webtest.Page {
	t.Helper()
	p := shared.NewPage(t, pageTimeout)
	p.Navigate(u.PageURL())
	p.WaitText("#node-state", "online")
	return p
}

// hasMessage is true when the message list shows text (exactly), with the
// given delivery state and author when those are not empty. A message of
// this node's own shows its state as a sign: a check once committed (in
// the group's order; two once every member's device holds it), a clock
// while on its way.
const hasMessage = `(text, state, author) => Array.from(document.querySelectorAll('#message-list .msg')).some((li) =>
	li.querySelector('.msg-text').textContent === text &&
	(!state || (li.dataset.state === state && (!li.classList.contains('mine') ||
		({committed: ['check', 'checks'], tentative: ['clock'], sending: ['clock'], failed: ['alert']})[state].some((i) => !!li.querySelector('.msg-state .icon-' + i))))) &&
	(!author || li.querySelector('.msg-author').textContent === author))`

// send types text into the compose box and presses Enter.
func send(p *webtest.Page, text string) {
	p.T.Helper()
	p.SendKeys("#compose", text)
	p.PressEnter()
}

func waitMessage(p *webtest.Page, text, state, author string) {
	p.T.Helper()
	p.WaitFor("message "+strings.ReplaceAll(text, "\n", `\n`)+" ("+state+")", hasMessage, text, state, author)
}

func TestBrowserChatBetweenTwoNodes(t *testing.T) {
	w, gid := newFriends(t)
	aliceUI := startUI(t, w.node("alice"), nil)
	bobUI := startUI(t, w.node("bob"), nil)
	a := openUI(t, aliceUI)
	b := openUI(t, bobUI)

	// The token left the address bar but stays for this tab.
	if href := webtest.Eval[string](a, "location.href"); strings.Contains(href, "token") {
		t.Errorf("the token is still in the address bar: %s", href)
	}
	if tok := webtest.Eval[string](a, "sessionStorage.getItem('demes-token')"); tok != aliceUI.Token {
		t.Errorf("sessionStorage token = %q", tok)
	}
	a.WaitText("#chat-title", "friends")
	b.WaitText("#chat-title", "friends")

	// Shift+Enter makes a new line; Enter sends.
	a.SendKeys("#compose", "first line")
	a.KeyEvent("\r", chromedp.ModifierShift)
	send(a, "second line")
	const text = "first line\nsecond line"
	waitMessage(b, text, "committed", "alice")
	waitMessage(a, text, "committed", "alice")
	if v := webtest.Eval[string](a, "document.querySelector('#compose').value"); v != "" {
		t.Errorf("compose box after sending = %q, want empty", v)
	}
	if n := webtest.Eval[int](a, "document.querySelectorAll('#message-list .msg').length"); n != 1 {
		t.Errorf("alice's list has %d messages, want 1 (no leftover placeholder)", n)
	}
	// The author's fingerprint is at hand on the name, not in the way: it
	// is shown next to it only where two members share a name
	// (TestBrowserSameNames).
	fp := w.node("alice").pub.Fingerprint()
	if got := webtest.Eval[string](b, "document.querySelector('#message-list .msg .msg-author').title"); !strings.Contains(got, fp) {
		t.Errorf("the author's name has the title %q, want her fingerprint %q", got, fp)
	}
	if n := count(b, "#message-list .msg-fp"); n != 0 {
		t.Errorf("%d messages show a fingerprint though every name is different", n)
	}

	// And back: bob answers, carol (no browser) too.
	send(b, "hi alice, the network picture shows us all")
	w.node("carol").Send(context.Background(), gid, "I'm on the slow link, as you can see.", time.Second)
	waitMessage(a, "hi alice, the network picture shows us all", "committed", "bob")
	waitMessage(a, "I'm on the slow link, as you can see.", "committed", "carol")
	send(a, "Host is me for now: 3 ms to everyone.")
	waitMessage(a, "Host is me for now: 3 ms to everyone.", "committed", "alice")
	a.Screenshot("chat")
}

func TestBrowserMessageTextIsNeverHTML(t *testing.T) {
	w, _ := newFriends(t)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	b := openUI(t, startUI(t, w.node("bob"), nil))
	const evil = `<img src=x onerror=alert(1)>`
	send(a, evil)
	for name, p := range map[string]*webtest.Page{"alice": a, "bob": b} {
		// Wait for the message whatever it shows, then look at what it shows.
		p.WaitFor(name+" to show a committed message", `() => !!document.querySelector('#message-list .msg[data-state="committed"] .msg-text')`)
		if got := webtest.Eval[string](p, `document.querySelector('#message-list .msg[data-state="committed"] .msg-text').textContent`); got != evil {
			t.Errorf("%s shows the message as %q, want the literal text %q", name, got, evil)
		}
		if n := webtest.Eval[int](p, "document.querySelectorAll('#message-list img').length"); n != 0 {
			t.Errorf("%s: the message list has %d <img> elements; message text became HTML", name, n)
		}
		if d := p.Dialogs(); len(d) != 0 {
			t.Errorf("%s: dialogs opened: %v", name, d)
		}
	}
	// (Each page also fails the test at cleanup on any dialog, exception or
	// CSP violation it saw later.)
}

func TestBrowserQueuedThenCommitted(t *testing.T) {
	w, gid := newFriends(t)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	b := openUI(t, startUI(t, w.node("bob"), nil))
	a.WaitHidden("#banner-quorum")

	w.setQuorum(gid, false)
	a.WaitVisible("#banner-quorum")
	a.WaitText("#banner-quorum", "Too few members are online to put messages in the group’s order: yours reach the members online now, and join the order when enough of the group is back.")
	if txt := webtest.Eval[string](a, `document.querySelector('#banner-quorum').textContent`); strings.Contains(txt, "quorum") {
		t.Errorf("the banner speaks raft: %q", txt)
	}
	b.WaitVisible("#banner-quorum")

	const text = "written while the group is cut off"
	send(a, text)
	waitMessage(a, text, "tentative", "alice")
	a.WaitText("#group-facts", "1 message of yours not in the order yet")
	a.Screenshot("no-quorum")
	// Bob, online, has it directly: shown with a clock, not in the order.
	waitMessage(b, text, "tentative", "alice")
	if label := webtest.Eval[string](b, `document.querySelector('#message-list .msg[data-state="tentative"] .msg-state svg').getAttribute('aria-label')`); !strings.Contains(label, "reached you directly") {
		t.Errorf("bob's tentative message says %q, want that it reached him directly and is not in the order", label)
	}
	if label := webtest.Eval[string](a, `document.querySelector('#message-list .msg[data-state="tentative"] .msg-state svg').getAttribute('aria-label')`); !strings.Contains(label, "delivered to 2 of 2 members") {
		t.Errorf("alice's tentative message says %q, want how many members hold it", label)
	}

	w.setQuorum(gid, true)
	waitMessage(a, text, "committed", "alice")
	waitMessage(b, text, "committed", "alice")
	a.WaitHidden("#banner-quorum")
	// One line each, in its place: the tentative copy became the committed
	// one.
	for name, p := range map[string]*webtest.Page{"alice": a, "bob": b} {
		if n := webtest.Eval[int](p, `Array.from(document.querySelectorAll('#message-list .msg-text')).filter((e) => e.textContent === `+jsString(text)+`).length`); n != 1 {
			t.Errorf("%s shows the message %d times after its commit", name, n)
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestBrowserMembersAndNetwork(t *testing.T) {
	w, _ := newFriends(t)
	alice, bob, carol := w.node("alice"), w.node("bob"), w.node("carol")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitFor("three members", `() => document.querySelectorAll('#member-list .member').length === 3`)

	// Preference order: alice hosts, bob and carol back her up in that order.
	member := func(n *fakeNode) string {
		return webtest.Eval[string](a, `document.querySelector('#member-list [data-public-id="`+n.pub.String()+`"]').textContent`)
	}
	for _, c := range []struct {
		n    *fakeNode
		want []string
	}{
		{alice, []string{"alice", "(you)", "host", "you, on this device"}},
		{bob, []string{"bob", "online · 11 ms away", "Safety number", identity.SafetyNumber(alice.pub, bob.pub), bob.pub.Fingerprint()}},
		{carol, []string{"carol", "online · 24 ms away", identity.SafetyNumber(alice.pub, carol.pub)}},
	} {
		got := member(c.n)
		for _, want := range c.want {
			if !strings.Contains(got, want) {
				t.Errorf("member %s shows %q, missing %q", c.n.name, got, want)
			}
		}
		// Raft's words are kept for the details panel.
		for _, raft := range []string{"voter", "learner", "term", "quorum", "log", "RTT"} {
			if strings.Contains(strings.ToLower(got), strings.ToLower(raft)) {
				t.Errorf("member %s shows %q, which speaks raft (%q)", c.n.name, got, raft)
			}
		}
	}
	if facts := webtest.Eval[string](a, `document.querySelector('#group-facts').textContent`); facts != "3 members · 3 online · host: alice" {
		t.Errorf("group facts %q", facts)
	}
	// ... where they are, behind "How this group runs".
	if webtest.Eval[bool](a, `document.querySelector('#group-details').open`) {
		t.Error("the details panel is open before anyone asked")
	}
	a.Click("#group-details summary")
	a.WaitVisible("#network svg")
	for _, want := range []string{"Voters", "alice, bob, carol", "Learners", "none", "Term", "Log entries", "Quorum", "2 of 3 voters, reached"} {
		a.WaitText("#group-raft", want)
	}
	if got := webtest.Eval[string](a, `document.querySelector('#member-list').firstElementChild.dataset.publicId`); got != alice.pub.String() {
		t.Errorf("first member is %s, want the host", got)
	}

	// The picture: one circle per member, one labelled line per edge, the
	// host highlighted and numbered 1.
	if n := webtest.Eval[int](a, `document.querySelectorAll('#network svg circle').length`); n != 3 {
		t.Errorf("%d circles, want 3", n)
	}
	if n := webtest.Eval[int](a, `document.querySelectorAll('#network svg line.edge').length`); n != 3 {
		t.Errorf("%d edges, want 3", n)
	}
	labels := webtest.Eval[[]string](a, `Array.from(document.querySelectorAll('#network .edge-label')).map((e) => e.textContent).sort()`)
	if strings.Join(labels, ",") != "11 ms,24 ms,29 ms" {
		t.Errorf("edge labels %v, want 11, 24 and 29 ms", labels)
	}
	if host := webtest.Eval[string](a, `document.querySelector('#network .node-host').dataset.publicId`); host != alice.pub.String() {
		t.Errorf("highlighted host %s, want alice", host)
	}
	ranks := webtest.Eval[string](a, `Array.from(document.querySelectorAll('#network .node')).map((g) => g.querySelector('.node-rank').textContent + ':' + g.querySelector('.node-name').textContent).sort().join(',')`)
	if ranks != "1:alice (you),2:bob,3:carol" {
		t.Errorf("network nodes %s", ranks)
	}
	a.ScreenshotElement("#side-panel", "members-network")

	// When bob's node goes away, the panel says so and his edges go.
	bob.StopNode()
	a.WaitFor("bob offline", `(id) => { const li = document.querySelector('#member-list [data-public-id="' + id + '"]'); return li && li.textContent.includes('offline'); }`, bob.pub.String())
	a.WaitFor("one edge left", `() => document.querySelectorAll('#network svg line.edge').length === 1`)

	// My identity: the public id to copy, with its QR code.
	a.Click("#identity-button")
	a.WaitVisible("#identity-dialog")
	if got := webtest.Eval[string](a, `document.querySelector('#my-public-id').value`); got != alice.pub.String() {
		t.Errorf("identity dialog shows %q", got)
	}
	a.WaitFor("identity QR code", `() => { const i = document.querySelector('#my-qr'); return i.complete && i.naturalWidth > 0; }`)
}

func TestBrowserInviteDialog(t *testing.T) {
	w, _ := newFriends(t)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	a.WaitText("#chat-title", "friends")
	a.Click("#invite-button")
	a.WaitVisible("#invite-dialog")

	// A mistyped id is refused with the reason.
	a.SetValue("#invite-public-id", "demes1notanid")
	a.Click("#invite-submit")
	a.WaitText("#invite-error", "not a public id")

	a.SetValue("#invite-public-id", w.node("dave").pub.String())
	a.Click("#invite-submit")
	a.WaitFor("an invite code", `() => document.querySelector('#invite-code').value.startsWith('DEMES-INVITE-')`)
	a.WaitHidden("#invite-error")
	a.WaitFor("the QR code image", `() => { const i = document.querySelector('#invite-qr'); return i.complete && i.naturalWidth > 100; }`)
	a.WaitVisible("#invite-copy")
	code := webtest.Eval[string](a, `document.querySelector('#invite-code').value`)
	w.mu.Lock()
	inv, ok := w.invites[code]
	w.mu.Unlock()
	if !ok || inv.publicID != w.node("dave").pub.String() {
		t.Errorf("the dialog shows %q, which is not dave's invite", code)
	}
	a.Screenshot("invite-dialog")
}

func TestBrowserJoinDialog(t *testing.T) {
	w, gid := newFriends(t)
	dave := w.node("dave")
	d := openUI(t, startUI(t, dave, nil))
	d.WaitVisible("#groups-empty")

	// A bad code: the error, and the dialog stays usable.
	d.Click("#join-button")
	d.WaitVisible("#join-dialog")
	d.SetValue("#join-code", "DEMES-INVITE-BOGUS")
	d.Click("#join-submit")
	d.WaitText("#join-error", "This invite code is incomplete or damaged. Ask for a new one or paste it again in full.")

	// A good one: progress while the node joins and catches up, then the group.
	code, err := w.node("alice").Invite(context.Background(), gid, dave.pub.String())
	if err != nil {
		t.Fatal(err)
	}
	release := w.holdJoins()
	defer release()
	d.SetValue("#join-code", code)
	d.Click("#join-submit")
	d.WaitVisible("#join-progress")
	d.WaitText("#join-progress", "catching up")
	d.WaitHidden("#join-error")
	if !webtest.Eval[bool](d, `document.querySelector('#join-submit').disabled`) {
		t.Error("the join button stays enabled while joining")
	}
	d.Screenshot("join-progress")
	release()
	d.WaitFor("the dialog to close", `() => !document.querySelector('#join-dialog').open`)
	d.WaitText("#chat-title", "friends")
	d.WaitText(`#group-list [aria-current="true"]`, "friends")
	d.WaitFor("four members", `() => document.querySelectorAll('#member-list .member').length === 4`)
	d.WaitText(`#member-list [data-public-id="`+dave.pub.String()+`"]`, "you, on this device")
	d.WaitText("#group-raft", "Learners")
	if got := webtest.Eval[string](d, `Array.from(document.querySelectorAll('#group-raft dt')).find((e) => e.textContent === 'Learners').nextElementSibling.textContent`); got != "dave" {
		t.Errorf("learners %q, want dave (a new member does not vote at first)", got)
	}
}

func TestBrowserStopAndStartNode(t *testing.T) {
	w, _ := newFriends(t)
	bob := w.node("bob")
	b := openUI(t, startUI(t, bob, bob)) // demo mode: bob's UI controls his node
	a := openUI(t, startUI(t, w.node("alice"), nil))
	a.WaitHidden("#demo-toggle") // not in demo mode

	b.WaitText("#demo-toggle", "Stop my node")
	b.Click("#demo-toggle")
	b.WaitVisible("#banner-stopped")
	b.WaitText("#node-state", "node stopped")
	b.WaitText("#demo-toggle", "Start my node")
	if !webtest.Eval[bool](b, `document.querySelector('#compose').disabled`) {
		t.Error("the compose box stays enabled on a stopped node")
	}
	a.WaitFor("bob offline at alice", `(id) => { const li = document.querySelector('#member-list [data-public-id="' + id + '"]'); return li && li.textContent.includes('offline'); }`, bob.pub.String())
	b.Screenshot("node-stopped")

	b.Click("#demo-toggle")
	b.WaitHidden("#banner-stopped")
	b.WaitText("#node-state", "online")
	send(b, "back again")
	waitMessage(a, "back again", "committed", "bob")
}

func TestBrowserCreateGroupAndExport(t *testing.T) {
	w, _ := newFriends(t)
	d := openUI(t, startUI(t, w.node("dave"), nil))
	d.SendKeys("#new-group-name", "book club\n")
	d.WaitText("#chat-title", "book club")
	d.WaitText(`#group-list [aria-current="true"]`, "book club")
	send(d, "first!")
	waitMessage(d, "first!", "committed", "dave")

	// Export downloads the transcript (fetched with the token header, saved
	// from a blob).
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(d.Ctx, d.Step)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
	}); err != nil {
		t.Fatal(err)
	}
	// First the warning: the file holds the conversation in plain text.
	d.Click("#export-button")
	d.WaitVisible("#export-dialog")
	d.WaitText("#export-dialog", "in plain text")
	d.WaitText("#export-group", "book club")
	d.Click("#export-cancel")
	waitDialogClosed(d, "export-dialog")
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("cancel saved %v", files)
	}
	d.Click("#export-button")
	d.Click("#export-save")
	// Chromium writes the file itself, so poll the directory.
	var doc []byte
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(d.Step); doc == nil; <-tick.C {
		files, _ := filepath.Glob(filepath.Join(dir, "demes-transcript-*.json"))
		if len(files) == 1 {
			if b, err := os.ReadFile(files[0]); err == nil && json.Valid(b) {
				doc = b
			}
		}
		if doc == nil && time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("no transcript downloaded into %s (it holds %v)", dir, entries)
		}
	}
	if !strings.Contains(string(doc), "first!") {
		t.Errorf("transcript = %s", doc)
	}
}
