package web

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/demes/demes/api"
)

// markRead answers POST on RouteRead: the person has read the group through
// the message in the route.
func (h *handler) markRead(w http.ResponseWriter, r *http.Request) {
	var empty struct{}
	if !h.decode(w, r, &empty) {
		return
	}
	id := mux.Vars(r)[api.MessageIDVar]
	if _, ok := messageRef(w, id); !ok {
		return
	}
	idx, err := h.backend.MarkRead(r.Context(), groupID(r), id)
	if err != nil {
		h.actionError(w, r, "mark the group read", err, hints{
			notFound: "mark a message that is in the group's order (a message on its way cannot be marked yet)",
		})
		return
	}
	writeJSON(w, http.StatusOK, api.ReadMark{ReadThrough: idx})
}

// preferences answers GET on RoutePreferences.
func (h *handler) preferences(w http.ResponseWriter, r *http.Request) {
	if !h.backend.Status().Running {
		h.backendError(w, r, "read the preferences", api.ErrStopped)
		return
	}
	writeJSON(w, http.StatusOK, api.Preferences{ReadReceipts: h.backend.ReadReceipts()})
}

// putPreferences answers PUT on RoutePreferences.
func (h *handler) putPreferences(w http.ResponseWriter, r *http.Request) {
	// The field is required: a body that does not say (an empty object,
	// null) is a bad request, not a choice to turn receipts off.
	var p struct {
		ReadReceipts *bool `json:"read_receipts"`
	}
	if !h.decode(w, r, &p) {
		return
	}
	if p.ReadReceipts == nil {
		writeError(w, http.StatusBadRequest, "read_receipts is missing", `send {"read_receipts": true} or {"read_receipts": false}`)
		return
	}
	if err := h.backend.SetReadReceipts(*p.ReadReceipts); err != nil {
		h.backendError(w, r, "change the preferences", err)
		return
	}
	writeJSON(w, http.StatusOK, api.Preferences{ReadReceipts: h.backend.ReadReceipts()})
}
