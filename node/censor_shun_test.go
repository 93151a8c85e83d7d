package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// censor makes member host drop the proposals the members victims forward
// to it, answering as if it took them; everything else reaches its node,
// their appends' answers in the same batch included, as a censor's own
// build would take them. (Dropping the whole batch dropped those answers
// too: on a loaded machine the censor then lost its quorum, stepped down
// before anyone suspected it, and the tests watched an ordinary election.)
// A batch without the proposals is signed again with the victim's key,
// under the counter of the batch it replaces, which never arrives.
func (c *cluster) censor(host int, victims ...int) {
	c.censorWhere(host, func(*pb.Message) bool { return true }, victims...)
}

// censorWhere is censor of the victims' proposals that drop says to drop.
func (c *cluster) censorWhere(host int, drop func(*pb.Message) bool, victims ...int) {
	ids := map[[32]byte]*identity.Identity{}
	for _, v := range victims {
		ids[c.Member(v).ID.Public().Sign] = c.Member(v).ID
	}
	n := c.Node(host)
	c.net.Register(c.Member(host).URL, func(ctx context.Context, frame []byte) ([]byte, error) {
		env, err := crypto.Verify(frame)
		if err != nil || env.Type != crypto.TypeBatch || ids[env.Sender] == nil {
			return n.HandleFrame(ctx, frame)
		}
		items, err := crypto.DecodeBatch(env.Payload)
		if err != nil {
			return n.HandleFrame(ctx, frame)
		}
		kept := items[:0:0]
		for _, it := range items {
			m := &pb.Message{}
			if proto.Unmarshal(it, m) != nil || m.GetType() != pb.MsgProp || !drop(m) {
				kept = append(kept, it)
			}
		}
		switch {
		case len(kept) == len(items):
			return n.HandleFrame(ctx, frame)
		case len(kept) == 0:
			return nil, nil // "taken"
		}
		payload, err := crypto.EncodeBatch(kept)
		if err != nil {
			return nil, err
		}
		e := *env
		e.Payload = payload
		f, err := crypto.Sign(ids[env.Sender], &e)
		if err != nil {
			return nil, err
		}
		return n.HandleFrame(ctx, f)
	})
}

// chatter has member i send a message every 100 ms while more holds, and
// at most until the test ends.
func (c *cluster) chatter(i int, more func() bool) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c.t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; ctx.Err() == nil && more(); k++ {
			_, _ = c.Node(i).Send(ctx, c.GroupID, fmt.Sprintf("node%d chatter %d", i, k), 0)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

// name returns "nodeI" for member i's public id, or the id if no member
// has it.
func (c *cluster) name(id string) string {
	for i := range c.Members() {
		if c.Member(i).ID.Public().String() == id {
			return fmt.Sprintf("node%d", i)
		}
	}
	return id
}

// names maps name over ids.
func (c *cluster) names(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = c.name(id)
	}
	return out
}

// newCensorCluster forms a group of three on the simulated network with
// node0 in the middle, 40 ms from each of the others, which are 80 ms
// apart: node0 ranks a third better than either (a handover takes a
// fifth), and hosts once placement settles.
func newCensorCluster(t *testing.T, seed int64) *cluster {
	p := points{{0, 0}, {40, 0}, {-40, 0}}
	c := newClusterWith(t, len(p), seed, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(p, 0)
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				fastPlacement(cfg)
				// Short, for a quick test, but not so short that the
				// new host, honest, looks like a censor while it
				// commits the backlog on a loaded machine.
				cfg.CensorAfter = 3 * time.Second
			}
		}
	})
	c.form()
	c.waitVoters(3)
	// node0 hosts from the start (it created the group), before the
	// members' latency maps are in; on a loaded machine the first maps
	// once measured node0-node2 at 194 ms for 80, ranked node1 first, and
	// placement moved the group there for 35 s: the tests then watched an
	// honest host. Each test starts once the maps rank node0 first.
	best := c.Member(0).ID.Public().String()
	c.Eventually(t, 90*time.Second, "node0 to host, every node's latency maps ranking it first", func() bool {
		if c.Host() != 0 {
			return false
		}
		for i := range len(p) {
			if g, ok := c.Status(i); !ok || len(g.Edges) != 3 || firstByEdges(g.Edges) != best {
				return false
			}
		}
		return true
	})
	// And node0, which the tests make a censor, means to stay: it hands
	// over only when a test says so. Its placement, honest, handed over to
	// node1 twice in loaded runs, on maps that measured node2, which had
	// just joined, 214 ms from node0 (for 80) a second after they ranked
	// node0 first.
	if err := node.KeepHosting(ctxT(t, 10*time.Second), c.Node(0), c.GroupID); err != nil {
		t.Fatal(err)
	}
	return c
}

