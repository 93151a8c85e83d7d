package adversary

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// Read receipts (docs/PROTOCOL.md, "Receipts") travel in the flags of
// signed pings and pongs. These tests attack them as a malicious member
// that forges its pongs, and as strangers and members that send crafted
// pings.

// Ping layout (docs/PROTOCOL.md, "Pings"): nonce (16) || kind (1) || term
// (8) || leader (8) || flags (1) || [read (8)] || [past (16)] || [head].
const (
	pingNonce   = 16
	pingKindOff = pingNonce
	pingFlagOff = pingNonce + 1 + 8 + 8
	flagRead    = 2
)

// pingPayload is a ping (kind 1) or pong (kind 2) payload with the given
// flags, read mark (written when flags say so) and trailing head bytes.
func pingPayload(nonce []byte, kind, flags byte, read uint64, head []byte) []byte {
	b := append([]byte{}, nonce...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = append(b, flags)
	if flags&flagRead != 0 {
		b = binary.BigEndian.AppendUint64(b, read)
	}
	return append(b, head...)
}

// readOf returns member j's read mark as node i shows it.
func (g *group) readOf(i, j int) uint64 {
	st, _ := g.c.Status(i)
	for _, m := range st.Members {
		if m.PublicID == g.pub(j).String() {
			return m.ReadThrough
		}
	}
	return 0
}

// pong modes of lyingPongs.
const (
	pongHonest   = iota
	pongBadHead  // a pong of kind 2 with a read mark and a head that is no statement
	pongEchoPing // the ping echoed whole, as a node before raft views does
)

// lyingPongs wraps a malicious member's peer handler: while mode says so,
// it answers the pings addressed to it with a pong it crafts and signs with
// its own node's key (*self, set once the group is formed).
func lyingPongs(mode *atomic.Int32, self *atomic.Pointer[node.Node], read uint64) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "cannot read", http.StatusBadRequest)
				return
			}
			n, m := self.Load(), mode.Load()
			if env, err := crypto.Verify(body); err == nil && n != nil && m != pongHonest && env.Type == crypto.TypePing && len(env.Payload) > pingNonce {
				payload := env.Payload // pongEchoPing
				if m == pongBadHead {
					payload = pingPayload(env.Payload[:pingNonce], 2, flagRead, read, []byte("not a head statement"))
				}
				frame, err := n.SignRaw(&crypto.Envelope{Type: crypto.TypePong, Group: env.Group, To: env.Sender, Payload: payload})
				if err == nil {
					w.Header().Set("Content-Type", "application/octet-stream")
					w.Write(frame)
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			h.ServeHTTP(w, r)
		})
	}
}

// TestReceiptsFromRejectedPongs: a pong the pinger rejects changes nothing.
// A malicious member answers pings with a signed pong whose head statement
// is no statement, or echoes the ping whole (what a node before raft views
// does, which also carries the pinger's own read mark and head): the pinger
// rejects both as "bad head statement", and must not have taken a read mark
// from them on the way, least of all its own one attributed to the member.
func TestReceiptsFromRejectedPongs(t *testing.T) {
	t.Parallel()
	const forged = 1 << 40
	var mode atomic.Int32
	var liar atomic.Pointer[node.Node]
	g := newGroup(t, 3, options{heads: true, handler: map[int]func(http.Handler) http.Handler{2: lyingPongs(&mode, &liar, forged)}})
	g.form(0, 1, 2)
	liar.Store(g.node(2))
	ctx := ctxT(t, 60*time.Second)

	// node0's person reads a message, so that node0's pings carry a mark.
	m, err := g.node(0).Send(ctx, g.id, "read me", 30*time.Second)
	if err != nil || m.State != node.StateCommitted {
		t.Fatalf("send: %v (state %q)", err, m.State)
	}
	own, err := g.node(0).MarkRead(ctx, g.id, m.ID)
	if err != nil || own == 0 {
		t.Fatalf("MarkRead: %d, %v", own, err)
	}

	for _, tc := range []struct {
		name string
		mode int32
		not  uint64 // the mark node0 must not show for node2
	}{
		{"the ping echoed whole", pongEchoPing, own},
		{"a read mark with a bad head", pongBadHead, forged},
	} {
		before := g.rejections(0, "bad head statement")
		mode.Store(tc.mode)
		testutil.Eventually(t, 30*time.Second, "node0 rejects node2's crafted pong", func() bool {
			return g.rejections(0, "bad head statement") > before+2
		})
		mode.Store(pongHonest)
		if r := g.readOf(0, 2); r == tc.not {
			t.Errorf("%s: node0 rejected node2's pong, yet shows node2 read through %d from it", tc.name, r)
		}
	}
}

