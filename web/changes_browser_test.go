package web

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// msgSel is the CSS selector of something in the message id's list item.
func msgSel(id, inner string) string {
	return fmt.Sprintf(`#message-list li[data-id=%q] %s`, id, inner)
}

// messageID waits until p lists a message with text, and returns its id.
func messageID(p *webtest.Page, text string) string {
	p.T.Helper()
	p.WaitFor("a message "+text, `(text) => Array.from(document.querySelectorAll('#message-list .msg')).some((li) =>
		li.querySelector('.msg-text').textContent === text && li.dataset.state === 'committed')`, text)
	return webtest.Eval[string](p, fmt.Sprintf(`Array.from(document.querySelectorAll('#message-list .msg')).find((li) =>
		li.querySelector('.msg-text').textContent === %s).dataset.id`, jsString(text)))
}

// TestBrowserReplyReactEditDelete: bob replies to alice's message (the
// reply quotes it, on both sides), reacts to it, and alice reacts too; she
// edits it in the message box (both see the new text, marked edited) and
// deletes it after confirming (both see "Message deleted", and the reply's
// quote says so). Bob has no Edit or Delete on her message, and carol's
// reaction, sent through her node, shows live.
func TestBrowserReplyReactEditDelete(t *testing.T) {
	w, gid := newFriends(t)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	b := openUI(t, startUI(t, w.node("bob"), nil))
	a.WaitText("#chat-title", "friends")
	b.WaitText("#chat-title", "friends")

	send(a, "picnic at noon?")
	id := messageID(b, "picnic at noon?")

	// A reply, quoted above the box, then above the sent message.
	b.Click(msgSel(id, `button[aria-label="Reply to alice"]`))
	b.WaitText("#draft-text", "Replying to alice: picnic at noon?")
	send(b, "yes, I bring the blanket")
	b.WaitHidden("#draft-bar")
	reply := messageID(a, "yes, I bring the blanket")
	a.WaitText(msgSel(reply, ".msg-quote"), "Reply to you: picnic at noon?")
	b.WaitText(msgSel(reply, ".msg-quote"), "Reply to alice: picnic at noon?")

	// Reactions: bob picks one, alice adds hers by pressing it.
	b.Click(msgSel(id, `button[aria-label="React to this message"]`))
	b.Click(msgSel(id, `button[aria-label="React with 🎉"]`))
	a.WaitText(msgSel(id, ".reaction"), "🎉 1")
	a.Click(msgSel(id, ".reaction"))
	a.WaitFor("alice's reaction pressed", `(sel) => { const r = document.querySelector(sel); return !!r && r.textContent === '🎉 2' && r.getAttribute('aria-pressed') === 'true'; }`, msgSel(id, ".reaction"))
	b.WaitText(msgSel(id, ".reaction"), "🎉 2")
	if _, err := w.node("carol").Post(context.Background(), gid, reaction(t, id, "👍"), time.Second); err != nil {
		t.Fatal(err)
	}
	b.WaitText(msgSel(id, ".msg-reactions"), "👍 1")

	// Only the author edits or deletes.
	for _, what := range []string{"Edit", "Delete"} {
		if n := count(b, msgSel(id, `button[aria-label="`+what+` your message"]`)); n != 0 {
			t.Errorf("bob has %d %s buttons on alice's message", n, what)
		}
	}
	a.Click(msgSel(id, `button[aria-label="Edit your message"]`))
	a.WaitText("#draft-text", "Editing your message")
	if v := webtest.Eval[string](a, "document.querySelector('#compose').value"); v != "picnic at noon?" {
		t.Errorf("the box holds %q to edit, want the message's text", v)
	}
	webtest.Eval[string](a, "document.querySelector('#compose').value = ''")
	send(a, "picnic at one?")
	waitMessage(b, "picnic at one?", "committed", "alice")
	b.WaitText(msgSel(id, ".msg-edited"), "edited")
	b.WaitText(msgSel(reply, ".msg-quote"), "Reply to alice: picnic at one?")
	if n := count(a, "#message-list .msg"); n != 2 {
		t.Errorf("alice lists %d messages after the edit, want 2 (an edit is no message of its own)", n)
	}

	a.Click(msgSel(id, `button[aria-label="Delete your message"]`))
	a.WaitText(msgSel(id, ".msg-confirm"), "Delete this message for everyone?")
	a.Click(msgSel(id, `button[aria-label="Yes, delete it"]`))
	for _, p := range []*webtest.Page{a, b} {
		p.WaitText(msgSel(id, ".msg-text"), "Message deleted")
		p.WaitText(msgSel(reply, ".msg-quote"), "message deleted")
		if n := count(p, msgSel(id, ".msg-reactions")) + count(p, msgSel(id, ".msg-actions button")); n != 0 {
			t.Errorf("a deleted message still shows %d reactions or buttons", n)
		}
	}
	if got := webtest.Eval[string](b, "document.querySelector('#change-error').hidden ? '' : document.querySelector('#change-error').textContent"); got != "" {
		t.Errorf("bob's page shows an error: %q", got)
	}
}