// firstByEdges returns the member whose edges add up to the least round
// trip: the one the ranking puts first when every edge is known.
func firstByEdges(edges []api.Edge) string {
	sum := map[string]float64{}
	for _, e := range edges {
		sum[e.A] += e.RTTMillis
		sum[e.B] += e.RTTMillis
	}
	first := ""
	for id, v := range sum {
		if first == "" || v < sum[first] {
			first = id
		}
	}
	return first
}

// withheld returns the leadership handovers node i withheld as host.
func (c *cluster) withheld(i int) uint64 { return c.groupFigures(i).TransfersWithheld }

// depositions returns the hosts node i stopped following for censorship.
// Unlike the status's Deposed, which shows only while node i's raft still
// names the deposed host (it loses it soon, dropping its heartbeats), the
// count stays.
func (c *cluster) depositions(i int) uint64 { return c.groupFigures(i).Depositions }

// groupFigures returns node i's running counts for the test's group.
func (c *cluster) groupFigures(i int) api.GroupFigures {
	for _, g := range c.Node(i).Figures().Groups {
		if g.GroupID == c.GroupID {
			return g
		}
	}
	return api.GroupFigures{}
}

// TestDeposedHostNotHandedBack: the best-placed member hosts the group and
// holds back both other voters' messages while it commits its own. They
// depose it and elect one of themselves, whose placement still ranks the
// old host first and asks to hand leadership back to it; the new host
// withholds that, so the censor does not come straight back and censor
// again.
func TestDeposedHostNotHandedBack(t *testing.T) {
	t.Parallel()
	c := newCensorCluster(t, 331)

	c.censor(0, 1, 2)
	ctx := ctxT(t, 60*time.Second)
	host := -1
	for try := 1; ; try++ {
		// node0 commits its own messages while it holds back the
		// others' (that is what makes it a censor), until the voters
		// depose it. Then it falls silent: the messages it queued
		// meanwhile would wait for the new host like any backlog, and on
		// a loaded machine node0 came to suspect that host, and deposed
		// it with the other voter (raft then elected node0 again), or
		// alone, counting the other voter's passing suspicion, for the
		// rest of the term (node0 then followed no one, so the new host
		// never asked to hand over to it).
		c.chatter(0, func() bool {
			for _, i := range []int{1, 2} {
				if c.depositions(i) > 0 {
					return false
				}
			}
			h := c.Host()
			return h != 1 && h != 2
		})
		held := [2]string{fmt.Sprintf("held back 1, try %d", try), fmt.Sprintf("held back 2, try %d", try)}
		for i, text := range held {
			if _, err := c.Node(i+1).Send(ctx, c.GroupID, text, 0); err != nil {
				t.Fatal(err)
			}
		}
		c.Eventually(t, 45*time.Second, "node1 or node2 to host, with the held-back messages committed", func() bool {
			host = c.Host()
			if host != 1 && host != 2 {
				return false
			}
			ms, err := c.Committed(host)
			if err != nil {
				return false
			}
			n := 0
			for _, m := range ms {
				if m.Text == held[0] || m.Text == held[1] {
					n++
				}
			}
			return n == 2
		})
		if c.depositions(1)+c.depositions(2) > 0 {
			break
		}
		// On a loaded machine node0 lost its seat before anyone deposed
		// it (its lease lapsed: "stepped down to follower since quorum
		// is not active"), and placement then rightly handed
		// leadership back to it: the scenario did not happen. Again,
		// with node0 hosting.
		if try == 3 {
			t.Fatalf("node0 lost its seat to node%d before the voters deposed it, %d times", host, try)
		}
		t.Logf("node%d hosts, but no voter deposed node0; again once node0 hosts again", host)
		c.handBackToNode0(ctx)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i := 0; i < 3; i++ {
			if st, ok := c.Status(i); ok {
				// Status puts the host first in its preference.
				t.Logf("node%d: %s in term %d, host %s, preference %v, withheld %d, censorship %+v", i, st.Role, st.Term, c.name(st.Host), c.names(st.Preference), c.withheld(i), st.Censorship)
			}
		}
	})
	// The new host's placement asks for node0; it withholds. (Node1 and
	// node2 are placed alike, so either may host meanwhile: count both.)
	// Without the shun, the first request handed leadership back. One is
	// what the test waits for: how often placement asks again depends on
	// latencies measured under load: on a loaded CI machine node2 withheld
	// two and then asked no more within the minute, node0 never hosting.
	// Most likely the hysteresis: that log's rankings measured 211 to 239
	// ms on links of 80, and with as much added to every round trip node0
	// is better than node2 by less than the fifth a handover takes.
	c.Eventually(t, 60*time.Second, "the new host to withhold a handover to node0", func() bool {
		if c.Host() == 0 {
			t.Fatalf("the deposed host got leadership back")
		}
		return c.withheld(1)+c.withheld(2) >= 1
	})
	if h := c.Host(); h == 0 {
		t.Fatalf("the deposed host got leadership back")
	}
}
