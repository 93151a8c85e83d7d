package web

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBrowserAttachmentAfterRestart: a file's link and thumbnail carry the
// page's session, which ends with the node's process; once the node is
// back and the page has a new session, the link shown before still
// downloads the file.
func TestBrowserAttachmentAfterRestart(t *testing.T) {
	w, _ := newFriends(t)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	r := startRestartableUI(t, w.node("bob"))
	b := openUI(t, r.testUI)
	a.WaitText("#chat-title", "friends")
	b.WaitText("#chat-title", "friends")
	notes := filepath.Join(t.TempDir(), "notes.txt")
	const text = "seventeen bytes!!"
	if err := os.WriteFile(notes, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	attach(a, notes)
	link := `#message-list .msg-file a.msg-file-link[download="notes.txt"]`
	b.WaitText(link, "notes.txt (17 bytes)")

	r.stop()
	b.WaitText("#node-state", "node not answering")
	r.restart()
	b.WaitText("#node-state", "online")
	b.WaitFor("the link to download the file", `(sel) => {
		const l = document.querySelector(sel);
		if (!l) return false;
		if (!window.__probe) {
			window.__probe = fetch(l.href).then((r) => r.text()).then((s) => { window.__got = s; window.__probe = null; });
		}
		return window.__got === `+"`"+text+"`"+`;
	}`, link)
}