// TestReceiptsFromCraftedPings: only a member's own, well-formed ping moves
// its read mark, and never back. A stranger's ping with a mark, a member's
// ping with a malformed payload or a bad head, and the replay of a member's
// ping are rejected, each with its reason, and change nothing.
func TestReceiptsFromCraftedPings(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 2, options{})
	g.form(0, 1)
	g.send(0, "one")
	g.send(0, "two")
	link := node.NewHTTPLink()
	defer link.CloseIdle()
	ctx := ctxT(t, 60*time.Second)
	to := g.pub(0).Sign
	nonce := bytes.Repeat([]byte{7}, pingNonce)
	post := func(frame []byte) error {
		_, err := link.Post(ctx, g.c.Member(0).URL, frame)
		return err
	}
	byMember := func(payload []byte) []byte {
		frame, err := g.node(1).SignRaw(&crypto.Envelope{Type: crypto.TypePing, Group: g.gid, To: to, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return frame
	}

	// A member's mark moves forward with its own ping.
	if err := post(byMember(pingPayload(nonce, 1, flagRead, 3, nil))); err != nil {
		t.Fatalf("a member's ping with a read mark: %v", err)
	}
	if r := g.readOf(0, 1); r != 3 {
		t.Fatalf("node0 shows node1 read through %d after its ping said 3", r)
	}
	replayed := byMember(pingPayload(nonce, 1, flagRead, 4, nil))
	if err := post(replayed); err != nil {
		t.Fatal(err)
	}

	stranger := outsider(t, 0x51)
	strangerPing, err := crypto.Sign(stranger, &crypto.Envelope{Type: crypto.TypePing, Group: g.gid, To: to,
		Counter: uint64(time.Now().UnixNano()), Time: time.Now().UnixNano(), Payload: pingPayload(nonce, 1, flagRead, 99, nil)})
	if err != nil {
		t.Fatal(err)
	}
	unknownFlag := pingPayload(nonce, 1, flagRead|16, 99, nil) // bits 0 to 3 are known
	cut := pingPayload(nonce, 1, flagRead, 99, nil)[:pingFlagOff+1+5]
	oversize := pingPayload(nonce, 1, flagRead, 99, make([]byte, 513))
	pong := pingPayload(nonce, 2, flagRead, 99, nil)
	badHead := pingPayload(nonce, 1, flagRead, 99, []byte("not a head statement"))
	for _, tc := range []struct {
		name, reason string
		frame        []byte
	}{
		{"a stranger's ping", "sender is not a member", strangerPing},
		{"a member's ping replayed", "replayed", replayed},
		{"unknown flags", "malformed ping", byMember(unknownFlag)},
		{"a read mark cut short", "malformed ping", byMember(cut)},
		{"an oversize head", "malformed ping", byMember(oversize)},
		{"a pong sent as a ping", "malformed ping", byMember(pong)},
		{"a bad head statement", "bad head statement", byMember(badHead)},
		{"a lower mark", "", byMember(pingPayload(nonce, 1, flagRead, 2, nil))},
	} {
		before := g.rejections(0, tc.reason)
		err := post(tc.frame)
		if tc.reason != "" {
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
			}
			if g.rejections(0, tc.reason) <= before {
				t.Errorf("%s: not counted as %q (%v)", tc.name, tc.reason, g.node(0).Status().Rejected)
			}
		}
		if r := g.readOf(0, 1); r != 4 {
			t.Errorf("%s: node0 shows node1 read through %d, want 4 still", tc.name, r)
		}
	}
}

// holdsOf returns how far node i shows member j's device holding the log.
func (g *group) holdsOf(i, j int) uint64 {
	st, _ := g.c.Status(i)
	for _, m := range st.Members {
		if m.PublicID == g.pub(j).String() {
			return m.HoldsThrough
		}
	}
	return 0
}

// TestDeliveryClaimedForAnother: only a member's own signed head statement,
// in its own ping, shows its device holding a message. While node2 is away,
// node1 relays to node0 a statement signed by node2 that matches node0's
// chain through a message node2 never received (a statement node2 could
// have signed, as every member's head there is the same): node0 rejects the
// ping and does not show the message delivered to node2. The same statement
// in node2's own ping does count, so the refusal is the sender check, not
// a bad statement.
func TestDeliveryClaimedForAnother(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 3, options{heads: true})
	g.form(0, 1, 2)
	g.c.Stop(2)
	g.send(0, "while node2 is away")
	_, st := g.outcomes(0)
	idx := st.Applied
	head, ok := st.HeadThrough(idx)
	if !ok {
		t.Fatal("no head")
	}
	if h := g.holdsOf(0, 2); h >= idx {
		t.Fatalf("node0 shows node2 holding through %d before any claim; the test needs it below %d", h, idx)
	}
	stmt := g.signAs(g.ident(2), crypto.TypeHead, &state.CheckpointBody{Index: idx, Head: head[:]})
	ctx := ctxT(t, 60*time.Second)
	link := node.NewHTTPLink()
	defer link.CloseIdle()
	nonce := bytes.Repeat([]byte{9}, pingNonce)

	relayed, err := g.node(1).SignRaw(&crypto.Envelope{Type: crypto.TypePing, Group: g.gid, To: g.pub(0).Sign, Payload: pingPayload(nonce, 1, 0, 0, stmt)})
	if err != nil {
		t.Fatal(err)
	}
	before := g.rejections(0, "bad head statement")
	if _, err := link.Post(ctx, g.c.Member(0).URL, relayed); err == nil {
		t.Error("node1's ping carrying node2's statement was accepted")
	}
	if g.rejections(0, "bad head statement") <= before {
		t.Error("node1's ping carrying node2's statement was not rejected as a bad head statement")
	}

	// node2's own ping with the same statement: it counts.
	now := time.Now().UnixNano()
	own, err := crypto.Sign(g.ident(2), &crypto.Envelope{Type: crypto.TypePing, Group: g.gid, To: g.pub(0).Sign, Counter: uint64(now), Time: now, Payload: pingPayload(nonce, 1, 0, 0, stmt)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := link.Post(ctx, g.c.Member(0).URL, own); err != nil {
		t.Fatalf("node2's own ping: %v", err)
	}
	testutil.Eventually(t, 30*time.Second, "node0 to show node2 holding the message by its own statement", func() bool {
		return g.holdsOf(0, 2) >= idx
	})
}
