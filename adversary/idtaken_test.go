package adversary

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
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
	key := crypto.NewSenderKey(g.gid, g.pub(m).Sign, g.epochOf(m))
	at := g.commit(m, c, g.sealedChatID(m, key, true, "M's message under A's id", id))
	if res, _ := g.outcomes(c); res[at].Err != nil {
		t.Fatalf("M's message under A's id was rejected (%v): the test would prove nothing", res[at].Err)
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
