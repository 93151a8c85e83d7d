package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/demes/demes/api"
)

// upload posts data as a file named name through the API.
func upload(u *testUI, gid, name, contentType string, data []byte) *httptest.ResponseRecorder {
	r := newReq(u, http.MethodPost, groupRoute(api.RouteFiles, gid)+"?name="+url.QueryEscape(name), "")
	r.Body = http.NoBody
	if data != nil {
		r = newReq(u, http.MethodPost, groupRoute(api.RouteFiles, gid)+"?name="+url.QueryEscape(name), string(data))
	}
	r.Header.Set("Content-Type", contentType)
	return serve(u, r)
}

// TestFileUploadDownload: a file posted through the API is a message with
// its attachment, and downloads byte for byte with the headers that keep a
// browser from running it; an image shows inline, other files are saved;
// a file still arriving is a 409 with its progress; a file over the limit
// a 413 with a hint; a form's content type is refused.
func TestFileUploadDownload(t *testing.T) {
	_, gid, u := friendsUI(t)
	page := []byte("<html><script>alert(1)</script></html>")
	rec := upload(u, gid, "page.html", "application/octet-stream", page)
	if rec.Code != 200 {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body.String())
	}
	var m api.Message
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Attachment == nil || m.Attachment.Name != "page.html" || m.Attachment.Size != int64(len(page)) || m.Attachment.Type != "application/octet-stream" {
		t.Fatalf("the message's attachment is %+v", m.Attachment)
	}
	get := func(id string) *httptest.ResponseRecorder {
		// As an <img> or a link does: the token in the query.
		r := newReq(u, http.MethodGet, api.FilePath(gid, id)+"?token="+url.QueryEscape(u.Token), "")
		r.Header.Del("Authorization")
		return serve(u, r)
	}
	rec = get(m.ID)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), page) {
		t.Fatalf("download: %d %q", rec.Code, rec.Body.String())
	}
	// A message without a file: 404, and the hint is about the message id
	// (it was about the group id, which was right).
	none := get(strings.Repeat("0f", 16))
	if e := errorBody(t, none); none.Code != 404 || strings.Contains(e.Hint, "group id") || !strings.Contains(e.Hint, "message id") {
		t.Errorf("the file of a message without one: %d %+v", none.Code, e)
	}
	h := rec.Header()
	if h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
		!strings.Contains(h.Get("Content-Disposition"), `filename=page.html`) || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("an HTML file is served with %v", h)
	}

	png := []byte("\x89PNG\r\n\x1a\nfake")
	rec = upload(u, gid, "cat.png", "image/png", png)
	json.Unmarshal(rec.Body.Bytes(), &m)
	rec = get(m.ID)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/png" || !strings.HasPrefix(rec.Header().Get("Content-Disposition"), "inline") {
		t.Fatalf("an image is served %d with %v", rec.Code, rec.Header())
	}

	fakeFiles.Lock()
	fakeFiles.arriving[m.ID] = true
	fakeFiles.Unlock()
	rec = get(m.ID)
	var p api.FileProgress
	if json.Unmarshal(rec.Body.Bytes(), &p); rec.Code != http.StatusConflict || p.Size == 0 || p.Received == 0 || p.Hint == "" {
		t.Fatalf("a file still arriving: %d %s", rec.Code, rec.Body.String())
	}

	rec = upload(u, gid, "big.bin", "application/octet-stream", make([]byte, fakeFileLimit+1))
	if e := errorBody(t, rec); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(e.Error, "the limit is") || e.Hint == "" {
		t.Fatalf("a file over the limit: %d %s", rec.Code, rec.Body.String())
	}
	for _, ct := range []string{"text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"} {
		if rec := upload(u, gid, "form.txt", ct, []byte("x")); rec.Code != http.StatusUnsupportedMediaType {
			t.Errorf("an upload as %s: %d", ct, rec.Code)
		}
	}
	if rec := upload(u, gid, "", "application/octet-stream", []byte("x")); rec.Code != 400 {
		t.Errorf("an upload without a name: %d", rec.Code)
	}
	if rec := upload(u, gid, "../x", "application/octet-stream", []byte("x")); rec.Code != 400 {
		t.Errorf("an upload named ../x: %d", rec.Code)
	}
}
