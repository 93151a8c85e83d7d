package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/web/webtest"
)

// TestBrowserTokenNotToASquatter: the node stops (a crash, an upgrade, a
// restart by systemd 5 s later) while its page stays open, and another
// user of the machine listens on the UI's port meanwhile (127.0.0.1:7947,
// any user may). The page goes on asking its node. Before, it sent the
// token with every request, and the next serve of the home takes the same
// token up again (cmd/demes loadOrCreateToken): that user could then read
// and send as the node's person. Now the page sends only its session,
// which died with the node's process, and opens a new one only once the
// other side has proved it knows the token (session.go): the squatter
// here answers the challenge as well as it can, and the page must neither
// send it the token nor answer its challenge, and must say that what
// answers is not its node.
func TestBrowserTokenNotToASquatter(t *testing.T) {
	w, _ := newFriends(t)
	// The node goes; another program takes its port.
	p, addr, token := pageOfAStoppedNode(t, w.node("alice"))
	ln := takePort(t, addr)
	var (
		mu        sync.Mutex
		asked     int
		challenge bool
		leak      []string
	)
	squat := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		defer mu.Unlock()
		asked++
		if strings.Contains(r.Header.Get("Authorization")+r.URL.RawQuery+string(body), token) {
			leak = append(leak, "the token in "+r.Method+" "+r.URL.Path)
		}
		switch r.URL.Path {
		case "/api/v1/session/challenge":
			// The best a program without the token can answer.
			challenge = true
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"node_nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","node_proof":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)
		case "/api/v1/session":
			leak = append(leak, "an answer to the squatter's challenge")
			http.Error(w, "no", http.StatusUnauthorized)
		default:
			// As a node that restarted would answer a session it does not know.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"missing or wrong API token"}`)
		}
	})}
	go squat.Serve(ln)
	defer squat.Close()
	// The page asks again within seconds (its status poll, its event
	// stream), is refused, and tries to open a new session.
	testutil.Eventually(t, 30*time.Second, "the page to ask the port for a new session", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return challenge
	})
	p.WaitText("#banner-token", "does not know the access token")
	mu.Lock()
	defer mu.Unlock()
	if len(leak) > 0 {
		t.Fatalf("the page gave another program on the node's port %s", strings.Join(leak, ", "))
	}
}

// pageOfAStoppedNode opens a page on a UI for b with a fresh token, waits
// until it is online, and stops the UI, as when the node's process ends
// (every connection closed): it returns the page, the UI's address, free
// now for whoever listens there first, and the token.
func pageOfAStoppedNode(t *testing.T, b Backend) (*webtest.Page, string, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Listener.Addr().String()
	base, cancel := context.WithCancel(context.Background())
	srv.Config.Handler = newHandler(Config{Backend: b, Token: token, Addr: addr, Logger: zerolog.Nop()})
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	p := shared.NewPage(t, pageTimeout)
	p.Navigate(srv.URL + "/#token=" + token)
	p.WaitText("#node-state", "online")
	cancel()
	srv.Close()
	return p, addr, token
}

// takePort listens on addr, the port of a UI that stopped, as another
// program of the machine would; the test is skipped when something else
// took the port meanwhile.
func takePort(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	return ln
}
