package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/demes/demes/api"
)

// TestReformPrintsNoEscapes: why the node will not join a successor
// (api.SuccessorOffer.Problem) names members by their display names, which
// any member chooses and no rule of the group cleans: demes reform must
// not print their terminal escapes.
func TestReformPrintsNoEscapes(t *testing.T) {
	t.Parallel()
	const token = "test-token-0123456789"
	const evil = "mallory\x1b]0;owned\x07\x1b[2K"
	gid := strings.Repeat("b2", 16)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/groups", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]api.GroupInfo{{GroupID: gid, Name: "club"}})
	})
	mux.HandleFunc("POST /api/v1/groups/{group}/reform", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.ReformResult{
			GroupID: strings.Repeat("d4", 16), Name: "club", Action: api.ReformStarted,
			Continues: api.Continuation{GroupID: gid, Name: "club", Index: 9, WithoutName: "carol"},
			Refused: []api.SuccessorOffer{{GroupID: strings.Repeat("e5", 16),
				Continues: api.Continuation{ByName: "bob"},
				Problem:   "it leaves out " + evil + ", not carol"}},
		})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "{}", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()
	home := t.TempDir()
	writeServeFiles(t, home, srv.URL, token)

	r := runDemes(t, nil, "reform", "--home", home)
	wantExit(t, r, 0)
	if !strings.Contains(r.stderr, "it leaves out mallory") {
		t.Fatalf("reform does not say why it refused the offer:\n%s", r)
	}
	if strings.ContainsAny(r.stderr+r.stdout, "\x1b\x07") {
		t.Fatalf("reform printed a member's terminal escapes: %q", r.stderr)
	}
}
