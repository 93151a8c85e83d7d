package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
)

// How the local API answers: errors mapped to HTTP statuses with a hint of
// what to do, and JSON bodies.

// backendError answers with the status that err maps to.
func (h *handler) backendError(w http.ResponseWriter, r *http.Request, action string, err error) {
	status, hint := http.StatusInternalServerError, ""
	switch {
	case errors.Is(err, api.ErrNotFound):
		// The error names what was not found; the hint fits it (a
		// message's missing file was hinted at the group id).
		status = http.StatusNotFound
		switch msg := err.Error(); {
		case strings.HasPrefix(msg, "group "):
			hint = "check the group id: GET " + api.RouteGroups + " lists them"
		case strings.Contains(msg, "message"):
			hint = "check the message id: list the group's messages to see their ids (demes messages --ids)"
		}
	case errors.Is(err, api.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, api.ErrForbidden):
		// A refusal by the group's rules: the rule, not "failed to".
		msg, hint := refusal(err, "")
		writeError(w, http.StatusForbidden, msg, hint)
		return
	case errors.Is(err, api.ErrStopped):
		status, hint = http.StatusServiceUnavailable, "start the node again"
	case errors.Is(err, api.ErrUnreachable):
		// Not this node's failure: say what the node found, and what to do.
		msg, hint, _ := strings.Cut(plain(err, api.ErrUnreachable), "; ")
		writeError(w, http.StatusBadGateway, msg, hint)
		return
	case errors.Is(err, api.ErrHalted):
		// The group's history forked: the alert, not "failed to".
		writeError(w, http.StatusConflict, plain(err, api.ErrHalted),
			"the group status shows the proof; continue the group without the member that forked it with demes reform (the banner's button in the UI)")
		return
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		status = 499
	case errors.Is(err, context.DeadlineExceeded):
		status, hint = http.StatusGatewayTimeout, "try again; the group may be unreachable"
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		h.log.Error().Err(err).Str("action", action).Str("path", r.URL.Path).Msg("local API request failed")
	}
	detail := err.Error()
	if status == http.StatusBadRequest {
		// The reason is the text; the sentinel's "invalid request" only
		// told the status, and read as jargon at the end of the line.
		detail = strings.TrimSuffix(detail, ": "+api.ErrInvalid.Error())
	}
	if status == http.StatusBadRequest || status == http.StatusNotFound {
		// The node's own "ACTION: " prefix repeats what "failed to"
		// says already ("failed to invite: invite: ...").
		// A prefix of more words ("add keeper: ") is dropped when it
		// is the action itself ("failed to add keeper: add keeper: ...").
		detail = strings.TrimPrefix(detail, action+": ")
		detail = dropAction(strings.TrimSuffix(detail, ": "+api.ErrUnknownMessage.Error()))
		// "message X carries no file: not found": the words say it, the
		// sentinel only told the status. A bare `group "x": not found`
		// keeps it.
		if rest := strings.TrimSuffix(detail, ": "+api.ErrNotFound.Error()); strings.Count(rest, " ") >= 2 {
			detail = rest
		}
	}
	writeError(w, status, fmt.Sprintf("failed to %s: %s", action, detail), hint)
}

// dropAction drops a one-word "ACTION: " prefix, the node's name for the
// operation, from msg ("invite: bob is already a member").
func dropAction(msg string) string {
	if action, rest, ok := strings.Cut(msg, ": "); ok && action != "" && rest != "" && !strings.ContainsAny(action, " ;\"") {
		return rest
	}
	return msg
}

func writeError(w http.ResponseWriter, status int, msg, hint string) {
	writeJSON(w, status, api.ErrorResponse{Error: msg, Hint: hint})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
