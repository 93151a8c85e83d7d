package adversary

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
)

// censoring wraps a malicious host's peer handler: batches from the
// members in drop that carry proposals are answered as if taken, and
// dropped. Everything else reaches the host's node as sent.
func censoring(drop *sync.Map) func(http.Handler) http.Handler {
	return censoringWhere(drop, func(*pb.Message) bool { return true })
}

// censoringWhere is censoring of the proposals that match says to drop.
func censoringWhere(drop *sync.Map, match func(*pb.Message) bool) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "cannot read", http.StatusBadRequest)
				return
			}
			if env, err := crypto.Verify(body); err == nil && env.Type == crypto.TypeBatch && isIn(drop, env.Sender) {
				items, _ := crypto.DecodeBatch(env.Payload)
				for _, it := range items {
					m := &pb.Message{}
					if proto.Unmarshal(it, m) == nil && m.GetType() == pb.MsgProp && match(m) {
						w.Header().Set("Content-Type", "application/octet-stream")
						return // "taken"
					}
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			h.ServeHTTP(w, r)
		})
	}
}

func isIn(m *sync.Map, k [32]byte) bool {
	_, ok := m.Load(k)
	return ok
}

// censorGroup forms a group of three with node 0 its host, which drops the
// proposals of the given members.
func censorGroup(t *testing.T, censored ...int) *group {
	drop := &sync.Map{}
	g := newGroup(t, 3, options{heads: true, handler: map[int]func(http.Handler) http.Handler{0: censoring(drop)}})
	for _, i := range censored {
		drop.Store(g.pub(i).Sign, true)
	}
	g.form(0, 1, 2)
	return g
}

// chatter has node i send a message every 200 ms until the test ends: the
// host committing other members' entries while it holds back a victim's is
// what the victim's suspicion needs, whenever the victim starts watching.
func (g *group) chatter(i int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_, _ = g.node(i).Send(ctx, g.id, fmt.Sprintf("business as usual %d", n), 0)
		}
	}()
}

// waitCensorship waits until node i's status shows a suspicion of
// censorship that cond accepts.
func (g *group) waitCensorship(i int, what string, cond func(a *api.CensorAlert) bool) *api.CensorAlert {
	g.t.Helper()
	var a *api.CensorAlert
	g.c.Eventually(g.t, 30*time.Second, what, func() bool {
		st, ok := g.c.Status(i)
		a = st.Censorship
		return ok && a != nil && cond(a)
	})
	return a
}

// TestHostCensorsOneMember: the host drops one member's proposals and
// commits everyone else's. The member sees it within seconds (the alert
// names the host); one voter's word does not move the host.
func TestHostCensorsOneMember(t *testing.T) {
	g := censorGroup(t, 1)
	ctx := ctxT(t, 60*time.Second)
	if m, err := g.node(1).Send(ctx, g.id, "is anyone there?", 500*time.Millisecond); err == nil && m.State == api.StateCommitted {
		t.Fatal("the censored member's message committed")
	}
	g.chatter(2)
	a := g.waitCensorship(1, "node1 to suspect the host", func(a *api.CensorAlert) bool { return !a.Since.IsZero() })
	if a.Host != g.pub(0).String() || a.Deposed || a.Voters != 1 || a.Needed != 2 {
		t.Errorf("alert %+v, want node0 suspected by 1 of the 2 voters needed, not deposed", a)
	}
	t.Logf("node1: %s", a.Message)
	if st, _ := g.c.Status(1); st.Host != g.pub(0).String() {
		t.Errorf("one voter's suspicion moved the host to %s", st.Host)
	}
}

