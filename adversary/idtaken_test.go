package adversary

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

// idThief is a host's peer handler that steals the id of the first chat
// message the victim forwards to it: it drops every proposal of the
// victim's that carries that id, and sends the id on stolen.
type idThief struct {
	victim sync.Map // [32]byte -> true
	stolen chan [16]byte
	mu     sync.Mutex
	id     *[16]byte
}

func (th *idThief) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read", http.StatusBadRequest)
			return
		}
		if env, err := crypto.Verify(body); err == nil && env.Type == crypto.TypeBatch && isIn(&th.victim, env.Sender) && th.take(env.Payload) {
			w.Header().Set("Content-Type", "application/octet-stream")
			return // "taken"
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h.ServeHTTP(w, r)
	})
}

// take reports whether the batch proposes a chat message under the stolen
// id, stealing the id of the first one it sees.
func (th *idThief) take(batch []byte) bool {
	for _, inner := range proposed(batch) {
		var b state.ChatBody
		if inner.Type != crypto.TypeChat || state.Decode(inner.Payload, &b) != nil || len(b.ID) != 16 {
			continue
		}
		th.mu.Lock()
		if th.id == nil {
			th.id = (*[16]byte)(b.ID)
			th.stolen <- *th.id
		}
		same := *th.id == [16]byte(b.ID)
		th.mu.Unlock()
		if same {
			return true
		}
	}
	return false
}

// TestStolenMessageID: a host sees the id of every message forwarded to it
// before it commits it, and the state machine accepts each id once, from
// whoever commits it first. M, hosting, drops member A's message and
// commits one of its own under its id. A's node used to take any message
// committed under the id for its own: it dropped its message from its
// outbox as delivered, and the censorship went unseen (the censorship
// watch looks at the outbox). Claim: A's message is committed all the
// same, once, under a new id, and A's node counts the taken id.
func TestStolenMessageID(t *testing.T) {
	t.Parallel()
	stealMessageID(t, false)
}

// TestStolenMessageIDAtRestart: as TestStolenMessageID, but A's node
// crashes after it stored M's message under the id of A's queued one, and
// its commit, and before it applied it (the window between writing a raft
// Ready and applying its entries). The queued message comes back from A's
// store at the restart, and the replay of the log shows its id taken by M:
// A's node must not take M's message for its own (and drop its message as
// delivered), but send its message again under a new id, once.
func TestStolenMessageIDAtRestart(t *testing.T) {
	t.Parallel()
	stealMessageID(t, true)
}

// stealMessageID runs the attack of TestStolenMessageID, with A's node
// crashed and restarted around M's commit when atRestart is set, and
// checks the claim.
func stealMessageID(t *testing.T, atRestart bool) {
	const m, a, c = 0, 1, 2 // malicious host, honest sender, honest member
	th := &idThief{stolen: make(chan [16]byte, 1)}
	g := newGroup(t, 3, options{heads: true, handler: map[int]func(http.Handler) http.Handler{m: th.wrap}})
	th.victim.Store(g.pub(a).Sign, true)
	g.form(m, a, c)
	g.send(m, "M's first")
	taken := g.count("message id of a queued message taken", a)

	queued, err := g.node(a).Send(ctxT(t, 30*time.Second), g.id, "A's message", 0)
	if err != nil {
		t.Fatal(err)
	}
	var id [16]byte
	select {
	case id = <-th.stolen:
	case <-time.After(30 * time.Second):
		t.Fatal("A's message never reached the host")
	}
	if hex.EncodeToString(id[:]) != queued.ID {
		t.Fatalf("the host stole id %x, A's message is %s", id, queued.ID)
	}
	if atRestart {
		g.c.Crash(a)
	}
	key := crypto.NewSenderKey(g.gid, g.pub(m).Sign, g.epochOf(m))
	at := g.commit(m, c, g.sealedChatID(m, key, true, "M's message under A's id", id))
	if res, _ := g.outcomes(c); res[at].Err != nil {
		t.Fatalf("M's message under A's id was rejected (%v): the test would prove nothing", res[at].Err)
	}
	if atRestart {
		g.storeUnapplied(a, c, at)
		if err := g.c.Start(a); err != nil {
			t.Fatal(err)
		}
		taken.before[a] = 0 // the restarted node counts from zero
	}

	for _, i := range []int{c, a} {
		g.c.Eventually(t, 60*time.Second, g.c.Member(i).Name+" to list A's message, committed", func() bool {
			all, tentative := g.shown(i, "A's message")
			return all == 1 && tentative == 0
		})
	}
	ms, err := g.node(c).Messages(g.id)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range ms {
		if msg.Text == "A's message" && (msg.ID == queued.ID || msg.Author != g.pub(a).String()) {
			t.Errorf("A's message is listed under id %s by %s, want a new id, by A", msg.ID, msg.Author)
		}
	}
	g.rose(taken, 1)
}

// storeUnapplied writes into the store of stopped node i the entries node h
// holds after i's log, through index at, and the commit index at, as node
// i's raft would have stored them had it crashed before applying them.
func (g *group) storeUnapplied(i, h int, at uint64) {
	g.t.Helper()
	st, err := store.Open(filepath.Join(g.c.Member(i).Dir, "store.db"))
	if err != nil {
		g.t.Fatal(err)
	}
	defer st.Close()
	_, end, err := st.LogBounds(g.gid[:])
	if err != nil {
		g.t.Fatal(err)
	}
	ents, err := g.node(h).RaftEntries(g.id, end+1, at+1)
	if err != nil || len(ents) == 0 || ents[len(ents)-1].GetIndex() != at {
		g.t.Fatalf("node%d's entries %d to %d: %d, %v", h, end+1, at, len(ents), err)
	}
	hs, err := st.HardState(g.gid[:])
	if err != nil {
		g.t.Fatal(err)
	}
	hs.Commit = proto.Uint64(at)
	hs.Term = proto.Uint64(max(hs.GetTerm(), ents[len(ents)-1].GetTerm()))
	if err := st.SaveRaft(g.gid[:], hs, ents, nil, nil); err != nil {
		g.t.Fatal(err)
	}
}
