package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
)

// joinTap wraps a member's HTTP peer handler and records, for each join
// request it serves, the status of the answer and whether the joiner was
// still waiting for it when it was written.
type joinTap struct {
	mu       sync.Mutex
	inFlight int   // join requests being served
	answered []int // status of each join answer written while the joiner waited
	gone     int   // join requests whose joiner went away before the answer
}

func (tp *joinTap) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, crypto.MaxFrame+1))
		if err != nil {
			http.Error(w, "cannot read", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		env, err := crypto.Verify(body)
		if err != nil || env.Type != crypto.TypeJoin {
			h.ServeHTTP(w, r)
			return
		}
		tp.mu.Lock()
		tp.inFlight++
		tp.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		tp.mu.Lock()
		defer tp.mu.Unlock()
		tp.inFlight--
		if r.Context().Err() != nil {
			tp.gone++
		} else {
			tp.answered = append(tp.answered, sw.code)
		}
	})
}

func (tp *joinTap) state() (inFlight int, answered []int, gone int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.inFlight, append([]int(nil), tp.answered...), tp.gone
}

// TestJoinGetsTheMembersAnswer: a member that takes a join waits (15 s) for
// it to commit, and answers that it could not when the group cannot commit.
// Over HTTP every request used to be cut after 10 s, so the joiner never
// got that answer (a member on libp2p answered it as a bare refusal), and
// the person joining was told something vaguer. The waits now nest (the
// member's < the joiner's request < the link's cap), and the joiner says
// that the group could not commit the join.
func TestJoinGetsTheMembersAnswer(t *testing.T) {
	for _, transport := range []string{"http", "p2p"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			tap := &joinTap{}
			o := nodetest.Options{Seed: 381, HTTP: transport == "http", P2P: transport == "p2p"}
			if o.HTTP {
				o.Handler = func(i int, h http.Handler) http.Handler {
					if i == 1 {
						return tap.wrap(h)
					}
					return h
				}
			}
			c, code := stalledJoinCluster(t, o, 20*time.Second)
			ctx := ctxT(t, 60*time.Second)
			_, err := c.Node(2).Join(ctx, code)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("join while the group cannot commit: %v (context: %v), want a reason before the context ends", err, ctx.Err())
			}
			if !errors.Is(err, node.ErrUnreachable) || !strings.Contains(err.Error(), "could not commit this node's join in time") ||
				!strings.Contains(err.Error(), "most of its members are offline") {
				t.Errorf("join error %q: want ErrUnreachable saying the group could not commit the join in time, most of its members offline", err)
			}
			if o.HTTP {
				_, answered, _ := tap.state()
				if len(answered) == 0 || answered[0] != http.StatusServiceUnavailable {
					t.Errorf("node 1 answered join requests %v while the joiner waited, want 503 first", answered)
				}
			}
		})
	}
}

// TestJoinerGoneStopsTheMember: a member waiting for a join to commit stops
// when the joiner goes away, rather than propose and wait for it on.
func TestJoinerGoneStopsTheMember(t *testing.T) {
	t.Parallel()
	tap := &joinTap{}
	c, code := stalledJoinCluster(t, nodetest.Options{Seed: 383, HTTP: true,
		Handler: func(i int, h http.Handler) http.Handler {
			if i == 1 {
				return tap.wrap(h)
			}
			return h
		}}, 20*time.Second)
	ctx, cancel := context.WithCancel(ctxT(t, 60*time.Second))
	done := make(chan error, 1)
	go func() {
		_, err := c.Node(2).Join(ctx, code)
		done <- err
	}()
	c.Eventually(t, 10*time.Second, "node 1 serves the join", func() bool { n, _, _ := tap.state(); return n == 1 })
	start := time.Now()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("join succeeded while the group cannot commit")
	}
	// The member's own wait is 15 s.
	c.Eventually(t, 5*time.Second, "node 1 stops serving the join", func() bool { n, _, _ := tap.state(); return n == 0 })
	if _, _, gone := tap.state(); gone != 1 {
		t.Errorf("%d join requests ended with the joiner gone, want 1", gone)
	}
	t.Logf("node 1 stopped %v after the joiner went away", time.Since(start).Round(time.Millisecond))
}

