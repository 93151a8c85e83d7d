package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/demes/demes/web/webtest"
)

// attach picks the file at path in p's attach button's file chooser.
func attach(p *webtest.Page, path string) {
	p.T.Helper()
	p.Do("pick a file", chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), []string{path}))
}

// TestBrowserAttachments: alice attaches an image with the button: bob's
// page shows its thumbnail (loaded from the node with the token in the
// query) and a download link with its name and size that downloads the
// file; a file that is not an image shows only the link; a file over the
// node's limit is refused in words, and the progress bar is gone after
// each upload.
func TestBrowserAttachments(t *testing.T) {
	w, _ := newFriends(t)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	b := openUI(t, startUI(t, w.node("bob"), nil))
	a.WaitText("#chat-title", "friends")
	b.WaitText("#chat-title", "friends")
	if n := count(a, `label[for="attach-input"], button#attach-button[aria-label="Attach a file"]`); n != 1 {
		t.Fatalf("%d attach buttons with a label", n)
	}

	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := 0; x < 40; x++ {
		img.Set(x, x%30, color.RGBA{200, 30, 30, 255})
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	cat := filepath.Join(dir, "cat.png")
	os.WriteFile(cat, buf.Bytes(), 0o600)
	attach(a, cat)

	thumb := `#message-list .msg-file img.msg-thumb[alt="cat.png"]`
	b.WaitFor("the thumbnail loaded", `(sel) => { const i = document.querySelector(sel); return !!i && i.complete && i.naturalWidth === 40; }`, thumb)
	a.WaitFor("the thumbnail loaded on alice's page", `(sel) => { const i = document.querySelector(sel); return !!i && i.complete && i.naturalWidth === 40; }`, thumb)
	label := "cat.png (" + fmtSizeGo(buf.Len()) + ")"
	b.WaitText("#message-list .msg-file a.msg-file-link", label)
	a.WaitHidden("#upload-progress")
	if !webtest.Eval[bool](a, `document.querySelector('#upload-error').hidden`) {
		t.Fatalf("alice's page shows an upload error: %s", webtest.Eval[string](a, `document.querySelector('#upload-error').textContent`))
	}
	// The link downloads the file itself.
	got := webtest.Await[int](b, `fetch(document.querySelector('#message-list .msg-file a.msg-file-link').href).then((r) => r.arrayBuffer()).then((b) => b.byteLength)`)
	if got != buf.Len() {
		t.Fatalf("the link downloads %d bytes, the file has %d", got, buf.Len())
	}

	notes := filepath.Join(dir, "notes.txt")
	os.WriteFile(notes, []byte("plain <b>text</b>"), 0o600)
	attach(a, notes)
	b.WaitText(`#message-list li:last-child .msg-file a.msg-file-link`, "notes.txt (17 bytes)")
	if n := count(b, `#message-list li:last-child img`); n != 0 {
		t.Errorf("a text file shows %d images", n)
	}

	big := filepath.Join(dir, "big.bin")
	os.WriteFile(big, make([]byte, fakeFileLimit+1), 0o600)
	attach(a, big)
	a.WaitVisible("#upload-error")
	a.WaitFor("a refusal that names the limit", `() => /Could not send big\.bin: .*limit/.test(document.querySelector('#upload-error').textContent)`)
	a.WaitHidden("#upload-progress")
}

// fmtSizeGo is files.js's fmtSize for sizes under a megabyte.
func fmtSizeGo(n int) string {
	if n >= 1<<10 {
		return itoa((n+512)>>10) + " KB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int) string { return fmt.Sprint(n) }

// TestBrowserAttachmentArriving: while the node fetches a file, the page
// shows how far it has come, and keeps asking; once the node holds it, the
// download link replaces the count.
func TestBrowserAttachmentArriving(t *testing.T) {
	w, gid := newFriends(t)
	bob := w.node("bob")
	m, err := bob.SendFile(context.Background(), gid, "notes.txt", "text/plain", 4000, bytes.NewReader(bytes.Repeat([]byte("n"), 4000)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The node holds a quarter of it, then three quarters, then all.
	progress := func(received int64, ready bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := range w.groups[gid].log {
			if l := &w.groups[gid].log[i]; l.ID == m.ID {
				l.Attachment.Received, l.Attachment.Ready = received, ready
			}
		}
	}
	progress(1000, false)
	a := openUI(t, startUI(t, w.node("alice"), nil))
	a.WaitText("#message-list .msg-file", "notes.txt (4 KB) arriving… 25%")
	progress(3000, false)
	a.WaitText("#message-list .msg-file", "notes.txt (4 KB) arriving… 75%")
	progress(0, true)
	a.WaitText(`#message-list .msg-file a.msg-file-link[download="notes.txt"]`, "notes.txt (4 KB)")
}

// TestBrowserAttachmentSkipped: a file the node did not fetch by itself
// (its sender is over the node's daily allowance) offers to get it; asking
// for it makes the node fetch it, and the link comes.
func TestBrowserAttachmentSkipped(t *testing.T) {
	w, gid := newFriends(t)
	m, err := w.node("bob").SendFile(context.Background(), gid, "big.bin", "application/octet-stream", 3000, bytes.NewReader(bytes.Repeat([]byte("b"), 3000)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	set := func(ready, skipped bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := range w.groups[gid].log {
			if l := &w.groups[gid].log[i]; l.ID == m.ID {
				l.Attachment.Ready, l.Attachment.Skipped = ready, skipped
			}
		}
	}
	set(false, true)
	fakeFiles.Lock()
	fakeFiles.onOpen = func(id string) {
		if id == m.ID {
			set(true, false) // the node fetches it once asked
		}
	}
	fakeFiles.Unlock()
	t.Cleanup(func() {
		fakeFiles.Lock()
		fakeFiles.onOpen = nil
		fakeFiles.Unlock()
	})
	a := openUI(t, startUI(t, w.node("alice"), nil))
	a.WaitText("#message-list .msg-file", "not fetched: its sender sent many files today.")
	a.Click(`#message-list .msg-file button[aria-label="Get big.bin (3 KB)"]`)
	a.WaitText(`#message-list .msg-file a.msg-file-link[download="big.bin"]`, "big.bin (3 KB)")
}
