package web

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/demes/demes/api"
)

// Attachments: POST RouteFiles uploads a file as a message, GET RouteFile
// downloads one (docs/PROTOCOL.md, "Attachments").

// fileCSP is the policy of a downloaded file: a sandbox, so that a file the
// browser opens runs nothing and reaches nothing, whatever it holds.
const fileCSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"

// inlineTypes are the media types a download shows in the page (images the
// UI shows as thumbnails); every other file is an attachment to save.
var inlineTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// formTypes are the content types an HTML form can send: an upload may not
// use them, so that no page elsewhere can post a file (the token check
// stops that too).
var formTypes = map[string]bool{"application/x-www-form-urlencoded": true, "multipart/form-data": true, "text/plain": true}

// isFileUpload reports whether r is an upload of a file with a content
// type no form can send.
func isFileUpload(r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, api.Prefix+"/groups/") || !strings.HasSuffix(r.URL.Path, "/files") {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && !formTypes[mt]
}

// sendFile answers POST /api/v1/groups/{group_id}/files?name=NAME.
func (h *handler) sendFile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	if strings.TrimSpace(name) == "" {
		writeError(w, http.StatusBadRequest, "the file needs a name", "add ?name=FILE_NAME to the address")
		return
	}
	mediaType := q.Get("type")
	if mediaType == "" {
		mediaType, _, _ = mime.ParseMediaType(r.Header.Get("Content-Type"))
	}
	if mediaType == "application/octet-stream" {
		mediaType = ""
	}
	wait := defaultSendWait
	if t := q.Get("timeout_ms"); t != "" {
		ms, err := strconv.Atoi(t)
		if err != nil || ms < 0 {
			writeError(w, http.StatusBadRequest, "timeout_ms is not a number of milliseconds", "leave it out for the default of 10 s")
			return
		}
		wait, _ = sendWait(w, int64(ms)) // not negative: refused above
	}
	m, err := h.backend.SendFile(r.Context(), mux.Vars(r)[api.GroupIDVar], name, mediaType, r.ContentLength, r.Body, wait)
	if errors.Is(err, api.ErrTooLarge) {
		// Close the connection rather than read the rest of the file.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, plain(err, api.ErrTooLarge), "send a smaller file, or share it another way")
		return
	}
	if err != nil {
		h.backendError(w, r, "send the file", err)
		return
	}
	writeSent(w, m)
}

// file answers GET /api/v1/groups/{group_id}/files/{message_id}: the
// decrypted file, as it is decrypted.
func (h *handler) file(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	a, rc, err := h.backend.OpenFile(r.Context(), v[api.GroupIDVar], v[api.MessageIDVar])
	var nr *api.NotReadyError
	switch {
	case errors.As(err, &nr):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusConflict, api.FileProgress{
			Error:    fmt.Sprintf("the file is still arriving on this node (%d of %d bytes)", nr.Received, nr.Size),
			Hint:     "try again in a moment; it comes from the members who hold it",
			Received: nr.Received, Size: nr.Size,
		})
		return
	case errors.Is(err, api.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, plain(err, api.ErrTooLarge), "this node does not fetch files over its limit (demes serve --max-attachment)")
		return
	case err != nil:
		h.backendError(w, r, "download the file", err)
		return
	}
	defer rc.Close()
	hd := w.Header()
	hd.Set("Content-Security-Policy", fileCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "private, no-store")
	disposition := "attachment"
	if inlineTypes[a.Type] {
		disposition = "inline"
		hd.Set("Content-Type", a.Type)
	} else {
		hd.Set("Content-Type", "application/octet-stream")
	}
	hd.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": a.Name}))
	hd.Set("Content-Length", strconv.FormatInt(a.Size, 10))
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		// The status is sent: the short body tells the client.
		h.log.Warn().Err(err).Str("path", r.URL.Path).Msg("a download failed midway")
	}
}
