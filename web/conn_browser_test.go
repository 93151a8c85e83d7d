package web

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/web/webtest"
)

// Browser tests of the page's link to its node: what it shows when the
// node's process goes away and comes back, and how a person gets in with
// the token but without the address that carries it.

// restartableUI is a testUI whose server can stop, as when `demes serve`
// is killed, and start again on the same address with the same token, as a
// new process: with a new handler, which knows none of the old one's
// sessions.
type restartableUI struct {
	*testUI
	cfg    Config
	t      testing.TB
	mu     sync.Mutex
	srv    *http.Server
	cancel context.CancelFunc
}

func startRestartableUI(t testing.TB, b Backend) *restartableUI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LockedBuffer{}
	addr := ln.Addr().String()
	cfg := Config{Backend: b, Token: token, Addr: addr, Logger: zerolog.New(logs)}
	r := &restartableUI{testUI: &testUI{URL: "http://" + addr, Addr: addr, Token: token, h: newHandler(cfg), logs: logs}, cfg: cfg, t: t}
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *restartableUI) serve(ln net.Listener) {
	base, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	srv := &http.Server{Handler: r.h, BaseContext: func(net.Listener) context.Context { return base }}
	r.srv, r.cancel = srv, cancel
	r.mu.Unlock()
	go srv.Serve(ln)
}

// stop ends the server and every connection to it, event streams included.
func (r *restartableUI) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv == nil {
		return
	}
	r.cancel()
	r.srv.Close()
	r.srv = nil
}

// restart serves again on the same address, once the old socket is gone,
// with a new handler (a new process).
func (r *restartableUI) restart() {
	r.t.Helper()
	var ln net.Listener
	testutil.Eventually(r.t, 30*time.Second, "the UI's address to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", r.Addr)
		return err == nil
	})
	r.mu.Lock()
	r.h = newHandler(r.cfg)
	r.mu.Unlock()
	r.serve(ln)
}

// TestBrowserConnectionLoss: when the node's process ends, an open tab says
// so, stops offering to send and stops showing members online; when the
// node is back, the tab reconnects by itself and sending works again.
func TestBrowserConnectionLoss(t *testing.T) {
	w, _ := newFriends(t)
	r := startRestartableUI(t, w.node("alice"))
	p := openUI(t, r.testUI)
	p.WaitText("#group-facts", "3 online")
	p.WaitHidden("#banner-conn")

	r.stop()
	p.WaitVisible("#banner-conn")
	p.WaitText("#banner-conn", "Your DeMeS node is not answering, so you cannot send.")
	p.WaitText("#node-state", "node not answering")
	if !webtest.Eval[bool](p, `document.querySelector('#compose').disabled && document.querySelector('#send-button').disabled`) {
		t.Error("the send box stays usable without a node")
	}
	if n := webtest.Eval[int](p, `Array.from(document.querySelectorAll('#member-list .member-facts')).filter((e) => e.textContent.includes('online')).length`); n != 0 {
		t.Errorf("%d members still show online without a node to ask", n)
	}
	p.WaitText("#group-facts", "Not connected to your node")
	p.Screenshot("connection-lost")

	r.restart()
	p.WaitHidden("#banner-conn")
	p.WaitText("#node-state", "online")
	p.WaitFor("the send box to be back", `() => !document.querySelector('#compose').disabled`)
	p.WaitText("#group-facts", "3 online")
	send(p, "back again")
	waitMessage(p, "back again", "committed", "alice")
}

// TestBrowserWithoutToken: a tab opened without the token (a new tab, a
// restarted browser) asks for it; the person pastes the address that
// demes ui printed, or the token alone, and is in. Wrong input is refused
// with what to do, and no token reaches the node's log.
func TestBrowserWithoutToken(t *testing.T) {
	w, _ := newFriends(t)
	u := startUI(t, w.node("alice"), nil)
	p := shared.NewPage(t, pageTimeout)
	p.Navigate(u.URL + "/")
	p.WaitVisible("#banner-token")
	p.WaitText("#node-state", "no token")
	p.WaitHidden("#layout")
	p.WaitFor("the token field to have the focus", `() => document.activeElement === document.querySelector('#login-token')`)

	// Something that is no token at all.
	p.SetValue("#login-token", "hello there")
	p.Click("#login-submit")
	p.WaitText("#login-error", "neither the address that demes ui printed nor a token")
	// A token, but not this node's.
	const wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	p.SetValue("#login-token", wrong)
	p.Click("#login-submit")
	p.WaitText("#login-error", "Your node does not accept this token.")
	// The address, as demes ui prints it.
	p.SetValue("#login-token", u.PageURL())
	p.Click("#login-submit")
	p.WaitText("#node-state", "online")
	p.WaitText("#chat-title", "friends")
	p.WaitHidden("#banner-token")
	if tok := webtest.Eval[string](p, "sessionStorage.getItem('demes-token')"); tok != u.Token {
		t.Errorf("the tab keeps the token %q, want the node's", tok)
	}
	if v := webtest.Eval[string](p, "document.querySelector('#login-token').value"); v != "" {
		t.Errorf("the token stays in the form: %q", v)
	}
	if href := webtest.Eval[string](p, "location.href"); strings.Contains(href, "token") {
		t.Errorf("the token is in the address bar: %s", href)
	}

	// A tab whose token the node refuses says so and takes the right one,
	// pasted alone. (A fresh tab: a change of fragment would not reload.)
	p = shared.NewPage(t, pageTimeout)
	p.Navigate(u.URL + "/#token=" + wrong)
	p.WaitText("#banner-token", "does not know the access token")
	p.SetValue("#login-token", " "+u.Token+" ")
	p.Click("#login-submit")
	p.WaitText("#node-state", "online")
	p.WaitText("#chat-title", "friends")

	for _, tok := range []string{wrong, u.Token} {
		if strings.Contains(u.logs.String(), tok) {
			t.Errorf("a token reached the log:\n%s", u.logs.String())
		}
	}
}