// TestBrowserSearch: a search of the open group lists the messages that
// hold the text, the newest first, with who wrote each; nothing found says
// so; another group closes the results.
func TestBrowserSearch(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	for _, text := range []string{"lunch at noon?", "the blue door", "see you there", "the Blue Door again"} {
		if _, err := bob.Send(context.Background(), gid, text, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	a := openUI(t, startUI(t, alice, nil))
	a.WaitText("#chat-title", "friends")
	webtest.Eval[bool](a, `(() => { document.querySelector('#search-text').value = 'blue door'; return true; })()`)
	a.Click("#search-submit")
	a.WaitText("#search-summary", "2 messages with “blue door”, newest first.")
	if got := webtest.Eval[string](a, `Array.from(document.querySelectorAll('#search-list .msg-text')).map((e) => e.textContent).join(' | ')`); got != "the Blue Door again | the blue door" {
		t.Errorf("results %q", got)
	}
	webtest.Eval[bool](a, `(() => { document.querySelector('#search-text').value = 'nothing like it'; return true; })()`)
	a.Click("#search-submit")
	a.WaitText("#search-summary", "No message holds “nothing like it”.")
	a.Click("#search-close")
	a.WaitHidden("#search-results")
}

// TestBrowserLinks: web addresses in a message are links that open apart
// (no referrer, no opener); nothing else is: no other scheme, and the text
// around them stays text. (The test never follows a link.)
func TestBrowserLinks(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob := w.node("alice"), w.node("bob")
	const text = "minutes at https://example.org/notes?id=7, and javascript:alert(1) or <b>bold</b>."
	if _, err := bob.Send(context.Background(), gid, text, time.Second); err != nil {
		t.Fatal(err)
	}
	a := openUI(t, startUI(t, alice, nil))
	a.WaitFor("the message", `() => Array.from(document.querySelectorAll('#message-list .msg-text')).some((e) => e.textContent.includes('minutes at'))`)
	got := webtest.Eval[string](a, `(() => {
		const m = Array.from(document.querySelectorAll('#message-list .msg-text')).find((e) => e.textContent.includes('minutes at'));
		const links = Array.from(m.querySelectorAll('a')).map((l) => l.getAttribute('href') + ' ' + l.target + ' ' + l.rel);
		return JSON.stringify({ text: m.textContent, links, bold: m.querySelectorAll('b').length });
	})()`)
	want := `{"text":"` + strings.ReplaceAll(text, `"`, `\"`) + `","links":["https://example.org/notes?id=7 _blank noopener noreferrer nofollow"],"bold":0}`
	if got != want {
		t.Errorf("the message renders as\n%s\nwant\n%s", got, want)
	}
}

// TestBrowserLegacyReactions: reactions in words ("+1", "yes"), which an
// earlier DeMeS sent and the node no longer sends, show on the message.
// One's own is a button that takes it back, as an emoji's is; someone
// else's is no button (pressing it was a request the API refuses with a
// 400) and says why. An emoji reaction beside them is still a button that
// gives the same one.
func TestBrowserLegacyReactions(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob, carol := w.node("alice"), w.node("bob"), w.node("carol")
	m, err := carol.Send(context.Background(), gid, "shall we meet on friday?", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		n     *fakeNode
		emoji string
	}{{carol, "+1"}, {alice, "yes"}, {bob, "🎉"}} {
		if _, err := r.n.postAsOld(context.Background(), gid, reaction(t, m.ID, r.emoji), time.Second); err != nil {
			t.Fatalf("%s's reaction %q: %v", r.n.name, r.emoji, err)
		}
	}
	a := openUI(t, startUI(t, alice, nil))
	a.WaitText(msgSel(m.ID, ".msg-reactions"), "🎉 1")
	chips := func() string {
		return webtest.Eval[string](a, fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).map((e) =>
			e.tagName.toLowerCase() + ' ' + (e.getAttribute('aria-label') || e.textContent)).join('\n')`, jsString(msgSel(m.ID, ".msg-reactions > *"))))
	}
	got := chips()
	for _, w := range []string{
		`span +1 1 reaction in words, from an earlier DeMeS: reactions are emoji now, so this one cannot be given again`,
		`button yes 1 reaction in words, from an earlier DeMeS, including yours: press to take yours back`,
		`button 🎉 1 reaction: press to react with it too`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("the reactions are\n%s\nwant among them\n%s", got, w)
		}
	}
	if n := count(a, msgSel(m.ID, "button.reaction")); n != 2 {
		t.Errorf("%d reaction buttons, want 2: alice's own in words and bob's emoji", n)
	}

	// Alice takes hers back, with no error.
	a.Click(msgSel(m.ID, `button[aria-label^="yes 1 reaction"]`))
	a.WaitFor("alice's reaction gone", `(sel) => { const r = document.querySelector(sel); return !!r && !r.textContent.includes('yes'); }`, msgSel(m.ID, ".msg-reactions"))
	// Bob's emoji she gives too, as before.
	a.Click(msgSel(m.ID, `button[aria-label^="🎉 1 reaction"]`))
	a.WaitText(msgSel(m.ID, ".msg-reactions"), "🎉 2")
	if got := webtest.Eval[string](a, "document.querySelector('#change-error').hidden ? '' : document.querySelector('#change-error').textContent"); got != "" {
		t.Errorf("alice's page shows an error: %q", got)
	}
	if got := chips(); !strings.Contains(got, "span +1 1 ") {
		t.Errorf("carol's reaction in words is no longer shown as one:\n%s", got)
	}
}
