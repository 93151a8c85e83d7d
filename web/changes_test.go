package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
)

// TestReactRefusesText: a reaction the UI or a script sends must be one
// emoji; anything else is a bad request that says so in words, with what
// to do instead, and sends nothing.
func TestReactRefusesText(t *testing.T) {
	w, gid, u := friendsUI(t)
	m, err := w.node("bob").Send(context.Background(), gid, "lunch at noon?", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	path := api.MessagePath(api.RouteReact, gid, m.ID)
	for body, want := range map[string]string{
		`{"emoji":"ok"}`: `a reaction is one emoji, such as 👍; "ok" is not one`,
		`{"emoji":"+1"}`: `a reaction is one emoji, such as 👍; "+1" is not one`,
		`{"emoji":"👍👍"}`: `a reaction is one emoji, such as 👍; "👍👍" is not one`,
		// Checked as given, as the CLI and the node do: not trimmed.
		`{"emoji":" ❤️ "}`: `a reaction is one emoji, such as 👍; " ❤️ " is not one`,
		`{"emoji":"🏽"}`:    `a reaction is one emoji, such as 👍; "🏽" is not one`,
	} {
		rec := serve(u, newReq(u, http.MethodPost, path, body))
		var e api.ErrorResponse
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusBadRequest || e.Error != want || e.Hint != "to answer in words, reply to the message instead" {
			t.Errorf("%s: %d %s; want 400 %q", body, rec.Code, rec.Body.String(), want)
		}
	}
	for _, body := range []string{`{"emoji":"👍"}`, `{"emoji":"❤️"}`, `{"emoji":"👩🏽‍💻"}`} {
		if rec := serve(u, newReq(u, http.MethodPost, path, body)); rec.Code != http.StatusOK {
			t.Errorf("%s: %d %s; want 200", body, rec.Code, rec.Body.String())
		}
	}
}

// TestPageBeforeAChange: the node refuses a page that ends before a
// change (its id is in the log, but no listed message has it); the answer
// says so in words, without the sentinel, and how to page instead.
func TestPageBeforeAChange(t *testing.T) {
	w, gid, u := friendsUI(t)
	id := strings.Repeat("ab", 16)
	w.node("alice").failNextCall(fmt.Errorf("%q is the id of a reaction, an edit or a delete, not of a message: %w", id, api.ErrInvalid))
	rec := serve(u, newReq(u, http.MethodGet, api.GroupPath(api.RouteMessages, gid)+"?limit=5&before="+id, ""))
	var e api.ErrorResponse
	json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != http.StatusBadRequest || e.Error != `"`+id+`" is the id of a reaction, an edit or a delete, not of a message` || !strings.Contains(e.Hint, "before= takes the id of a listed message") {
		t.Errorf("%d %s", rec.Code, rec.Body.String())
	}
}

// TestReactUnchanged: taking back a reaction there is none of, or the same
// reaction again, changes nothing; the node sends nothing, and the answer
// is a 200 that says so (unchanged, no id), not a 202 as for a change
// still on its way.
func TestReactUnchanged(t *testing.T) {
	w, gid, u := friendsUI(t)
	m, err := w.node("bob").Send(context.Background(), gid, "lunch at noon?", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	path := api.MessagePath(api.RouteReact, gid, m.ID)
	for i, tc := range []struct {
		body      string
		unchanged bool
	}{
		{`{"remove":true}`, true},
		{`{"emoji":"👍"}`, false},
		{`{"emoji":"👍"}`, true},
		{`{"remove":true}`, false},
		{`{"remove":true}`, true},
	} {
		rec := serve(u, newReq(u, http.MethodPost, path, tc.body))
		var got api.Message
		json.Unmarshal(rec.Body.Bytes(), &got)
		if rec.Code != http.StatusOK || got.Unchanged != tc.unchanged || (got.ID == "") != tc.unchanged || got.Target != m.ID {
			t.Errorf("%d: %s: %d %s; want 200, unchanged %v", i, tc.body, rec.Code, rec.Body.String(), tc.unchanged)
		}
	}
}

// TestChangeUnknownMessage: a change of a message not in the group's order
// says so once, with the hint, not with the sentinel's "message not found"
// after it.
func TestChangeUnknownMessage(t *testing.T) {
	_, gid, u := friendsUI(t)
	id := strings.Repeat("ab", 16)
	rec := serve(u, newReq(u, http.MethodPost, api.MessagePath(api.RouteReact, gid, id), `{"emoji":"👍"}`))
	var e api.ErrorResponse
	json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != http.StatusNotFound || e.Error != "failed to react: no message "+id+" in the group's order" || !strings.Contains(e.Hint, "still on its way") {
		t.Errorf("%d %s", rec.Code, rec.Body.String())
	}
}
