package node

import (
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// labelFixture is a group whose members 0 and 1 both go by "alice" (the
// second as "Alice ", an impostor), member 2 by "\u202eecila" (drawn
// "alice"), and member 3 by "bob", with this node member 3; and the view
// its goroutine would publish.
func labelFixture(t *testing.T) ([]*identity.Identity, *group, *view) {
	t.Helper()
	ids := seededIdentities(t, 4)
	names := []string{"alice", "Alice ", "\u202eecila", "bob"}
	st := votersOf(crypto.GroupID{7}, ids)
	v := &view{name: "club", members: map[[32]byte]viewMember{}, byRaft: map[uint64][32]byte{}}
	byID := map[identity.PublicID]string{}
	for i, id := range ids {
		k := id.Public().Sign
		m := st.Members[k]
		m.Name = names[i]
		v.members[k] = viewMember{id: m.ID, raftID: m.RaftID, voter: true, name: m.Name, order: i}
		v.byRaft[m.RaftID] = k
		byID[m.ID] = m.Name
	}
	v.namesakes = namesakesOf(byID)
	g := &group{n: &Node{self: ids[3].Public(), selfID: ids[3].Public().String()}, st: st, timing: LAN, role: raft.StateFollower, term: 7}
	return ids, g, v
}

// wantLabelled fails t unless s names member i of ids by its fingerprint.
func wantLabelled(t *testing.T, what, s string, ids []*identity.Identity, i ...int) {
	t.Helper()
	for _, k := range i {
		if fp := ids[k].Public().Fingerprint(); !strings.Contains(s, fp) {
			t.Errorf("%s %q does not show member %d's fingerprint %s beside its name", what, s, k, fp)
		}
	}
}

// TestForkAlertLabelsNames: the fork alert names the member whose history
// differs and the host as the member list does, with the fingerprint
// after a name another member goes by too or that passes for another, so
// that an impostor "Alice" cannot pass the blame to alice.
func TestForkAlertLabelsNames(t *testing.T) {
	ids, g, v := labelFixture(t)
	g.fork = &forkProof{Index: 9, Peer: key(ids[1]), Host: key(ids[0]), At: time.Now().UnixNano()}
	a := g.forkAlert(v)
	wantLabelled(t, "peer_name", a.PeerName, ids, 1)
	wantLabelled(t, "the fork alert", a.Message, ids, 0, 1)
	g.fork = &forkProof{Index: 9, Peer: key(ids[2]), Host: key(ids[3])}
	a = g.forkAlert(v)
	wantLabelled(t, "peer_name", a.PeerName, ids, 2)
	if a.Message != "" && strings.Contains(a.Message, ids[3].Public().Fingerprint()) {
		t.Errorf("the fork alert %q shows bob's fingerprint: his name is his own", a.Message)
	}
}

// TestCensorAlertLabelsHost: the censorship alert names the host as the
// member list does.
func TestCensorAlertLabelsHost(t *testing.T) {
	ids, g, v := labelFixture(t)
	host := g.st.Members[ids[1].Public().Sign].RaftID
	g.leader = host
	g.cw = censorWatch{host: raftView{term: 7, lead: host}, since: time.Now().Add(-time.Minute), suspect: true}
	a := g.censorAlert(v)
	if a == nil {
		t.Fatal("no censorship alert")
	}
	wantLabelled(t, "the censorship alert", a.Message, ids, 1)
}

// TestReformLabelsNames: a successor's continuation, an offer's problem
// and the names reform reports name members as the member list does.
func TestReformLabelsNames(t *testing.T) {
	ids, g, v := labelFixture(t)
	c := &successorOf{old: crypto.GroupID{7}, name: "club", index: 5, without: ids[0].Public(), creator: ids[1].Public()}
	a := g.n.continuation(c, v)
	wantLabelled(t, "without_name", a.WithoutName, ids, 0)
	wantLabelled(t, "by_name", a.ByName, ids, 1)
	wantLabelled(t, "the continuation", a.Message, ids, 0, 1)
	v.fork = &api.ForkAlert{Index: 9}
	o := &offer{succ: c, expires: time.Now().Add(time.Hour), known: true, matches: true}
	p := g.n.offerProblem(v, o, ids[2].Public())
	wantLabelled(t, "the offer's problem", p, ids, 0, 2)
	if got := memberName(v, ids[3].Public()); got != "bob" {
		t.Errorf("memberName of bob = %q, want his name alone", got)
	}
}

// key is id's signing key as a fork proof holds it.
func key(id *identity.Identity) []byte {
	k := id.Public().Sign
	return k[:]
}
