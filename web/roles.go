package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// The membership routes: invites, their list and revocation, leaving,
// removals, the admin role and the group's settings. The node checks the
// group's rules (admins remove members, for instance) before it proposes
// anything, and every member checks them again when the change is applied;
// what the API adds is the wording: a refusal answers 403 with the rule in
// plain words and what to do instead, and a missing member or invite 404
// with where to look.

// hints are the fixes the API offers when a membership action fails: for a
// refusal by the group's rules, and for a member or invite the group does
// not have (notFoundMsg, when set, says what is missing instead of the
// node's error).
type hints struct {
	forbidden   string
	notFound    string
	notFoundMsg string
}

var (
	inviteHints = hints{forbidden: "ask an admin to invite them, or to let every member invite with the group's settings"}
	revokeHints = hints{
		forbidden: "ask the member who made the invite, or an admin, to revoke it",
		notFound:  "it may have been used, revoked or have expired already; demes invites lists the open ones",
	}
	removeHints = hints{
		forbidden: "ask an admin to remove them, or leave the group yourself",
		notFound:  "demes status lists the group's members",
	}
	adminHints = hints{
		forbidden: "ask an admin to change it",
		notFound:  "only members can be admins; demes status lists the group's members",
	}
	settingsHints = hints{forbidden: "ask an admin to change them"}
	leaveHints    = hints{notFoundMsg: "this node is no longer a member of the group", notFound: "it left or was removed; it keeps the history it has"}
)

// maxInviteSeconds bounds expires_in_s before it becomes a duration, where
// a larger one would overflow; the node says what it allows (a minute to 90
// days).
const maxInviteSeconds = math.MaxInt64 / int64(time.Second)

// invite answers POST /api/v1/groups/{group_id}/invites.
func (h *handler) invite(w http.ResponseWriter, r *http.Request) {
	var req api.InviteRequest
	if !h.decode(w, r, &req) {
		return
	}
	id, ok := publicID(w, req.PublicID)
	if !ok {
		return
	}
	if req.ExpiresInSeconds < 0 || req.ExpiresInSeconds > maxInviteSeconds {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("expires_in_s is %d", req.ExpiresInSeconds),
			"leave it out (0) for the default of 7 days; an invite lasts from a minute to 90 days")
		return
	}
	ttl := time.Duration(req.ExpiresInSeconds) * time.Second
	code, err := h.backend.InviteFor(r.Context(), groupID(r), id, ttl)
	if errors.Is(err, api.ErrQueued) {
		// Accepted: the node commits it when the group can; the same
		// request then answers the code.
		writeJSON(w, http.StatusAccepted, api.InviteResponse{State: api.InviteQueued, Message: plain(err, api.ErrQueued)})
		return
	}
	if err != nil {
		h.actionError(w, r, "invite", err, inviteHints)
		return
	}
	writeJSON(w, http.StatusOK, api.InviteResponse{Code: code, State: api.InviteOpen})
}

// invites answers GET /api/v1/groups/{group_id}/invites.
func (h *handler) invites(w http.ResponseWriter, r *http.Request) {
	list, err := h.backend.Invites(groupID(r))
	if err != nil {
		h.backendError(w, r, "list invites", err)
		return
	}
	if list == nil {
		list = []api.PendingInvite{}
	}
	writeJSON(w, http.StatusOK, list)
}

