package web

import (
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
)

// The API's routes may be registered in any order (the hot ones come
// first, handler.go): no two routes match the same path and method, so
// whichever mux tries first, a request reaches the same handler.
func TestRoutesMatchDisjointPaths(t *testing.T) {
	w := newFakeWorld()
	n := w.addNode(t, "alice", 3)
	h := newHandler(Config{Backend: n, Token: "t", Addr: "127.0.0.1:1", Logger: zerolog.Nop()})
	type route struct {
		tmpl    string
		methods []string
		r       *mux.Route
	}
	var routes []route
	err := h.router.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := r.GetMethods()
		if err != nil {
			return err
		}
		routes = append(routes, route{tmpl, methods, r})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) < 30 {
		t.Fatalf("walked %d routes", len(routes))
	}
	vars := regexp.MustCompile(`\{[^}]*\}`)
	for i, a := range routes {
		path := vars.ReplaceAllString(a.tmpl, "0a1b")
		for _, m := range a.methods {
			req := httptest.NewRequest(m, path, nil)
			for j, b := range routes {
				var match mux.RouteMatch
				if j != i && b.r.Match(req, &match) && match.MatchErr == nil {
					t.Errorf("%s %s (route %s) also matches route %s %v", m, path, a.tmpl, b.tmpl, b.methods)
				}
			}
			var match mux.RouteMatch
			if !a.r.Match(req, &match) {
				t.Errorf("%s %s does not match its own route %s", m, path, a.tmpl)
			}
		}
	}
}
