package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A path that GroupPath builds reaches the route it was built from, with the
// same group id, on a server that registers the route as it is. Go's own
// ServeMux stands in for the server: it speaks the same {name} patterns.
func TestGroupPathRoundTrip(t *testing.T) {
	routes := groupRoutes
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
		{RouteRevoke, "0f3a9c", "/api/v1/groups/0f3a9c/invites/revoke"},
		{RouteSettings, "0f3a9c", "/api/v1/groups/0f3a9c/settings"},
		{RouteStatus, "0f3a9c", "/api/v1/status"},
	} {
		if got := GroupPath(tc.route, tc.id); got != tc.want {
			t.Errorf("GroupPath(%q, %q) = %q, want %q", tc.route, tc.id, got, tc.want)
		}
	}
}

// groupRoutes are the routes of one group, with {group_id}.
var groupRoutes = []string{RouteInvites, RouteRevoke, RouteLeave, RouteRemove, RouteAdmins, RouteSettings, RouteRename, RouteReform, RouteMessages, RouteTranscript}

// allRoutes are every route of the API.
var allRoutes = append([]string{RouteStatus, RouteGroups, RouteJoin, RouteBackupStore, RouteEvents, RouteQR, RouteDemo, RouteNodeStop, RouteNodeStart}, groupRoutes...)

// Every route starts with Prefix, and each path reaches its own route and no
// other: a server that registers them all routes each request to the right
// one (ServeMux would panic on two patterns that match the same paths).
func TestRoutesDistinct(t *testing.T) {
	mux := http.NewServeMux()
	for _, route := range allRoutes {
		if !strings.HasPrefix(route, Prefix+"/") {
			t.Errorf("route %q does not start with %q", route, Prefix)
		}
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Route", route) })
	}
	for _, route := range allRoutes {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+GroupPath(route, "0f3a9c"), nil)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		if got := rec.Header().Get("X-Route"); got != route {
			t.Errorf("%s reached route %q, want %q", r.URL.Path, got, route)
		}
	}
}
