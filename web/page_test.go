package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
)

// TestMessagesPaging: GET messages with limit (the newest N) or before (a
// page further back) answers a page and whether older messages exist; a bad
// limit is a 400, an unknown id a 404 that says where to look, and without
// a page query the answer is the whole list, as before paging.
func TestMessagesPaging(t *testing.T) {
	w, gid, ui := friendsUI(t)
	var ids []string
	for k := range 5 {
		m, err := w.node("alice").Send(context.Background(), gid, fmt.Sprintf("m%d", k), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	route := groupRoute(api.RouteMessages, gid)
	page := func(query string) string {
		t.Helper()
		p := getJSON(t, ui, route+query).(map[string]any)
		var texts []string
		for _, m := range p["messages"].([]any) {
			texts = append(texts, m.(map[string]any)["text"].(string))
		}
		return fmt.Sprintf("%s more=%v", strings.Join(texts, " "), p["more"])
	}
	for query, want := range map[string]string{
		"?limit=2":                  "m3 m4 more=true",
		"?limit=2&before=" + ids[3]: "m1 m2 more=true",
		"?limit=2&before=" + ids[2]: "m0 m1 more=false",
		"?limit=10":                 "m0 m1 m2 m3 m4 more=false",
		"?before=" + ids[2]:         "m0 m1 more=false",
		"?limit=5":                  "m0 m1 m2 m3 m4 more=false",
		"?limit=1&before=" + ids[1]: "m0 more=false",
		"?limit=3&before=" + ids[0]: " more=false",
	} {
		if got := page(query); got != want {
			t.Errorf("%s: %s, want %s", query, got, want)
		}
	}
	if got := len(getJSON(t, ui, route).([]any)); got != 5 {
		t.Errorf("no page query: %d messages", got)
	}
	for _, q := range []string{"?limit=x", "?limit=0", "?limit=-1", fmt.Sprintf("?limit=%d", api.MaxPage+1), "?before=", "?before=nope", "?before=0123"} {
		if rec := call(ui, http.MethodGet, route+q, ""); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
	// Well-formed, but no message of the group: not found.
	rec := call(ui, http.MethodGet, route+"?limit=2&before="+strings.Repeat("0", 32), "")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "without before") {
		t.Errorf("before=000...: %d %s", rec.Code, rec.Body)
	}
}
