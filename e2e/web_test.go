package e2e

// End-to-end tests of the browser UI: real nodes (node.Service, the same
// value `demes serve` and `demes demo` run) on real loopback listeners,
// driven through their browser UIs in headless Chromium. Unlike
// web/browser_test.go, nothing here is faked: the messages go through raft,
// the peer transport and the sealing, and the failover is raft's.
//
// The machine may be small and loaded: every wait polls with a generous
// deadline, nothing sleeps.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/web/webtest"
)

// TestE2EGroupChat is the whole story on three real nodes: alice creates a
// group in her browser, carol joins (from Go), bob joins in his browser with
// an invite code from alice's; they chat; the host's owner stops it from
// its UI and another member takes over; with two of three nodes down a
// message waits in the outbox, and commits when a node comes back.
func TestE2EGroupChat(t *testing.T) {
	b := webtest.NewBrowser(t) // skips without a browser, unless $CI is set
	start := time.Now()
	alice := startE2ENode(t, "alice")
	bob := startE2ENode(t, "bob")
	carol := startE2ENode(t, "carol")
	nodes := []*e2eNode{alice, bob, carol}
	pages := map[*e2eNode]*webtest.Page{alice: e2ePage(t, b, alice), bob: e2ePage(t, b, bob)}
	a, bp := pages[alice], pages[bob]
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Alice creates the group in her browser.
	phase("alice creates the group")
	a.WaitVisible("#groups-empty")
	a.SendKeys("#new-group-name", "friends\n")
	a.WaitText("#chat-title", "friends")
	a.WaitText(`#group-list [aria-current="true"]`, "friends")
	groups := alice.svc.Groups()
	if len(groups) != 1 || groups[0].Name != "friends" {
		t.Fatalf("alice's node has groups %v after creating one in the UI", groups)
	}
	gid := groups[0].GroupID
	a.WaitFor("alice as host", memberIsHost, alice.pub.String())

	// Carol joins from Go: a third voter, so the group keeps a quorum when
	// one node stops.
	phase("carol joins")
	code, err := alice.svc.Invite(ctx, gid, carol.pub.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.svc.Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	a.WaitFor("carol online at alice", memberShows, carol.pub.String(), " ms away")

	// Bob joins in his browser. His public id comes from his "My identity"
	// dialog, as he would copy it.
	phase("bob joins in his browser")
	bp.Click("#identity-button")
	bp.WaitVisible("#identity-dialog")
	bobID := webtest.Eval[string](bp, `document.querySelector('#my-public-id').value`)
	if bobID != bob.pub.String() {
		t.Fatalf("bob's identity dialog shows %q, want %q", bobID, bob.pub.String())
	}
	bp.WaitText("#my-fingerprint", bob.pub.Fingerprint())
	bp.WaitFor("bob's identity QR code", `() => { const i = document.querySelector('#my-qr'); return i.complete && i.naturalWidth > 100; }`)
	bp.Click(`[data-close="identity-dialog"]`)
	bp.WaitHidden("#identity-dialog")

	// Alice invites him: paste the id, get the code and its QR code.
	a.Click("#invite-button")
	a.WaitVisible("#invite-dialog")
	a.SetValue("#invite-public-id", bobID)
	a.Click("#invite-submit")
	a.WaitFor("an invite code", `() => document.querySelector('#invite-code').value.startsWith('`+node.InvitePrefix+`')`)
	a.WaitHidden("#invite-error")
	a.WaitFor("the invite QR code", `() => { const i = document.querySelector('#invite-qr'); return i.complete && i.naturalWidth > 100; }`)
	inviteCode := webtest.Eval[string](a, `document.querySelector('#invite-code').value`)
	if inv, err := node.ParseInvite(inviteCode); err != nil || inv.Invitee != bob.pub || inv.Inviter != alice.pub {
		t.Fatalf("alice's invite dialog shows a code that is not alice's invite for bob (%v): %q", err, inviteCode)
	}
	e2eScreenshot(a, "invite-dialog", "")
	a.Click(`[data-close="invite-dialog"]`)
	a.WaitHidden("#invite-dialog")

	// Bob pastes the code. While nobody can reach his node, he cannot catch
	// up with the group's log, so the join shows its progress until then.
	bob.hold.Store(true)
	bp.Click("#join-button")
	bp.WaitVisible("#join-dialog")
	bp.SetValue("#join-code", inviteCode)
	bp.Click("#join-submit")
	bp.WaitVisible("#join-progress")
	bp.WaitText("#join-progress", "catching up")
	bp.WaitHidden("#join-error")
	if !webtest.Eval[bool](bp, `document.querySelector('#join-submit').disabled`) {
		t.Error("the join button stays enabled while joining")
	}
	// The join request itself got through: the group has bob as a member.
	testutil.Eventually(t, e2eWait, "bob in alice's member list", func() bool {
		g, _ := alice.group(gid)
		for _, m := range g.Members {
			if m.PublicID == bobID {
				return true
			}
		}
		return false
	})
	bp.WaitVisible("#join-progress") // still catching up
	bob.hold.Store(false)
	bp.WaitFor("the join dialog to close", `() => !document.querySelector('#join-dialog').open`)
	bp.WaitText("#chat-title", "friends")
	bp.WaitText(`#group-list [aria-current="true"]`, "friends")
	bp.WaitFor("three members at bob", `() => document.querySelectorAll('#member-list .member').length === 3`)

	// Everybody votes before anything is stopped.
	phase("waiting for three voters on every node")
	testutil.Eventually(t, e2eWait, "3 voters on every node", func() bool {
		for _, n := range nodes {
			if n.voters(gid) != 3 {
				return false
			}
		}
		return true
	})

	// A message typed in alice's browser reaches bob's, with her name and
	// fingerprint.
	phase("chat")
	const hello = "Hi bob! Welcome to our group."
	e2eSend(a, hello)
	e2eWaitMessage(bp, hello, "committed", "alice")
	e2eWaitMessage(a, hello, "committed", "alice")
	if got, want := webtest.Eval[string](bp, `document.querySelector('#message-list .msg .msg-author').title`), alice.pub.Fingerprint(); !strings.Contains(got, want) {
		t.Errorf("bob shows alice's fingerprint as %q, want %q", got, want)
	}
	if v := webtest.Eval[string](a, `document.querySelector('#compose').value`); v != "" {
		t.Errorf("alice's compose box after sending = %q, want empty", v)
	}
	// Receipts: bob's page, open on the group, marks it read, and alice's
	// node learns it from bob's signed pings; once carol (no browser)
	// reads it too, alice sees that everyone did.
	const lastReceipt = `() => { const ms = document.querySelectorAll('#message-list .msg.mine'); const r = ms.length ? ms[ms.length - 1].querySelector('.msg-receipt') : null; return r ? r.textContent : ''; }`
	a.WaitFor("alice to see that bob read her message", `() => (`+lastReceipt+`)() === 'Read by bob'`)
	helloID := webtest.Eval[string](a, `(() => { const ms = document.querySelectorAll('#message-list .msg.mine'); return ms[ms.length - 1].dataset.id; })()`)
	if _, err := carol.svc.MarkRead(ctx, gid, helloID); err != nil {
		t.Fatalf("carol marks the group read: %v", err)
	}
	a.WaitFor("alice to see that everyone read her message", `() => (`+lastReceipt+`)() === 'Read by everyone'`)
	const reply = "Thanks! Everything I write is sealed to each of you."
	e2eSend(bp, reply)
	e2eWaitMessage(a, reply, "committed", "bob")
	const fromCarol = "And the host only relays what it cannot read."
	if m, err := carol.svc.Send(ctx, gid, fromCarol, 30*time.Second); err != nil || m.State != node.StateCommitted {
		t.Fatalf("carol's send: %v, state %q", err, m.State)
	}
	e2eWaitMessage(a, fromCarol, "committed", "carol")
	e2eWaitMessage(bp, fromCarol, "committed", "carol")
	for _, text := range []string{hello, reply, fromCarol} {
		if k := e2eCount(a, text); k != 1 {
			t.Errorf("alice shows %q %d times", text, k)
		}
	}
	// Who created the group and who joined, as lines of their own, in
	// the order of the log: before the first message.
	a.WaitFor("the membership lines at alice", `() => Array.from(document.querySelectorAll('#message-list > li')).slice(0, 3).map((e) => e.classList.contains('msg-event') ? e.textContent : 'message').join(' | ') === 'You created the group | carol joined | bob joined'`)
	bp.WaitFor("the membership lines at bob", `() => Array.from(document.querySelectorAll('#message-list .msg-event')).map((e) => e.textContent).includes('You joined')`)

	// The members panel and the network picture, from real measurements:
	// everybody online with an RTT, three measured edges, one host.
	phase("members and network")
	for _, n := range []*e2eNode{bob, carol} {
		a.WaitFor(n.name+" online with an RTT at alice", memberShows, n.pub.String(), " ms away")
	}
	a.WaitFor("three measured edges", `() => document.querySelectorAll('#network svg line.edge').length === 3 &&
		Array.from(document.querySelectorAll('#network .edge-label')).every((e) => / ms$/.test(e.textContent))`)
	a.WaitFor("one host in the picture", `() => document.querySelectorAll('#network .node-host').length === 1`)
	if k := webtest.Eval[int](a, `document.querySelectorAll('#member-list .badge-host').length`); k != 1 {
		t.Errorf("%d members marked host, want 1", k)
	}
	e2eScreenshot(a, "chat", "")
	a.Click("#group-details summary")
	a.WaitVisible("#network svg")
	webtest.Eval[bool](a, `(document.querySelector('#group-details').scrollIntoView({ block: 'end' }), true)`)
	e2eScreenshot(a, "members-network", "#side-panel")

	// Markup from bob is text in alice's browser.
	phase("markup is text")
	const evil = `<img src=x onerror=alert(1)>`
	e2eSend(bp, evil)
	// Wait for the message whatever it shows, then look at what it shows.
	a.WaitFor("a fourth committed message at alice", `() => document.querySelectorAll('#message-list .msg[data-state="committed"]').length === 4`)
	last := `document.querySelector('#message-list .msg[data-state="committed"]:last-child')`
	if got := webtest.Eval[string](a, last+`.querySelector('.msg-text').textContent`); got != evil {
		t.Errorf("alice shows bob's message as %q, want the literal text %q", got, evil)
	}
	if got := webtest.Eval[string](a, last+`.querySelector('.msg-author').textContent`); got != "bob" {
		t.Errorf("alice shows bob's message by %q", got)
	}
	if k := webtest.Eval[int](a, `document.querySelectorAll('#message-list img').length`); k != 0 {
		t.Errorf("alice's message list has %d <img> elements: message text became HTML", k)
	}
	if d := a.Dialogs(); len(d) != 0 {
		t.Errorf("alice's page opened dialogs: %v", d)
	}
	// (The page also fails the test at its end on any dialog, exception or
	// Content-Security-Policy violation it saw.)

	// Failover: the host's owner stops it from its UI; another browser
	// watches a new host appear.
	phase("failover")
	host := agreedHost(t, gid, nodes...)
	if pages[host] == nil {
		pages[host] = e2ePage(t, b, host)
	}
	hp := pages[host]
	var watcher *e2eNode // a node with a browser that stays up
	for _, n := range []*e2eNode{alice, bob} {
		if n != host {
			watcher = n
			break
		}
	}
	wp := pages[watcher]
	wp.WaitFor(host.name+" as host at "+watcher.name, memberIsHost, host.pub.String())
	hp.WaitText("#demo-toggle", "Stop my node")
	hp.Click("#demo-toggle")
	hp.WaitVisible("#banner-stopped")
	hp.WaitText("#node-state", "node stopped")
	hp.WaitText("#demo-toggle", "Start my node")
	if !webtest.Eval[bool](hp, `document.querySelector('#compose').disabled`) {
		t.Error("the compose box stays enabled on a stopped node")
	}
	wp.WaitFor("a new host at "+watcher.name, hostOtherThan, host.pub.String())
	wp.WaitFor(host.name+" offline at "+watcher.name, memberShows, host.pub.String(), "offline")
	wp.WaitFor("the new host in the picture", `(old) => { const h = document.querySelector('#network .node-host'); return !!h && h.dataset.publicId !== old; }`, host.pub.String())
	newHost := agreedHost(t, gid, nodes...)
	phase("new host: " + newHost.name)
	wp.WaitFor(newHost.name+" as host at "+watcher.name, memberIsHost, newHost.pub.String())
	const afterFailover = "Still here after the host went away."
	e2eSend(wp, afterFailover)
	e2eWaitMessage(wp, afterFailover, "committed", watcher.name)
	e2eScreenshot(wp, "failover", "")

	// No quorum: stop the third node too. The watcher alone cannot commit;
	// what it sends waits in the outbox, and it says so.
	phase("no quorum")
	var third *e2eNode
	for _, n := range nodes {
		if n != host && n != watcher {
			third = n
		}
	}
	if pages[third] == nil {
		pages[third] = e2ePage(t, b, third)
	}
	tp := pages[third]
	tp.Click("#demo-toggle")
	tp.WaitVisible("#banner-stopped")
	wp.WaitVisible("#banner-quorum")
	wp.WaitText("#banner-quorum", "2 of 3 voters offline")
	wp.WaitFor("no host in the members panel", `() => !document.querySelector('#member-list .badge-host')`)
	const queued = "Written while the group has no quorum."
	e2eSend(wp, queued)
	e2eWaitMessage(wp, queued, "tentative", watcher.name)
	wp.WaitText("#group-facts", "1 message of yours not in the order yet")
	e2eScreenshot(wp, "no-quorum", "")

	// A node comes back: the group has a quorum again and the queued
	// message commits, once.
	phase("quorum again")
	tp.Click("#demo-toggle")
	tp.WaitHidden("#banner-stopped")
	tp.WaitText("#node-state", "online")
	e2eWaitMessage(wp, queued, "committed", watcher.name)
	wp.WaitHidden("#banner-quorum")
	wp.WaitFor("nothing queued", `() => !document.querySelector('#group-facts').textContent.includes('not in the order yet')`)
	e2eWaitMessage(tp, queued, "committed", watcher.name)

	// And the old host, last: it catches up with what it missed.
	phase("the old host comes back")
	hp.Click("#demo-toggle")
	hp.WaitHidden("#banner-stopped")
	e2eWaitMessage(hp, afterFailover, "committed", watcher.name)
	e2eWaitMessage(hp, queued, "committed", watcher.name)
	const back = "Back again, and I missed nothing."
	e2eSend(hp, back)
	e2eWaitMessage(wp, back, "committed", host.name)
	for n, p := range pages {
		for _, text := range []string{afterFailover, queued} {
			if k := e2eCount(p, text); k != 1 {
				t.Errorf("%s shows %q %d times, want once", n.name, text, k)
			}
		}
	}
	// The same order everywhere: the committed lists agree.
	var want []string
	for _, n := range nodes {
		testutil.Eventually(t, e2eWait, n.name+" to commit everything", func() bool {
			ms, err := n.svc.Messages(gid)
			return err == nil && len(ms) > 0 && ms[len(ms)-1].Text == back && ms[len(ms)-1].State == node.StateCommitted
		})
		ms, _ := n.svc.Messages(gid)
		var got []string
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if want == nil {
			want = got
		} else if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s's messages are in another order:\n%v\nwant\n%v", n.name, got, want)
		}
	}
	phase("done")
}

