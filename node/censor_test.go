package node

import (
	"testing"

	"github.com/demes/demes/state"
)

// TestCountSuspecting: who counts towards deposing a host. The host never
// does: a busy benchmark group stalled for good when a new host's first
// pings still carried its suspicion of its predecessor, and the one other
// live voter counted it as suspecting itself, deposed it, and left no
// majority to elect anyone (three voters, one down).
func TestCountSuspecting(t *testing.T) {
	a, b, c := [32]byte{1}, [32]byte{2}, [32]byte{3}
	voters := [][32]byte{a, b, c}
	hostB := raftView{term: 3, lead: state.RaftID(b)}
	older := raftView{term: 2, lead: state.RaftID(a)}
	for _, tc := range []struct {
		name    string
		mine    *raftView
		reports map[[32]byte]raftView
		want    int
	}{
		{"nobody", nil, nil, 0},
		{"this node", &hostB, nil, 1},
		{"this node and a voter", &hostB, map[[32]byte]raftView{c: hostB}, 2},
		{"a suspicion of another term", &older, map[[32]byte]raftView{c: older}, 0},
		{"the host's own report", &hostB, map[[32]byte]raftView{b: hostB}, 1},
		{"a non-voter", nil, map[[32]byte]raftView{{9}: hostB}, 0},
	} {
		if got := countSuspecting(voters, a, tc.mine, hostB, tc.reports); got != tc.want {
			t.Errorf("%s: %d suspecting, want %d", tc.name, got, tc.want)
		}
	}
}
