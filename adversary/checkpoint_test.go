package adversary

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/transcript"
)

// droppingCheckpoints wraps a malicious host's peer handler: a batch that
// proposes a checkpoint is answered as if taken, and dropped (the batch is
// signed by its sender, so the host cannot take the rest of it alone; the
// members propose their messages again from their outboxes). dropped
// counts the checkpoints dropped, by proposer.
func droppingCheckpoints(mu *sync.Mutex, dropped map[[32]byte]int) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "cannot read", http.StatusBadRequest)
				return
			}
			if n := checkpointsIn(body); n > 0 {
				env, _ := crypto.Verify(body)
				mu.Lock()
				dropped[env.Sender] += n
				mu.Unlock()
				w.Header().Set("Content-Type", "application/octet-stream")
				return // "taken"
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			h.ServeHTTP(w, r)
		})
	}
}

// checkpointsIn counts the checkpoints a batch proposes.
func checkpointsIn(frame []byte) int {
	env, err := crypto.Verify(frame)
	if err != nil || env.Type != crypto.TypeBatch {
		return 0
	}
	n := 0
	for _, inner := range proposed(env.Payload) {
		if inner.Type == crypto.TypeCheckpoint {
			n++
		}
	}
	return n
}

// proposed returns the envelopes of the entries that the raft proposals of
// batch (a batch envelope's payload) carry, those that verify.
func proposed(batch []byte) []*crypto.Envelope {
	items, _ := crypto.DecodeBatch(batch)
	var out []*crypto.Envelope
	for _, it := range items {
		m := &pb.Message{}
		if proto.Unmarshal(it, m) != nil || m.GetType() != pb.MsgProp {
			continue
		}
		for _, e := range m.GetEntries() {
			if inner, err := crypto.Verify(e.GetData()); err == nil {
				out = append(out, inner)
			}
		}
	}
	return out
}

// TestHostDropsCheckpoints: the host drops every checkpoint the members
// propose, so the log holds no signed head of theirs (only the host's own). Members still attest each other's histories: their signed heads
// travel directly in their pings, never through the host, and a transcript
// that one member exports passes `verify --trust` of the other.
func TestHostDropsCheckpoints(t *testing.T) {
	var mu sync.Mutex
	dropped := map[[32]byte]int{}
	often := func(cfg *node.Config) {
		cfg.CheckpointEntries, cfg.CheckpointInterval = 1, 200*time.Millisecond
	}
	g := newGroup(t, 3, options{heads: true,
		handler: map[int]func(http.Handler) http.Handler{0: droppingCheckpoints(&mu, dropped)},
		tweak: map[int]func(*node.Config){
			1: often, 2: often,
		}})
	g.form(0, 1, 2)
	for i, text := range []string{"one", "two", "three", "four"} {
		g.send(1+i%2, text)
	}
	g.c.Eventually(t, 30*time.Second, "the host to drop checkpoints of both members", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return dropped[g.pub(1).Sign] > 0 && dropped[g.pub(2).Sign] > 0
	})
	for _, e := range g.log(1) {
		if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeCheckpoint && env.Sender != g.pub(0).Sign {
			t.Fatalf("a checkpoint of %x reached the log at %d (by node%d)", env.Sender[:4], e.Index, g.signer(env.Sender))
		}
	}
	ctx := ctxT(t, 60*time.Second)
	for _, p := range [][2]int{{1, 2}, {2, 1}} {
		exporter, trusted := p[0], p[1]
		var sum *transcript.Summary
		g.c.Eventually(t, 30*time.Second, "node's head to reach the end of the other's transcript", func() bool {
			doc, err := g.node(exporter).Transcript(ctx, g.id, api.TranscriptRange{})
			if err != nil {
				t.Fatal(err)
			}
			sum, err = transcript.Verify(doc, []identity.PublicID{g.pub(trusted)})
			return err == nil
		})
		if len(sum.Trusted) != 1 || sum.Trusted[0] != g.pub(trusted) {
			t.Errorf("node%d's transcript is trusted by %v, want node%d", exporter, sum.Trusted, trusted)
		}
	}
	if a := g.c.Alerts(); a != "" {
		t.Errorf("members halted or suspect the host:\n%s", a)
	}
}

// signer is the index of the node whose signing key is k, -1 if none.
func (g *group) signer(k [32]byte) int {
	for i := range g.c.Members() {
		if g.pub(i).Sign == k {
			return i
		}
	}
	return -1
}