// TestE2EAPIGuards checks the local API of a real node with plain HTTP
// requests: the token, the Origin and the Host header are each enforced.
func TestE2EAPIGuards(t *testing.T) {
	n := startE2ENode(t, "alice")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(n.ui, "http://"))
	bearer := "Bearer " + n.token
	tests := []struct {
		name         string
		method, path string
		host, origin string // "" keeps the default
		auth         string
		fetchSite    string
		want         int
	}{
		{"token", "GET", "/api/v1/status", "", "", bearer, "", http.StatusOK},
		{"no token", "GET", "/api/v1/status", "", "", "", "", http.StatusUnauthorized},
		{"wrong token", "GET", "/api/v1/status", "", "", "Bearer " + strings.Repeat("x", len(n.token)), "", http.StatusUnauthorized},
		{"no token, events", "GET", "/api/v1/events", "", "", "", "", http.StatusUnauthorized},
		{"no token, create group", "POST", "/api/v1/groups", "", "", "", "", http.StatusUnauthorized},
		{"own origin", "GET", "/api/v1/status", "", n.ui, bearer, "", http.StatusOK},
		{"foreign origin", "GET", "/api/v1/status", "", "http://evil.example", bearer, "", http.StatusForbidden},
		{"foreign origin, same port", "GET", "/api/v1/status", "", "http://evil.example:" + port, bearer, "", http.StatusForbidden},
		{"foreign origin, create group", "POST", "/api/v1/groups", "", "http://evil.example", bearer, "", http.StatusForbidden},
		{"foreign origin, page", "GET", "/", "", "http://evil.example", "", "", http.StatusForbidden},
		{"cross-site fetch", "GET", "/api/v1/status", "", "", bearer, "cross-site", http.StatusForbidden},
		{"localhost host", "GET", "/api/v1/status", "localhost:" + port, "", bearer, "", http.StatusOK},
		{"foreign host", "GET", "/api/v1/status", "evil.example:" + port, "", bearer, "", http.StatusForbidden},
		{"foreign host, no port", "GET", "/api/v1/status", "evil.example", "", bearer, "", http.StatusForbidden},
		{"foreign host, create group", "POST", "/api/v1/groups", "evil.example:" + port, "", bearer, "", http.StatusForbidden},
		{"foreign host, page", "GET", "/", "evil.example:" + port, "", "", "", http.StatusForbidden},
		{"page without token", "GET", "/", "", "", "", "", http.StatusOK},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, tt := range tests {
		var body io.Reader
		if tt.method == "POST" {
			body = strings.NewReader(`{"name": "created by ` + tt.name + `"}`)
		}
		req, err := http.NewRequest(tt.method, n.ui+tt.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if tt.method == "POST" {
			req.Header.Set("Content-Type", "application/json")
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		if tt.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", tt.fetchSite)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s answered %d, want %d: %.200s", tt.name, tt.method, tt.path, resp.StatusCode, tt.want, b)
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", tt.name, csp)
		}
		if tt.want == http.StatusOK && tt.path == "/api/v1/status" {
			var st node.Status
			if err := json.Unmarshal(b, &st); err != nil || st.PublicID != n.pub.String() || !st.Running {
				t.Errorf("%s: status %s (%v)", tt.name, b, err)
			}
		}
		if tt.want >= 400 {
			var e struct{ Error string }
			if json.Unmarshal(b, &e) != nil || e.Error == "" {
				t.Errorf("%s: error body %q, want {\"error\": ...}", tt.name, b)
			}
		}
	}
	// Refused requests changed nothing.
	if g := n.svc.Groups(); len(g) != 0 {
		t.Errorf("refused requests created groups: %v", g)
	}
	if strings.Contains(n.logs.String(), n.token) {
		t.Error("the token reached the node's log")
	}
}

// e2eScreenshot saves a PNG of p's viewport, or of the element sel, as
// name.png: into docs/img when DEMES_SCREENSHOTS=1 (the README shows them),
// else into the test's temporary directory, as a test artifact.
func e2eScreenshot(p *webtest.Page, name, sel string) {
	p.T.Helper()
	dir := p.T.TempDir()
	if os.Getenv(webtest.EnvScreenshots) == "1" {
		dir = filepath.Join("..", "docs", "img")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.T.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err != nil {
		p.T.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.T.Fatal(err)
	}
	p.T.Logf("screenshot: %s", path)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
