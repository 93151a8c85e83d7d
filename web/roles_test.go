package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
)

// errorBody decodes an error answer into its error and hint.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) api.ErrorResponse {
	t.Helper()
	decodeError(t, rec)
	var e api.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// call serves one API request as the UI or the CLI sends it.
func call(u *testUI, method, path, body string) *httptest.ResponseRecorder {
	r := newReq(u, method, path, body)
	if method == http.MethodPut {
		r.Header.Set("Content-Type", "application/json")
	}
	return serve(u, r)
}

func groupRoute(route, gid string) string { return api.GroupPath(route, gid) }

// memberIDs returns the public ids of the group's members as node n sees
// them, with "+admin" after each admin.
func memberIDs(t *testing.T, n *fakeNode, gid string) []string {
	t.Helper()
	for _, g := range n.Status().Groups {
		if g.GroupID == gid {
			var out []string
			for _, m := range g.Members {
				s := m.Name
				if m.Admin {
					s += "+admin"
				}
				out = append(out, s)
			}
			return out
		}
	}
	t.Fatalf("%s is not in group %s", n.name, gid)
	return nil
}

// An invite lasts as long as asked, is listed with who made it and when it
// expires, and once revoked is gone from the list and no longer lets its
// invitee in.
func TestInviteListAndRevoke(t *testing.T) {
	w, gid, u := friendsUI(t)
	alice, dave := w.node("alice"), w.node("dave")
	daveUI := startUI(t, dave, nil)
	invites := groupRoute(api.RouteInvites, gid)

	if rec := call(u, "GET", invites, ""); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("no invites yet: %d %s, want []", rec.Code, rec.Body.String())
	}
	rec := call(u, "POST", invites, fmt.Sprintf(`{"public_id":%q,"expires_in_s":172800}`, dave.pub.String()))
	if rec.Code != 200 {
		t.Fatalf("invite: %d %s", rec.Code, rec.Body.String())
	}
	var inv api.InviteResponse
	json.Unmarshal(rec.Body.Bytes(), &inv)
	if w.mu.Lock(); alice.lastTTL != 48*time.Hour {
		t.Errorf("the backend was asked for an invite of %v, want 48h", alice.lastTTL)
	}
	w.mu.Unlock()

	list := getJSON(t, u, invites).([]any)
	if len(list) != 1 {
		t.Fatalf("%d open invites, want 1: %v", len(list), list)
	}
	if got, want := keys(t, list[0]), "expires_at,fingerprint,invitee,inviter,inviter_name,state"; got != want {
		t.Errorf("pending invite fields %s, want %s", got, want)
	}
	p := list[0].(map[string]any)
	if p["invitee"] != dave.pub.String() || p["inviter"] != alice.pub.String() || p["inviter_name"] != "alice" {
		t.Errorf("pending invite = %v", p)
	}
	exp, err := time.Parse(time.RFC3339, p["expires_at"].(string))
	if err != nil || exp.Before(time.Now().Add(47*time.Hour)) || exp.After(time.Now().Add(49*time.Hour)) {
		t.Errorf("expires_at = %v (%v), want about 48 hours from now", p["expires_at"], err)
	}

	// Revoked by its invitee's public id: 204, gone from the list.
	rec = call(u, "POST", groupRoute(api.RouteRevoke, gid), fmt.Sprintf(`{"invite":%q}`, dave.pub.String()))
	if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Fatalf("revoke: %d %q, want 204 and no body", rec.Code, rec.Body.String())
	}
	if list := getJSON(t, u, invites).([]any); len(list) != 0 {
		t.Errorf("open invites after the revocation: %v", list)
	}
	// Dave's code no longer lets him in: a refusal, in words, with the fix.
	rec = call(daveUI, "POST", api.RouteJoin, fmt.Sprintf(`{"code":%q}`, inv.Code))
	if e := errorBody(t, rec); rec.Code != http.StatusForbidden || !strings.Contains(e.Error, "refused this invite") || e.Hint != "ask the inviter for a new one" {
		t.Errorf("join with a revoked invite: %d %+v", rec.Code, e)
	}
	// Revoking again: 404, with where to look.
	rec = call(u, "POST", groupRoute(api.RouteRevoke, gid), fmt.Sprintf(`{"invite":%q}`, inv.Code))
	if e := errorBody(t, rec); rec.Code != http.StatusNotFound || !strings.Contains(e.Hint, "demes invites") {
		t.Errorf("revoking a revoked invite: %d %+v", rec.Code, e)
	}
}

