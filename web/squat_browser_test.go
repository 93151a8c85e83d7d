package web

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/internal/testutil"
)

// TestBrowserTokenNotToASquatter: the node stops (a crash, an upgrade, a
// restart by systemd 5 s later) while its page stays open, and another
// user of the machine listens on the UI's port meanwhile (127.0.0.1:7947,
// any user may). The page goes on asking the node, with the token, and
// so hands it to that user; the next serve of the home takes the same
// token up again (cmd/demes loadOrCreateToken), and with it that user
// reads and sends as the node's person.
//
// Not fixed: the page has no way to tell its node from another program
// on the port before it shows the token. A fix is a new token at every
// start (tabs then ask for it again, as after a browser restart), or a
// server that proves it knows the token before the page sends it.
func TestBrowserTokenNotToASquatter(t *testing.T) {
	t.Skip("hole: an open page sends the API token to whatever listens on the UI's port while the node is down, and the node keeps that token; see the comment")
	w, _ := newFriends(t)
	srv := httptest.NewUnstartedServer(nil)
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Listener.Addr().String()
	base, cancel := context.WithCancel(context.Background())
	srv.Config.Handler = newHandler(Config{Backend: w.node("alice"), Token: token, Addr: addr, Logger: zerolog.Nop()})
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	p := shared.NewPage(t, pageTimeout)
	p.Navigate(srv.URL + "/#token=" + token)
	p.WaitText("#node-state", "online")

	// The node goes; another program takes its port.
	cancel()
	srv.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	var (
		mu    sync.Mutex
		asked int
		leak  string
	)
	squat := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked++
		if strings.Contains(r.Header.Get("Authorization")+r.URL.RawQuery, token) {
			leak = r.Method + " " + r.URL.Path
		}
		mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
	})}
	go squat.Serve(ln)
	defer squat.Close()
	// The page asks again within seconds (its event stream reconnects).
	testutil.Eventually(t, 30*time.Second, "the page to ask the port again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return asked > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if leak != "" {
		t.Fatalf("the page sent the API token to another program on the node's port: %s", leak)
	}
}
