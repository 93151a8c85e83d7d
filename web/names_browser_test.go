package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// TestBrowserNameBidiControls: a member whose display name holds a
// right-to-left override ("\u202eecila", drawn "alice") is shown by the
// letters it has, with no control left in the page to reorder the name,
// or what follows it on the line, into another.
func TestBrowserNameBidiControls(t *testing.T) {
	w, gid := newFriends(t)
	zed := w.joinAs(t, gid, "zed", "\u202eecila")
	zed.Send(context.Background(), gid, "hello from zed", time.Second)

	p := openUI(t, startUI(t, w.node("alice"), nil))
	waitMessage(p, "hello from zed", "committed", "ecila")
	p.WaitFor("zed in the member list", `() => [...document.querySelectorAll('#member-list .member-name')].some((e) => e.textContent === 'ecila')`)
	for _, sel := range []string{"#message-list", "#member-list"} {
		if txt := webtest.Eval[string](p, `document.querySelector('`+sel+`').textContent`); strings.ContainsAny(txt, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069") {
			t.Errorf("%s holds a bidirectional control: %q", sel, txt)
		}
	}
}