// A member who is not an admin is refused what only admins may do: 403,
// the rule in plain words (no "not allowed", no action prefix) and what to
// do instead; and nothing changes.
func TestRefusalsSayWhyAndChangeNothing(t *testing.T) {
	w, gid, _ := friendsUI(t)
	alice, bob, carol, dave := w.node("alice"), w.node("bob"), w.node("carol"), w.node("dave")
	bobUI := startUI(t, bob, nil)
	aliceUI := startUI(t, alice, nil)
	code, err := alice.Invite(t.Context(), gid, dave.pub.String())
	if err != nil {
		t.Fatal(err)
	}
	before := memberIDs(t, alice, gid)

	tests := []struct {
		name             string
		u                *testUI
		method, path     string
		body             string
		wantErr, wantFix string
	}{
		{"remove", bobUI, "POST", groupRoute(api.RouteRemove, gid), `{"public_id":"` + carol.pub.String() + `"}`,
			"only admins may remove members", "ask an admin, or leave the group yourself"},
		{"invite", bobUI, "POST", groupRoute(api.RouteInvites, gid), `{"public_id":"` + dave.pub.String() + `"}`,
			"only admins may invite in this group", inviteHints.forbidden},
		{"make admin", bobUI, "POST", groupRoute(api.RouteAdmins, gid), `{"public_id":"` + bob.pub.String() + `","admin":true}`,
			"only admins may change who is an admin", adminHints.forbidden},
		{"settings", bobUI, "PUT", groupRoute(api.RouteSettings, gid), `{"members_invite":true}`,
			"only admins may change the group's settings", settingsHints.forbidden},
		{"rename", bobUI, "POST", groupRoute(api.RouteRename, gid), `{"name":"bob's club"}`,
			"only admins may rename the group", "ask an admin"},
		{"revoke another's invite", bobUI, "POST", groupRoute(api.RouteRevoke, gid), `{"invite":"` + code + `"}`,
			"who made this invite, or an admin may revoke it", revokeHints.forbidden},
		{"last admin", aliceUI, "POST", groupRoute(api.RouteAdmins, gid), `{"public_id":"` + alice.pub.String() + `","admin":false}`,
			"is the last admin", "make someone else admin first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(tt.u, tt.method, tt.path, tt.body)
			e := errorBody(t, rec)
			if rec.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %+v", rec.Code, e)
			}
			if !strings.Contains(e.Error, tt.wantErr) || e.Hint != tt.wantFix {
				t.Errorf("answer %+v, want an error with %q and the hint %q", e, tt.wantErr, tt.wantFix)
			}
			if strings.Contains(e.Error, "not allowed") || strings.Contains(e.Error, ": ") {
				t.Errorf("error %q carries the node's internals", e.Error)
			}
		})
	}
	if after := memberIDs(t, alice, gid); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("members changed from %v to %v", before, after)
	}
	if list := getJSON(t, aliceUI, groupRoute(api.RouteInvites, gid)).([]any); len(list) != 1 {
		t.Errorf("open invites after refused changes: %v, want dave's", list)
	}
	if s := getJSON(t, aliceUI, groupRoute(api.RouteSettings, gid)).(map[string]any); s["members_invite"] != false {
		t.Errorf("settings after a refused change: %v", s)
	}
}

