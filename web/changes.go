package web

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
)

var changeHints = hints{
	forbidden: "reply or react to it instead",
	notFound:  "list the group's messages to see their ids; a message still on its way can be changed once it is in the group's order",
}

// change answers POST on RouteReact, RouteEdit and RouteDelete: it sends the
// change of kind to the message in the route.
func (h *handler) change(kind content.Kind) http.HandlerFunc {
	action := map[content.Kind]string{content.Reaction: "react", content.Edit: "edit", content.Delete: "delete"}[kind]
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.ChangeRequest
		if !h.decode(w, r, &req) {
			return
		}
		ref, ok := messageRef(w, mux.Vars(r)[api.MessageIDVar])
		if !ok {
			return
		}
		c := content.Content{Kind: kind, Ref: ref}
		switch kind {
		case content.Reaction:
			// As given, not trimmed: content.CheckReaction (in the
			// node's Post) refuses a space around it, as the CLI does.
			c.Emoji = req.Emoji
			if c.Emoji == "" && !req.Remove {
				writeError(w, http.StatusBadRequest, "no emoji to react with", `give one, or "remove": true to take your reaction back`)
				return
			}
			if c.Emoji != "" && req.Remove {
				writeError(w, http.StatusBadRequest, "an emoji and remove together", "give one or the other")
				return
			}
		case content.Edit:
			if strings.TrimSpace(req.Text) == "" {
				writeError(w, http.StatusBadRequest, "the new text is empty", "to remove the message, delete it")
				return
			}
			c.Text = req.Text
		}
		if (kind != content.Reaction && (req.Emoji != "" || req.Remove)) || (kind != content.Edit && req.Text != "") {
			writeError(w, http.StatusBadRequest, "fields that do not belong to "+action, "")
			return
		}
		wait, ok := sendWait(w, req.TimeoutMS)
		if !ok {
			return
		}
		m, err := h.backend.Post(r.Context(), groupID(r), c, wait)
		if errors.Is(err, content.ErrNotEmoji) {
			writeError(w, http.StatusBadRequest, plain(err, api.ErrInvalid), "to answer in words, reply to the message instead")
			return
		}
		if err != nil {
			h.actionError(w, r, action, err, changeHints)
			return
		}
		writeSent(w, m)
	}
}

// sendWait is how long a send waits for its commit, given the request's
// timeout_ms: the default for 0, at most maxSendWait. A negative one is
// answered with a 400 (ok false).
func sendWait(w http.ResponseWriter, ms int64) (wait time.Duration, ok bool) {
	if ms < 0 {
		writeError(w, http.StatusBadRequest, "timeout_ms is negative", "leave it out (0) for the default of 10 s")
		return 0, false
	}
	if ms == 0 {
		return defaultSendWait, true
	}
	return min(time.Duration(ms)*time.Millisecond, maxSendWait), true
}

// messageRef reads a message id (32 hex digits); on failure it has
// answered.
func messageRef(w http.ResponseWriter, id string) (*[16]byte, bool) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		writeError(w, http.StatusBadRequest, "not a message id: "+strconv.Quote(id), "a message id is 32 hex digits, as the messages list shows it")
		return nil, false
	}
	return (*[16]byte)(b), true
}

// send answers POST /api/v1/groups/{group_id}/messages.
func (h *handler) send(w http.ResponseWriter, r *http.Request) {
	var req api.SendRequest
	if !h.decode(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Text) == "" {
		writeError(w, http.StatusBadRequest, "the message is empty", "")
		return
	}
	wait, ok := sendWait(w, req.TimeoutMS)
	if !ok {
		return
	}
	var (
		m   api.Message
		err error
	)
	if req.ReplyTo != "" {
		ref, ok := messageRef(w, req.ReplyTo)
		if !ok {
			return
		}
		m, err = h.backend.Post(r.Context(), mux.Vars(r)[api.GroupIDVar], content.Content{Kind: content.Text, Text: req.Text, Ref: ref}, wait)
	} else {
		m, err = h.backend.Send(r.Context(), mux.Vars(r)[api.GroupIDVar], req.Text, wait)
	}
	if err != nil {
		h.backendError(w, r, "send", err)
		return
	}
	writeSent(w, m)
}

// writeSent answers a sent message: 200 when it is committed (or was not
// sent because it would change nothing), 202 when it is accepted into the
// outbox, not yet in the group's log.
func writeSent(w http.ResponseWriter, m api.Message) {
	status := http.StatusOK
	if m.State != api.StateCommitted && !m.Unchanged {
		status = http.StatusAccepted
	}
	writeJSON(w, status, m)
}

// search answers GET /api/v1/groups/{group_id}/search?q=TEXT&limit=N.
func (h *handler) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 50
	if s := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > api.MaxPage {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number of messages from 1 to %d", api.MaxPage), "leave it out for the newest 50 matches")
			return
		}
		limit = n
	}
	if strings.TrimSpace(q.Get("q")) == "" {
		writeError(w, http.StatusBadRequest, "nothing to search for", "give the text to look for as q=")
		return
	}
	ms, err := h.backend.Search(r.Context(), mux.Vars(r)[api.GroupIDVar], q.Get("q"), limit)
	if err != nil {
		h.backendError(w, r, "search", err)
		return
	}
	if ms == nil {
		ms = []api.Message{}
	}
	writeJSON(w, http.StatusOK, ms)
}
