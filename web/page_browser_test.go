package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// TestBrowserLoadOlder: a group opens on its newest page of messages; older
// ones come a page at a time on request, in order, without duplicates, and
// the button goes once the history is all there.
func TestBrowserLoadOlder(t *testing.T) {
	w, gid := newFriends(t)
	const total = 250 // a page is 200
	for k := range total {
		if _, err := w.node("bob").Send(context.Background(), gid, fmt.Sprintf("m%03d", k), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	a := openUI(t, startUI(t, w.node("alice"), nil))
	count := "document.querySelectorAll('#message-list .msg').length"
	a.WaitFor("the newest page", `() => document.querySelectorAll('#message-list .msg').length === 200`)
	a.WaitVisible("#load-older")
	if first := webtest.Eval[string](a, "document.querySelector('#message-list .msg .msg-text').textContent"); first != "m050" {
		t.Errorf("the first message shown is %q, want m050", first)
	}
	a.Click("#load-older")
	a.WaitFor("the older page", `() => document.querySelectorAll('#message-list .msg').length === 250`)
	a.WaitHidden("#load-older")
	texts := webtest.Eval[[]string](a, "Array.from(document.querySelectorAll('#message-list .msg .msg-text')).map((e) => e.textContent)")
	for k, got := range texts {
		if want := fmt.Sprintf("m%03d", k); got != want {
			t.Fatalf("message %d shows %q, want %q (of %d)", k, got, want, webtest.Eval[int](a, count))
		}
	}
}