// An admin's settings let every member invite; an admin makes another
// member admin, who may then remove a member; the removed member keeps
// the group, read-only, and is told plainly when it tries to leave it.
func TestSettingsAdminsRemoveAndLeave(t *testing.T) {
	w, gid, aliceUI := friendsUI(t)
	alice, bob, carol, dave := w.node("alice"), w.node("bob"), w.node("carol"), w.node("dave")
	bobUI := startUI(t, bob, nil)
	carolUI := startUI(t, carol, nil)
	settings := groupRoute(api.RouteSettings, gid)

	if s := getJSON(t, bobUI, settings).(map[string]any); keys(t, s) != "bytes_per_day,members_invite,msgs_per_minute,relays" || s["members_invite"] != false {
		t.Fatalf("settings = %v, want members_invite false", s)
	}
	rec := call(aliceUI, "PUT", settings, `{"members_invite":true}`)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"members_invite":true,"msgs_per_minute":0,"bytes_per_day":0,"relays":null}` {
		t.Fatalf("PUT settings: %d %s", rec.Code, rec.Body.String())
	}
	g := getJSON(t, bobUI, api.RouteStatus).(map[string]any)["groups"].([]any)[0].(map[string]any)
	if g["can_invite"] != true || g["admin"] != false {
		t.Errorf("bob's status after the change: can_invite %v, admin %v", g["can_invite"], g["admin"])
	}
	if rec := call(bobUI, "POST", groupRoute(api.RouteInvites, gid), `{"public_id":"`+dave.pub.String()+`"}`); rec.Code != 200 {
		t.Errorf("bob invites with members_invite on: %d %s", rec.Code, rec.Body.String())
	}

	rec = call(aliceUI, "POST", groupRoute(api.RouteAdmins, gid), `{"public_id":"`+bob.pub.String()+`","admin":true}`)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("make bob admin: %d %s", rec.Code, rec.Body.String())
	}
	if got := strings.Join(memberIDs(t, bob, gid), ","); got != "alice+admin,bob+admin,carol" {
		t.Errorf("members = %s", got)
	}
	rec = call(bobUI, "POST", groupRoute(api.RouteRemove, gid), `{"public_id":" `+carol.pub.String()+` "}`)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("bob removes carol: %d %s", rec.Code, rec.Body.String())
	}
	if got := strings.Join(memberIDs(t, alice, gid), ","); got != "alice+admin,bob+admin" {
		t.Errorf("members after the removal = %s", got)
	}
	// Removing her again: 404, and the hint says where the members are.
	rec = call(bobUI, "POST", groupRoute(api.RouteRemove, gid), `{"public_id":"`+carol.pub.String()+`"}`)
	if e := errorBody(t, rec); rec.Code != 404 || e.Hint != removeHints.notFound ||
		e.Error != "failed to remove the member: "+carol.pub.String()+" is not a member" {
		t.Errorf("removing a former member: %d %+v", rec.Code, e)
	}
	// Carol keeps the group, as one she left, and her history.
	cg := getJSON(t, carolUI, api.RouteStatus).(map[string]any)["groups"].([]any)[0].(map[string]any)
	if cg["role"] != "left" {
		t.Errorf("carol's role = %v, want left", cg["role"])
	}
	if rec := call(carolUI, "GET", groupRoute(api.RouteMessages, gid), ""); rec.Code != 200 {
		t.Errorf("carol reads her history: %d %s", rec.Code, rec.Body.String())
	}
	rec = call(carolUI, "POST", groupRoute(api.RouteLeave, gid), `{}`)
	if e := errorBody(t, rec); rec.Code != 404 || e.Error != leaveHints.notFoundMsg || e.Hint != leaveHints.notFound {
		t.Errorf("leaving a group one was removed from: %d %+v", rec.Code, e)
	}

	// Bob leaves: 204; alice stays the one admin.
	if rec := call(bobUI, "POST", groupRoute(api.RouteLeave, gid), `{}`); rec.Code != http.StatusNoContent {
		t.Fatalf("bob leaves: %d %s", rec.Code, rec.Body.String())
	}
	if got := strings.Join(memberIDs(t, alice, gid), ","); got != "alice+admin" {
		t.Errorf("members after bob left = %s", got)
	}
}

// Bad requests to the membership routes get 400 with the reason and never
// reach the node.
func TestMembershipBadRequests(t *testing.T) {
	w, gid, u := friendsUI(t)
	bob := w.node("bob").pub.String()
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"remove: not a public id", "POST", groupRoute(api.RouteRemove, gid), `{"public_id":"demes1nope"}`, 400},
		{"remove: no public id", "POST", groupRoute(api.RouteRemove, gid), `{}`, 400},
		{"admin: not a public id", "POST", groupRoute(api.RouteAdmins, gid), `{"public_id":"bob","admin":true}`, 400},
		{"admin: admin is not a bool", "POST", groupRoute(api.RouteAdmins, gid), `{"public_id":"` + bob + `","admin":"yes"}`, 400},
		{"revoke: nothing named", "POST", groupRoute(api.RouteRevoke, gid), `{"invite":"  "}`, 400},
		{"invite: negative expiry", "POST", groupRoute(api.RouteInvites, gid), `{"public_id":"` + bob + `","expires_in_s":-1}`, 400},
		{"invite: expiry that overflows", "POST", groupRoute(api.RouteInvites, gid), `{"public_id":"` + bob + `","expires_in_s":9223372036854775807}`, 400},
		{"leave: no body", "POST", groupRoute(api.RouteLeave, gid), ``, 400},
		{"leave: unknown field", "POST", groupRoute(api.RouteLeave, gid), `{"really":true}`, 400},
		{"settings: unknown field", "PUT", groupRoute(api.RouteSettings, gid), `{"members_invite":true,"colour":"red"}`, 400},
		{"settings: POST", "POST", groupRoute(api.RouteSettings, gid), `{"members_invite":true}`, 405},
		{"remove: GET", "GET", groupRoute(api.RouteRemove, gid), ``, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.node("alice").failNextCall(errors.New("backend reached"))
			defer w.node("alice").failNextCall(nil)
			rec := call(u, tt.method, tt.path, tt.body)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
			if msg := decodeError(t, rec); strings.Contains(msg, "backend reached") {
				t.Errorf("a bad request reached the backend: %s", msg)
			}
		})
	}
	// A PUT needs a JSON body like a POST: a form cannot send one.
	r := newReq(u, "PUT", groupRoute(api.RouteSettings, gid), `members_invite=true`)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := serve(u, r); rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("PUT with a form body: status %d, want 415", rec.Code)
	}
}

// The backend's errors map to their statuses on the membership routes as
// on the others; a refusal is 403.
func TestMembershipErrorMapping(t *testing.T) {
	w, gid, u := friendsUI(t)
	alice, bob := w.node("alice"), w.node("bob").pub.String()
	calls := []struct{ method, path, body string }{
		{"GET", groupRoute(api.RouteInvites, gid), ""},
		{"POST", groupRoute(api.RouteRevoke, gid), `{"invite":"` + bob + `"}`},
		{"POST", groupRoute(api.RouteLeave, gid), `{}`},
		{"POST", groupRoute(api.RouteRemove, gid), `{"public_id":"` + bob + `"}`},
		{"POST", groupRoute(api.RouteAdmins, gid), `{"public_id":"` + bob + `","admin":true}`},
		{"PUT", groupRoute(api.RouteSettings, gid), `{"members_invite":true}`},
	}
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: no", api.ErrInvalid), http.StatusBadRequest},
		{api.ErrStopped, http.StatusServiceUnavailable},
		{fmt.Errorf("x: some rule: %w", api.ErrForbidden), http.StatusForbidden},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		for _, c := range calls {
			t.Run(fmt.Sprintf("%d %s %s", tt.want, c.method, c.path), func(t *testing.T) {
				alice.failNextCall(tt.err)
				if rec := call(u, c.method, c.path, c.body); rec.Code != tt.want {
					t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
				}
			})
		}
	}
	// A group this node is not in: 404 with the hint about group ids.
	rec := call(u, "POST", groupRoute(api.RouteRemove, "0000"), `{"public_id":"`+bob+`"}`)
	if e := errorBody(t, rec); rec.Code != 404 || !strings.Contains(e.Hint, "group id") {
		t.Errorf("unknown group: %d %+v", rec.Code, e)
	}
}

func TestRefusalWording(t *testing.T) {
	for _, tt := range []struct {
		err       error
		hint      string
		msg, want string
	}{
		{fmt.Errorf("remove: only admins may remove members; ask an admin, or leave the group yourself: %w", api.ErrForbidden), "h",
			"only admins may remove members", "ask an admin, or leave the group yourself"},
		{fmt.Errorf("settings: only admins may change the group's settings: %w", api.ErrForbidden), "ask an admin",
			"only admins may change the group's settings", "ask an admin"},
		{fmt.Errorf("the rule: %w", api.ErrForbidden), "h", "the rule", "h"},
		{api.ErrForbidden, "h", "not allowed", "h"},
		{fmt.Errorf("invite: only admins may invite in this group (an admin can allow everyone to): %w", api.ErrForbidden), "ask an admin",
			"only admins may invite in this group", "ask an admin"},
		{fmt.Errorf("invite: only admins may invite in this group (an admin can allow everyone to): %w", api.ErrForbidden), "",
			"only admins may invite in this group (an admin can allow everyone to)", ""},
	} {
		msg, hint := refusal(tt.err, tt.hint)
		if msg != tt.msg || hint != tt.want {
			t.Errorf("refusal(%q) = %q, %q; want %q, %q", tt.err, msg, hint, tt.msg, tt.want)
		}
	}
}

// TestInviteQueued: an invite the node queues (the group cannot commit
// now) answers 202 with state "queued" and the node's words, no code and
// no error; one that commits answers 200 with its code and state "open".
func TestInviteQueued(t *testing.T) {
	w, gid, u := friendsUI(t)
	alice, dave := w.node("alice"), w.node("dave")
	invites := groupRoute(api.RouteInvites, gid)
	body := fmt.Sprintf(`{"public_id":%q}`, dave.pub.String())
	alice.failNextOp("InviteFor", fmt.Errorf("invite: queued: the group cannot commit now (3 of 5 voters offline); run the same 'demes invite' again once enough of the group is online to get the code: %w", api.ErrQueued))
	rec := call(u, "POST", invites, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("queued invite: %d %s, want 202", rec.Code, rec.Body.String())
	}
	var got api.InviteResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := api.InviteResponse{State: api.InviteQueued,
		Message: "queued: the group cannot commit now (3 of 5 voters offline); run the same 'demes invite' again once enough of the group is online to get the code"}
	if got != want {
		t.Errorf("queued invite answered %+v, want %+v", got, want)
	}
	rec = call(u, "POST", invites, body)
	got = api.InviteResponse{}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK || got.Code == "" || got.State != api.InviteOpen {
		t.Errorf("committed invite: %d %s, want 200 with a code and state open", rec.Code, rec.Body.String())
	}
}