// TestVotersDeposeCensoringHost: the host drops the proposals of both
// other voters. Both suspect it, which is a majority: they stop following
// it, elect one of themselves, and their messages commit.
func TestVotersDeposeCensoringHost(t *testing.T) {
	g := censorGroup(t, 1, 2)
	ctx := ctxT(t, 60*time.Second)
	for _, i := range []int{1, 2} {
		if _, err := g.node(i).Send(ctx, g.id, "held back", 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	g.chatter(0)
	g.c.Eventually(t, 30*time.Second, "the censored messages to commit on every honest node", func() bool {
		for _, i := range []int{1, 2} {
			ms, err := g.node(i).Messages(g.id)
			if err != nil {
				return false
			}
			n := 0
			for _, m := range ms {
				if m.Text == "held back" && m.State == api.StateCommitted {
					n++
				}
			}
			if n != 2 {
				return false
			}
		}
		return true
	})
	if st, _ := g.c.Status(1); st.Host == g.pub(0).String() || st.Host == "" {
		t.Errorf("the host after the deposition is %q, want node1 or node2", st.Host)
	}
}

// TestHostRefusesItsOwnRemoval: an admin removes the host, which drops the
// proposal (and everything else the admin proposes) while it goes on
// committing the others' messages. The admin sees the suspicion within
// seconds, while its removal waits.
func TestHostRefusesItsOwnRemoval(t *testing.T) {
	g := censorGroup(t, 1)
	a := hostRefusesRemoval(t, g, "the admin to suspect the host", 2)
	t.Logf("node1: %s", a.Message)
}

// hostRefusesRemoval makes node1 an admin of g, has it remove the host,
// node0, while the members chatters chat, and returns node1's alert once it
// suspects the host. It fails if the removal returns meanwhile (the host
// drops it), or if the host was removed after all.
func hostRefusesRemoval(t *testing.T, g *group, what string, chatters ...int) *api.CensorAlert {
	t.Helper()
	ctx := ctxT(t, 90*time.Second)
	if err := g.node(0).SetAdmin(ctx, g.id, g.pub(1).String(), true); err != nil {
		t.Fatal(err)
	}
	g.c.Eventually(t, 30*time.Second, "node1 to see itself an admin", func() bool {
		st, ok := g.c.Status(1)
		return ok && st.Admin
	})
	removed := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { removed <- g.node(1).Remove(rctx, g.id, g.pub(0).String()) }()
	for _, i := range chatters {
		g.chatter(i)
	}
	stillRefused := func() {
		select {
		case err := <-removed:
			t.Fatalf("the removal of the host returned while the host refuses it: %v", err)
		default:
		}
	}
	a := g.waitCensorship(1, what, func(a *api.CensorAlert) bool {
		stillRefused()
		return !a.Since.IsZero()
	})
	if a.Host != g.pub(0).String() {
		t.Errorf("alert %+v, want node0 suspected", a)
	}
	stillRefused()
	if !g.isMember(2, g.pub(0)) {
		t.Error("the host was removed although it dropped its removal")
	}
	return a
}

// censoringChanges is censoring, but it drops only the batches of the
// members in drop that carry a proposal of an entry other than a chat
// message: their chat messages commit, their changes never do.
func censoringChanges(drop *sync.Map) func(http.Handler) http.Handler {
	return censoringWhere(drop, func(m *pb.Message) bool {
		for _, e := range m.GetEntries() {
			if pe, err := crypto.Verify(e.GetData()); err != nil || pe.Type != crypto.TypeChat || e.GetType() != pb.EntryNormal {
				return true
			}
		}
		return false
	})
}

// TestHostRefusesItsOwnRemovalNotOurChat: as TestHostRefusesItsOwnRemoval,
// but the host commits the admin's chat messages, signed after the
// removal, and drops only the removal. The admin must still suspect it:
// counted as in the log once a later entry of the admin's was applied, the
// removal's wait restarted at each proposal, and the admin, chatting,
// never suspected the host that refused its removal.
func TestHostRefusesItsOwnRemovalNotOurChat(t *testing.T) {
	drop := &sync.Map{}
	g := newGroup(t, 3, options{heads: true, handler: map[int]func(http.Handler) http.Handler{0: censoringChanges(drop)}})
	g.form(0, 1, 2)
	drop.Store(g.pub(1).Sign, true) // node1 proposes nothing before its removal
	hostRefusesRemoval(t, g, "the admin to suspect the host that drops its removal", 2, 1)
}