// revoke answers POST /api/v1/groups/{group_id}/invites/revoke.
func (h *handler) revoke(w http.ResponseWriter, r *http.Request) {
	var req api.RevokeRequest
	if !h.decode(w, r, &req) {
		return
	}
	inv := strings.TrimSpace(req.Invite)
	if inv == "" {
		writeError(w, http.StatusBadRequest, "name the invite to revoke", `send {"invite": "..."} with its code or its invitee's public id`)
		return
	}
	if err := h.backend.RevokeInvite(r.Context(), groupID(r), inv); err != nil {
		h.actionError(w, r, "revoke the invite", err, revokeHints)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// leave answers POST /api/v1/groups/{group_id}/leave.
func (h *handler) leave(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if !h.decode(w, r, &req) {
		return
	}
	if err := h.backend.Leave(r.Context(), groupID(r)); err != nil {
		h.actionError(w, r, "leave the group", err, leaveHints)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// remove answers POST /api/v1/groups/{group_id}/remove.
func (h *handler) remove(w http.ResponseWriter, r *http.Request) {
	var req api.MemberRequest
	if !h.decode(w, r, &req) {
		return
	}
	id, ok := publicID(w, req.PublicID)
	if !ok {
		return
	}
	if err := h.backend.Remove(r.Context(), groupID(r), id); err != nil {
		h.actionError(w, r, "remove the member", err, removeHints)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setAdmin answers POST /api/v1/groups/{group_id}/admins.
func (h *handler) setAdmin(w http.ResponseWriter, r *http.Request) {
	var req api.AdminRequest
	if !h.decode(w, r, &req) {
		return
	}
	id, ok := publicID(w, req.PublicID)
	if !ok {
		return
	}
	if err := h.backend.SetAdmin(r.Context(), groupID(r), id, req.Admin); err != nil {
		h.actionError(w, r, "change the admin role", err, adminHints)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// settings answers GET /api/v1/groups/{group_id}/settings, from the
// node's status.
func (h *handler) settings(w http.ResponseWriter, r *http.Request) {
	gid := groupID(r)
	st := h.backend.Status()
	if !st.Running {
		h.backendError(w, r, "read the settings", api.ErrStopped)
		return
	}
	for _, g := range st.Groups {
		if g.GroupID == gid {
			writeJSON(w, http.StatusOK, g.Settings)
			return
		}
	}
	h.backendError(w, r, "read the settings", fmt.Errorf("group %s: %w", gid, api.ErrNotFound))
}

// putSettings answers PUT /api/v1/groups/{group_id}/settings. The body is
// the whole of the settings, as PUT replaces them.
func (h *handler) putSettings(w http.ResponseWriter, r *http.Request) {
	var req api.GroupSettings
	if !h.decode(w, r, &req) {
		return
	}
	if err := h.backend.SetSettings(r.Context(), groupID(r), req); err != nil {
		h.actionError(w, r, "change the settings", err, settingsHints)
		return
	}
	// The settings as committed: the node puts relays in their normal
	// form, and a relay list left out kept the group's.
	for _, g := range h.backend.Status().Groups {
		if g.GroupID == groupID(r) {
			req = g.Settings
		}
	}
	writeJSON(w, http.StatusOK, req)
}

// rename answers POST /api/v1/groups/{group_id}/rename.
func (h *handler) rename(w http.ResponseWriter, r *http.Request) {
	var req api.RenameRequest
	if !h.decode(w, r, &req) {
		return
	}
	if err := h.backend.Rename(r.Context(), groupID(r), req.Name); err != nil {
		h.actionError(w, r, "rename the group", err, hints{forbidden: "ask an admin to rename it"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rekey answers POST /api/v1/groups/{group_id}/rekey.
func (h *handler) rekey(w http.ResponseWriter, r *http.Request) {
	if err := h.backend.Rekey(r.Context(), groupID(r)); err != nil {
		h.actionError(w, r, "ask for new keys", err, hints{forbidden: "only members ask for new keys"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// reform answers POST /api/v1/groups/{group_id}/reform.
func (h *handler) reform(w http.ResponseWriter, r *http.Request) {
	var req api.ReformRequest
	if !h.decode(w, r, &req) {
		return
	}
	if req.Without != "" {
		id, ok := publicID(w, req.Without)
		if !ok {
			return
		}
		req.Without = id
	}
	res, err := h.backend.Reform(r.Context(), groupID(r), req)
	if err != nil {
		h.actionError(w, r, "continue the group", err, hints{})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func groupID(r *http.Request) string { return mux.Vars(r)[api.GroupIDVar] }

// publicID checks a public id from a request body before the backend sees
// it. On failure it has answered.
func publicID(w http.ResponseWriter, s string) (string, bool) {
	id := strings.TrimSpace(s)
	if _, err := identity.ParsePublicID(id); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("not a public id: %v", err),
			"ask the person for the output of `demes id` (it starts with demes1)")
		return "", false
	}
	return id, true
}

// actionError answers a failed membership action: a refusal with its rule
// and fix (the node's fix, else hs.forbidden), a missing member or invite
// in a group this node is in with hs.notFound, anything else as
// backendError does.
func (h *handler) actionError(w http.ResponseWriter, r *http.Request, action string, err error, hs hints) {
	switch {
	case errors.Is(err, api.ErrForbidden):
		msg, hint := refusal(err, hs.forbidden)
		writeError(w, http.StatusForbidden, msg, hint)
	case errors.Is(err, api.ErrNotFound) && hs.notFound != "" && h.inGroup(groupID(r)):
		msg := fmt.Sprintf("failed to %s: %s", action, plain(err, api.ErrNotFound))
		if hs.notFoundMsg != "" {
			msg = hs.notFoundMsg
		}
		writeError(w, http.StatusNotFound, msg, hs.notFound)
	default:
		h.backendError(w, r, action, err)
	}
}

// inGroup reports whether the node has the group gid, so that a 404 is
// about a member or invite in it rather than the group.
func (h *handler) inGroup(gid string) bool {
	for _, g := range h.backend.Groups() {
		if g.GroupID == gid {
			return true
		}
	}
	return false
}

// refusal words a refusal (an error wrapping api.ErrForbidden) for a
// person: the rule, without the node's "ACTION: " prefix and the
// sentinel's ": not allowed", as the error, and the fix the node gives
// after a semicolon, else hint, as the hint. With hint, a remark in
// parentheses at the end of the rule gives way to it, which says what to
// do in the API's words (the UI shows a hint in parentheses itself).
func refusal(err error, hint string) (msg, fix string) {
	msg = plain(err, api.ErrForbidden)
	if rule, f, ok := strings.Cut(msg, "; "); ok {
		return rule, f
	}
	if i := strings.LastIndex(msg, " ("); hint != "" && i > 0 && strings.HasSuffix(msg, ")") {
		msg = msg[:i]
	}
	return msg, hint
}

// plain is the node's reason in err without what a person does not need:
// its "ACTION: " prefix (dropAction: the person knows what they asked for)
// and the ": " + sentinel at its end.
func plain(err, sentinel error) string {
	msg := err.Error()
	if errors.Is(err, api.ErrUnknownMessage) {
		// "message not found" after "no message X in the group's order".
		msg = strings.TrimSuffix(msg, ": "+api.ErrUnknownMessage.Error())
	}
	return dropAction(strings.TrimSuffix(msg, ": "+sentinel.Error()))
}
