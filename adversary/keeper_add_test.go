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
// answer.
//
// AddKeeper takes the public id that GET /v1/id answers over plain HTTP,
// commits a keeper invite for it and posts the code to the same URL: the
// outsider would join with it as a keeper, a voter that may be elected
// host and then do what a malicious host can. So the admin names the
// keeper's id with the URL (`keeper add URL --id PUBLIC_ID`), and an answer
// with another id commits nothing. Without --id, the admin trusts the
// address, as README and CLI.md say.
func TestKeeperAddByURLImpersonated(t *testing.T) {
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
	_, id, err := g.node(0).AddKeeper(ctx, g.id, fake.URL, g.pub(1).String())
	mu.Lock()
	code := taken
	mu.Unlock()
	if err == nil || code != "" {
		t.Fatalf("the admin's node added %s as the keeper it knows as %s (code handed over: %v, error: %v)", id, g.pub(1), code != "", err)
	}
	if !strings.Contains(err.Error(), "nothing was committed") {
		t.Errorf("the refusal %q does not say that nothing was committed", err)
	}
	invs, ierr := g.node(0).Invites(g.id)
	if ierr != nil {
		t.Fatal(ierr)
	}
	if len(invs) != 0 {
		t.Errorf("open invites after the refusal: %+v, want none", invs)
	}
}