// TestJoinRefusesOversizedSelf: a member refuses a join whose display name
// or peer URL is over what a display name (keys.MaxNameLen) or a peer URL
// (what an address entry may carry) can be, before it proposes anything,
// and the joiner says why at once instead of asking again.
func TestJoinRefusesOversizedSelf(t *testing.T) {
	for _, tc := range []struct {
		name, transport string
		tweak           func(*node.Config)
		want            string
	}{
		{"name", "sim", func(cfg *node.Config) { cfg.Name = strings.Repeat("n", 65) }, "the display name is 65 bytes, at most 64 fit"},
		{"name", "http", func(cfg *node.Config) { cfg.Name = strings.Repeat("n", 65) }, "the display name is 65 bytes, at most 64 fit"},
		{"control", "sim", func(cfg *node.Config) { cfg.Name = "bad\x1b[2Jname" }, "the display name contains control characters"},
		{"url", "sim", func(cfg *node.Config) { cfg.URL += "/" + strings.Repeat("u", 600) }, "the peer URL is"},
		{"url", "http", func(cfg *node.Config) { cfg.URL += "/" + strings.Repeat("u", 600) }, "the peer URL is"},
	} {
		t.Run(tc.name+"/"+tc.transport, func(t *testing.T) {
			t.Parallel()
			c := newClusterOf(t, nodetest.Options{Size: 2, Seed: 389, HTTP: tc.transport == "http"}, func(c *cluster) {
				c.Member(1).Tweak = tc.tweak
			})
			ctx := ctxT(t, 60*time.Second)
			gi, err := c.Node(0).CreateGroup(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			c.GroupID = gi.GroupID
			code, err := c.Node(0).Invite(ctx, gi.GroupID, c.Member(1).ID.Public().String())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Node(1).Join(ctx, code)
			if !errors.Is(err, node.ErrInvalid) || !strings.Contains(err.Error(), "refused this node's join: "+tc.want) {
				t.Fatalf("join: %v, want ErrInvalid saying the member refused it: %s", err, tc.want)
			}
			// A join proposed would have committed (the group commits):
			// one member still, the invite still open. (The commit
			// index is no measure: upkeep commits meanwhile.)
			after, _ := c.Status(0)
			if len(after.Members) != 1 {
				t.Errorf("after the refusal: %d members, want the joiner not added", len(after.Members))
			}
			if invs, _ := c.Node(0).Invites(gi.GroupID); len(invs) != 1 {
				t.Errorf("%d open invites after the refusal, want the invite still open", len(invs))
			}
		})
	}
}

// TestMemberCannotRefuseAJoinForTheOthers: a member that answers every
// join request with a refusal of what the joiner says about itself (a
// malicious one: an honest member refuses only an oversized name or URL,
// which every member would refuse) does not stop a join that another
// member takes. The joiner stopped at the first such refusal; now only the
// inviter's, or every member's, is final.
func TestMemberCannotRefuseAJoinForTheOthers(t *testing.T) {
	t.Parallel()
	const evil = 1
	o := nodetest.Options{Size: 4, Seed: 397, HTTP: true,
		Handler: func(i int, h http.Handler) http.Handler {
			if i != evil {
				return h
			}
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, crypto.MaxFrame+1))
				if err != nil {
					http.Error(w, "cannot read", http.StatusBadRequest)
					return
				}
				if env, err := crypto.Verify(body); err == nil && env.Type == crypto.TypeJoin {
					http.Error(w, "join refused: the display name is not to my liking", http.StatusBadRequest)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				h.ServeHTTP(w, r)
			})
		}}
	c := newClusterOf(t, o, nil)
	ctx := ctxT(t, 120*time.Second)
	// Node 0 answers these joins: the evil member is not asked.
	c.formOf("g", 3)
	// An invite for node 3 that names the evil member before the honest
	// one (the order of the members after the inviter is the map's).
	evilURL, honestURL := c.Member(evil).URL, c.Member(2).URL
	var code string
	for try := 0; ; try++ {
		if try == 20 {
			t.Fatal("no invite named the evil member before the honest one in 20 tries")
		}
		var err error
		if code, err = c.Node(0).Invite(ctx, c.GroupID, c.Member(3).ID.Public().String()); err != nil {
			t.Fatal(err)
		}
		inv, err := node.ParseInvite(code)
		if err != nil {
			t.Fatal(err)
		}
		at := map[string]int{}
		for k, u := range inv.URLs {
			at[u] = k
		}
		if e, ok := at[evilURL]; ok && e < at[honestURL] {
			break
		}
	}
	c.Eventually(t, 30*time.Second, "the members hold the invite", func() bool {
		for i := 1; i <= 2; i++ {
			if invs, _ := c.Node(i).Invites(c.GroupID); len(invs) != 1 {
				return false
			}
		}
		return true
	})
	// The inviter is gone: the joiner asks the evil member, then the
	// honest one, which the remaining two voters of three let commit.
	c.Crash(0)
	if _, err := c.Node(3).Join(ctx, code); err != nil {
		t.Fatalf("join with the inviter down and one member refusing every join: %v", err)
	}
}
