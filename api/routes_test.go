package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A path that GroupPath builds reaches the route it was built from, with the
// same group id, on a server that registers the route as it is. Go's own
// ServeMux stands in for the server: it speaks the same {name} patterns.
func TestGroupPathRoundTrip(t *testing.T) {
	routes := []string{RouteInvites, RouteMessages, RouteTranscript}
	ids := []string{"0f3a9c", "a/b", "with space", "100%", "ünï", "x?y#z"}
	for _, route := range routes {
		var got string
		mux := http.NewServeMux()
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			got = r.PathValue(GroupIDVar)
		})
		for _, id := range ids {
			got = "(not routed)"
			r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+GroupPath(route, id), nil)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK || got != id {
				t.Errorf("GroupPath(%q, %q) = %q: status %d, group id %q", route, id, GroupPath(route, id), rec.Code, got)
			}
		}
	}
}

func TestGroupPath(t *testing.T) {
	for _, tc := range []struct{ route, id, want string }{
		{RouteMessages, "0f3a9c", "/api/v1/groups/0f3a9c/messages"},
		{RouteInvites, "a/b c", "/api/v1/groups/a%2Fb%20c/invites"},
		{RouteStatus, "0f3a9c", "/api/v1/status"},
	} {
		if got := GroupPath(tc.route, tc.id); got != tc.want {
			t.Errorf("GroupPath(%q, %q) = %q, want %q", tc.route, tc.id, got, tc.want)
		}
	}
}
