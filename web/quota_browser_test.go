package web

import (
	"strings"
	"testing"

	"github.com/demes/demes/web/webtest"
)

// TestBrowserHeldByQuota: a message the sender's quota holds back says so
// on its clock, not that it waits for the group to be online (which sends a
// person to look at the network); once the quota allows, it goes out, and
// the other members see it once.
func TestBrowserHeldByQuota(t *testing.T) {
	w, gid := newFriends(t)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	b := openUI(t, startUI(t, w.node("bob"), nil))

	w.setOverQuota(gid, true)
	const text = "one message too many"
	send(a, text)
	waitMessage(a, text, "tentative", "alice")
	label := webtest.Eval[string](a, `document.querySelector('#message-list .msg[data-state="tentative"] .msg-state svg').getAttribute('aria-label')`)
	if !strings.Contains(label, "over your quota") || strings.Contains(label, "online") {
		t.Errorf("the held message says %q, want that the quota holds it back", label)
	}

	w.setOverQuota(gid, false)
	waitMessage(a, text, "committed", "alice")
	waitMessage(b, text, "committed", "alice")
	if n := webtest.Eval[int](b, `[...document.querySelectorAll('#message-list .msg-text')].filter((e) => e.textContent === '`+text+`').length`); n != 1 {
		t.Errorf("bob shows the message %d times, want once", n)
	}
}
