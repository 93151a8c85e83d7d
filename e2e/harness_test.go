package e2e

// The harness of the end-to-end tests: real nodes on loopback listeners,
// and what their browser pages are asked.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/web"
	"github.com/demes/demes/web/webtest"
	"github.com/rs/zerolog"
)

const (
	// e2ePageTimeout bounds each browser tab: the whole scenario runs in it.
	e2ePageTimeout = 6 * time.Minute
	// e2eStep bounds each wait in a tab; failover and voter promotion
	// take seconds, more under -race on two loaded cores.
	e2eStep = 45 * time.Second
	// e2eWait bounds the waits on the nodes themselves.
	e2eWait = 60 * time.Second
)

// e2eNode is one person's node with its two listeners, as `demes demo`
// runs it: demo mode, so its UI can stop and start it.
type e2eNode struct {
	name  string
	pub   identity.PublicID
	svc   *node.Service
	token string
	ui    string // http://127.0.0.1:PORT, the UI listener
	logs  *testutil.LockedBuffer
	// hold makes the peer listener answer 503, as a node that cannot be
	// reached would: other nodes' messages to it fail until it is cleared.
	hold atomic.Bool
	// closeUI closes the UI listener and ends its event streams, as a
	// killed demes serve would for its open tabs.
	closeUI func()
}

// startE2ENode starts a node in a temporary home, with a fresh identity,
// until the test ends.
func startE2ENode(t *testing.T, name string) *e2eNode {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	peerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		peerLn.Close()
		t.Fatal(err)
	}
	token, err := web.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LockedBuffer{}
	logger := zerolog.New(logs).Level(zerolog.InfoLevel).With().Timestamp().Str("node", name).Logger()
	svc, err := node.NewService(node.Config{
		Dir: t.TempDir(), Identity: id, Name: name, URL: "http://" + peerLn.Addr().String(), Logger: logger,
	})
	if err != nil {
		peerLn.Close()
		uiLn.Close()
		t.Fatalf("start node %s: %v", name, err)
	}
	n := &e2eNode{name: name, pub: id.Public(), svc: svc, token: token, ui: "http://" + uiLn.Addr().String(), logs: logs}

	peer := svc.PeerHandler()
	held := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.hold.Load() {
			http.Error(w, "held by the test", http.StatusServiceUnavailable)
			return
		}
		peer.ServeHTTP(w, r)
	})
	// The UI's event streams never end by themselves: cancelling the base
	// context ends them, so that the servers can close.
	ctx, cancel := context.WithCancel(context.Background())
	base := func(net.Listener) context.Context { return ctx }
	servers := []*http.Server{
		{Handler: held, BaseContext: base, ReadHeaderTimeout: 10 * time.Second},
		{Handler: web.NewHandler(web.Config{Backend: svc, Control: svc, Token: token, Addr: uiLn.Addr().String(), Logger: logger}),
			BaseContext: base, ReadHeaderTimeout: 10 * time.Second},
	}
	go servers[0].Serve(peerLn)
	go servers[1].Serve(uiLn)
	n.closeUI = func() {
		servers[1].Close() // closes every connection, the event streams too
	}
	t.Cleanup(func() {
		if t.Failed() {
			st, _ := json.MarshalIndent(svc.Status(), "  ", "  ")
			t.Logf("%s at the end:\n  %s\nits log (last lines):\n%s", name, st, lastLines(logs.String(), 60))
		}
		cancel()
		for _, s := range servers {
			s.Close()
		}
		if err := svc.Close(); err != nil {
			t.Errorf("close node %s: %v", name, err)
		}
	})
	return n
}

// pageURL is the address `demes serve` prints: the UI, token in the fragment.
func (n *e2eNode) pageURL() string { return n.ui + "/#token=" + n.token }

// group returns the node's status of gid; ok is false while the node is
// stopped or not (yet) in the group.
func (n *e2eNode) group(gid string) (g node.GroupStatus, ok bool) {
	for _, g := range n.svc.Status().Groups {
		if g.GroupID == gid {
			return g, true
		}
	}
	return g, false
}

