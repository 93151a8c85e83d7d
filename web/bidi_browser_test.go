package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/web/webtest"
)

// TestBrowserReactionBidi: a reaction is any short text without spaces or
// control characters, so a member may react with "🎉" followed by a
// right-to-left override and digits. Drawn beside the count on one chip,
// the override reverses what follows: with one reaction, "🎉‮01 1" reads
// "🎉1 10", ten reactions where there is one. The page shows reactions
// without bidirectional controls, as it shows names.
func TestBrowserReactionBidi(t *testing.T) {
	w, gid := newFriends(t)
	alice, carol := w.node("alice"), w.node("carol")
	m, err := alice.Send(context.Background(), gid, "who comes on friday?", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.postAsOld(context.Background(), gid, reaction(t, m.ID, "🎉\u202e01"), time.Second); err != nil {
		t.Fatalf("carol's reaction: %v", err)
	}
	a := openUI(t, startUI(t, alice, nil))
	a.WaitText(msgSel(m.ID, ".msg-reactions"), "1")
	got := webtest.Eval[string](a, fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).map((e) =>
		e.textContent + '|' + (e.getAttribute('aria-label') || '')).join('\n')`, jsString(msgSel(m.ID, ".msg-reactions > *"))))
	for _, r := range got {
		if (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c {
			t.Fatalf("a reaction chip holds the bidirectional control %U, which draws its count reversed: %q", r, got)
		}
	}
}
