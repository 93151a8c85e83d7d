package web

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/gorilla/mux"

	"github.com/demes/demes/api"
	"github.com/demes/demes/transcript"
)

// unsafeFileChars are the characters kept out of a download's file name.
var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// transcript answers GET /api/v1/groups/{group_id}/transcript, with the
// query from= and to= for a range.
func (h *handler) transcript(w http.ResponseWriter, r *http.Request) {
	gid := mux.Vars(r)[api.GroupIDVar]
	q := r.URL.Query()
	rng := api.TranscriptRange{From: q.Get("from"), To: q.Get("to")}
	doc, err := h.backend.Transcript(r.Context(), gid, rng)
	if err != nil {
		// A range the node cannot export: what is wrong with it, and
		// how to name one, rather than "failed to".
		const hint = "name each end of the range by a message id or a time (as the message list shows them), or by a log index"
		switch {
		case rng == (api.TranscriptRange{}):
		case errors.Is(err, transcript.ErrEmptyRange), errors.Is(err, transcript.ErrNoSuchMessage):
			writeError(w, http.StatusNotFound, plain(err, api.ErrNotFound), hint)
			return
		case errors.Is(err, api.ErrInvalid):
			writeError(w, http.StatusBadRequest, plain(err, api.ErrInvalid), hint)
			return
		}
		h.backendError(w, r, "export transcript", err)
		return
	}
	name := unsafeFileChars.ReplaceAllString(gid, "")
	if len(name) > 16 {
		name = name[:16]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="demes-transcript-%s.json"`, name))
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}