// voters counts the voters n knows of in gid; raft counts a configuration
// change on a node only once that node knows it is committed, and so does
// the status.
func (n *e2eNode) voters(gid string) int {
	g, _ := n.group(gid)
	k := 0
	for _, m := range g.Members {
		if m.Voter {
			k++
		}
	}
	return k
}

// agreedHost waits until every running node of nodes names the same host of
// gid, one of them, and returns it.
func agreedHost(t *testing.T, gid string, nodes ...*e2eNode) *e2eNode {
	t.Helper()
	var host *e2eNode
	testutil.Eventually(t, e2eWait, "the running nodes to agree on a host", func() bool {
		host = nil
		seen := ""
		for _, n := range nodes {
			if !n.svc.Running() {
				continue
			}
			g, ok := n.group(gid)
			if !ok || g.Host == "" || (seen != "" && g.Host != seen) {
				return false
			}
			seen = g.Host
		}
		for _, n := range nodes {
			if n.pub.String() == seen && n.svc.Running() {
				host = n
			}
		}
		return host != nil
	})
	return host
}

// e2ePage opens n's UI in a new tab of b and waits until it is connected.
func e2ePage(t *testing.T, b *webtest.Browser, n *e2eNode) *webtest.Page {
	t.Helper()
	p := b.NewPage(t, e2ePageTimeout)
	p.Step = e2eStep
	p.Navigate(n.pageURL())
	p.WaitText("#node-state", "online")
	return p
}

// e2eHasMessage is true when the message list shows text exactly, in the
// given delivery state and by the given author (either may be ""). The
// page's own messages show the state as a sign: a check when committed
// (two once every member's device holds it), a clock while on their way.
const e2eHasMessage = `(text, state, author) => Array.from(document.querySelectorAll('#message-list .msg')).some((li) =>
	li.querySelector('.msg-text').textContent === text &&
	(!state || (li.dataset.state === state && (!li.classList.contains('mine') ||
		(state === 'committed' ? ['check', 'checks'] : ['clock']).some((i) => !!li.querySelector('.msg-state .icon-' + i))))) &&
	(!author || li.querySelector('.msg-author').textContent === author))`

func e2eWaitMessage(p *webtest.Page, text, state, author string) {
	p.T.Helper()
	p.WaitFor(fmt.Sprintf("message %q (%s, by %s)", text, state, author), e2eHasMessage, text, state, author)
}

// e2eSend types text into the compose box and presses Enter.
func e2eSend(p *webtest.Page, text string) {
	p.T.Helper()
	p.SendKeys("#compose", text)
	p.PressEnter()
}

// e2eCount counts the messages p shows with exactly this text.
func e2eCount(p *webtest.Page, text string) int {
	p.T.Helper()
	return webtest.Eval[int](p, `Array.from(document.querySelectorAll('#message-list .msg-text')).filter((e) => e.textContent === `+jsonString(text)+`).length`)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// memberShows is true when the members panel lists id and its entry
// contains want.
const memberShows = `(id, want) => { const li = document.querySelector('#member-list [data-public-id="' + id + '"]'); return !!li && li.textContent.includes(want); }`

// memberIsHost is true when the members panel marks id as the host.
const memberIsHost = `(id) => { const li = document.querySelector('#member-list [data-public-id="' + id + '"]'); return !!li && !!li.querySelector('.badge-host'); }`

// hostOtherThan is true when the members panel marks a member other than
// old as the host.
const hostOtherThan = `(old) => { const b = document.querySelector('#member-list .badge-host'); return !!b && b.closest('.member').dataset.publicId !== old; }`

// e2eThree starts alice's, bob's and carol's nodes in a group named name
// that alice created and the others joined with her invites.
func e2eThree(t *testing.T, name string) (alice, bob, carol *e2eNode, g api.GroupInfo) {
	t.Helper()
	alice, bob, carol = startE2ENode(t, "alice"), startE2ENode(t, "bob"), startE2ENode(t, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := alice.svc.CreateGroup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*e2eNode{bob, carol} {
		code, err := alice.svc.Invite(ctx, g.GroupID, n.pub.String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.svc.Join(ctx, code); err != nil {
			t.Fatal(err)
		}
	}
	return alice, bob, carol, g
}
