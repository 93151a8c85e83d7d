package adversary

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/node"
)

// TestKeeperAddByURLImpersonated: an admin adds the keeper at a peer URL
// (`demes keeper add http://...`); an outsider on the path to that URL (or
// whoever holds its address or port while the keeper is down) answers in
// the keeper's place. Its node must not become a voter of the group on that
// answer alone.
//
// Today it does: AddKeeper takes the public id that GET /v1/id answers over
// plain HTTP, commits a keeper invite for it and posts the code to the same
// URL; the outsider joins with it as a keeper, a voter that may be elected
// host and then do what a malicious host can (hold back a minority's
// entries, its own removal included, reorder, fork). It reads nothing. The
// admin's node prints the keeper's fingerprint only after the invite is
// committed. A fix needs the admin to vouch for the id (the URL with the
// fingerprint, or a prompt before the commit), a decision about the CLI
// and the UI not made here.
func TestKeeperAddByURLImpersonated(t *testing.T) {
	t.Skip("hole: keeper add URL trusts whatever answers GET /v1/id there over plain HTTP; an on-path outsider gets a keeper seat (a voter, may host). Needs the admin to vouch for the id (see the comment)")
	g := newGroup(t, 3, options{tweak: map[int]func(*node.Config){
		1: func(cfg *node.Config) { cfg.Keeper = true },
	}})
	g.form(0)
	// The impostor stands where the admin believes the keeper (node 1)
	// listens, and answers for node 2, the outsider's node.
	var mu sync.Mutex
	var taken string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == node.IDPath:
			io.WriteString(w, g.pub(2).String()+"\n")
		case r.Method == http.MethodGet && r.URL.Path == node.KeeperPath:
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodPost && r.URL.Path == node.KeeperPath:
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			taken = strings.TrimSpace(string(b))
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	}))
	defer fake.Close()
	ctx := ctxT(t, 60*time.Second)
	_, id, err := g.node(0).AddKeeper(ctx, g.id, fake.URL)
	if err != nil {
		return // refused: what the test wants
	}
	mu.Lock()
	code := taken
	mu.Unlock()
	if id != g.pub(2).String() || code == "" {
		t.Fatalf("the admin's node added %s (code handed over: %v)", id, code != "")
	}
	if _, err := g.node(2).Join(ctx, code); err != nil {
		t.Fatalf("the outsider's join: %v", err)
	}
	g.waitVoters(2, 0, 2)
	st, _ := g.c.Status(0)
	t.Fatalf("the outsider's node is a voter of the group (keeper %v), added as the keeper at %s", keeperIn(st.Members, g.pub(2).String()), fake.URL)
}
