package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/demes/demes/api"
)

// TestMessagesPaging: GET messages takes limit (the newest N) and before (a
// page further back); a bad limit is a 400, an unknown id a 404 that says
// where to look, and neither reaches past the group's list.
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
	texts := func(v any) (out []string) {
		for _, m := range v.([]any) {
			out = append(out, m.(map[string]any)["text"].(string))
		}
		return out
	}
	if got := fmt.Sprint(texts(getJSON(t, ui, route+"?limit=2"))); got != "[m3 m4]" {
		t.Errorf("newest page: %s", got)
	}
	if got := fmt.Sprint(texts(getJSON(t, ui, route+"?limit=2&before="+ids[3]))); got != "[m1 m2]" {
		t.Errorf("page before m3: %s", got)
	}
	if got := len(texts(getJSON(t, ui, route))); got != 5 {
		t.Errorf("no limit: %d messages", got)
	}
	if rec := call(ui, http.MethodGet, route+"?limit=x", ""); rec.Code != http.StatusBadRequest {
		t.Errorf("limit=x: %d %s", rec.Code, rec.Body)
	}
	if rec := call(ui, http.MethodGet, route+"?before=nope", ""); rec.Code != http.StatusNotFound {
		t.Errorf("before=nope: %d %s", rec.Code, rec.Body)
	}
}
