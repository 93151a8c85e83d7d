package web

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// TestBrowserLoadOlder: a group opens on its newest page of messages, and
// the page asks the node for no more than that; scrolling to the top loads
// the older page above, with the message the reader was looking at staying
// where it was on screen; a message that arrives while the older page is on
// its way shows once, at the end; no message is lost or repeated; and once
// the history is all there, nothing more is offered.
func TestBrowserLoadOlder(t *testing.T) {
	w, gid := newFriends(t)
	const total, page = 150, 100 // page: PAGE in messages.js
	for k := range total {
		if _, err := w.node("bob").Send(context.Background(), gid, fmt.Sprintf("m%03d", k), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	alice := w.node("alice")
	a := openUI(t, startUI(t, alice, nil))
	a.WaitFor("the newest page", `() => document.querySelectorAll('#message-list .msg').length === 100`)
	if first := webtest.Eval[string](a, "document.querySelector('#message-list .msg .msg-text').textContent"); first != "m050" {
		t.Errorf("the first message shown is %q, want m050", first)
	}
	w.mu.Lock()
	if alice.largestPage != page {
		t.Errorf("the page asked for at most %d messages at once, want %d", alice.largestPage, page)
	}
	// A message arrives while the older page is on its way.
	var once sync.Once
	alice.beforePage = func() {
		once.Do(func() {
			if _, err := w.node("bob").Send(context.Background(), gid, "meanwhile", time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	w.mu.Unlock()

	// The reader scrolls to the top: where does m050 stand then?
	const top = `() => { const l = document.getElementById('message-list');
		const m = Array.from(l.querySelectorAll('.msg')).find((li) => li.querySelector('.msg-text').textContent === 'm050');
		return Math.round(m.getBoundingClientRect().top - l.getBoundingClientRect().top); }`
	at := webtest.Eval[int](a, `(() => { document.getElementById('message-list').scrollTop = 0; return (`+top+`)(); })()`)
	a.WaitFor("the older page and the new message", `() => document.querySelectorAll('#message-list .msg').length === 151`)
	if now := webtest.Eval[int](a, "("+top+")()"); now != at {
		t.Errorf("m050 moved from %d px to %d px below the top of the list as the older page came in", at, now)
	}
	texts := webtest.Eval[[]string](a, "Array.from(document.querySelectorAll('#message-list .msg .msg-text')).map((e) => e.textContent)")
	for k, got := range texts {
		want := fmt.Sprintf("m%03d", k)
		if k == total {
			want = "meanwhile"
		}
		if got != want {
			t.Fatalf("message %d shows %q, want %q (of %d)", k, got, want, len(texts))
		}
	}
	a.WaitHidden("#load-older")
}
