package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/demes/demes/api"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/web/webtest"
)

// TestE2EAttachments: on three real nodes, alice attaches a 10 MB file and
// an image with the button in her browser; bob's page shows the file's
// link once his node has fetched it, and downloading it through the link
// gives the same bytes; the image shows as a thumbnail; carol's node holds
// the same file.
func TestE2EAttachments(t *testing.T) {
	b := webtest.NewBrowser(t) // skips without a browser, unless $CI is set
	alice, bob, carol, g := e2eThree(t, "files")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, bp := e2ePage(t, b, alice), e2ePage(t, b, bob)
	a.WaitText("#chat-title", "files")
	bp.WaitText("#chat-title", "files")

	dir := t.TempDir()
	data := make([]byte, 10<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>12)
	}
	report := filepath.Join(dir, "report.bin")
	if err := os.WriteFile(report, data, 0o600); err != nil {
		t.Fatal(err)
	}
	a.Do("pick the file", chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), []string{report}))
	link := `#message-list .msg-file a.msg-file-link[download="report.bin"]`
	bp.WaitText(link, "report.bin (10.0 MB)")
	a.WaitHidden("#upload-progress")
	sum := sha256.Sum256(data)
	got := webtest.Await[string](bp, `fetch(document.querySelector(`+jsonString(link)+`).href)
		.then((r) => r.arrayBuffer()).then((b) => crypto.subtle.digest('SHA-256', b))
		.then((d) => Array.from(new Uint8Array(d)).map((x) => x.toString(16).padStart(2, '0')).join(''))`)
	if got != hex.EncodeToString(sum[:]) {
		t.Fatalf("bob's download has SHA-256 %s, the file %x", got, sum)
	}
	// Carol's node fetched it too.
	id := webtest.Eval[string](bp, `document.querySelector(`+jsonString(link)+`).closest('.msg').dataset.id`)
	testutil.Eventually(t, e2eWait, "carol's node holds the file", func() bool {
		_, r, err := carol.svc.OpenFile(ctx, g.GroupID, id)
		var nr *api.NotReadyError
		if errors.As(err, &nr) || errors.Is(err, api.ErrNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatal("carol's node holds another file")
		}
		return true
	})

	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := 0; x < 64; x++ {
		img.Set(x, x%48, color.RGBA{20, 120, 200, 255})
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	photo := filepath.Join(dir, "photo.png")
	if err := os.WriteFile(photo, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Do("pick the image", chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), []string{photo}))
	bp.WaitFor("the thumbnail", `() => { const i = document.querySelector('#message-list img.msg-thumb[alt="photo.png"]'); return !!i && i.complete && i.naturalWidth === 64; }`)
}
