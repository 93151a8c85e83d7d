package node

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/demes/demes/state"
)

// memTentative is a tentative store in memory whose writes fail while err
// is set.
type memTentative struct {
	stored map[string][]byte
	err    error
}

func (m *memTentative) UpdateTentative(_ []byte, put map[string][]byte, drop [][]byte) error {
	if m.err != nil {
		return m.err
	}
	for k, v := range put {
		m.stored[k] = v
	}
	for _, id := range drop {
		delete(m.stored, string(id))
	}
	return nil
}

func (m *memTentative) Tentative([]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(m.stored))
	for k, v := range m.stored {
		out[k] = v
	}
	return out, nil
}

func (m *memTentative) TentativeOf(_ []byte, ids [][]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for _, id := range ids {
		if v, ok := m.stored[string(id)]; ok {
			out[string(id)] = v
		}
	}
	return out, nil
}

// TestTentativeDropsBounded: while a member's disk refuses its writes of
// tentative messages, it still notes each stored one it stops holding (the
// log committed it) to forget it at the next write that succeeds. What it
// keeps for that must not grow with every message held and committed for
// as long as the writes fail; and once they succeed, the store holds
// exactly the messages still held, so a restart shows none of the
// committed ones as tentative again.
func TestTentativeDropsBounded(t *testing.T) {
	st := &memTentative{stored: map[string][]byte{}}
	g := &group{n: &Node{log: zerolog.Nop()}, tent: map[[16]byte]*heldMessage{}, tentBy: map[[32]byte]int{},
		tentPut: map[string][]byte{}, tentStore: st, tentRestored: true, st: &state.State{}}
	hold := func(k int) [16]byte {
		var id [16]byte
		copy(id[:], fmt.Sprintf("%016d", k))
		author := [32]byte{byte(k / maxTentativeHeld)} // at most maxTentativeHeld each
		g.tent[id] = &heldMessage{author: author}
		g.tentBy[author]++
		g.tentPut[string(id[:])] = []byte("frame")
		return id
	}
	// Ten members' messages, as many as each may have held, are held and
	// stored while writes work, then committed while they fail.
	const total, kept = 10 * maxTentativeHeld, 5
	var ids [][16]byte
	for k := range total {
		ids = append(ids, hold(k))
	}
	g.saveTentative()
	if len(st.stored) != total {
		t.Fatalf("the store holds %d of %d messages: the test is broken", len(st.stored), total)
	}
	st.err = errors.New("input/output error")
	still := ids[:kept]
	for _, id := range ids[kept:] {
		g.committedTentative(id, "", false)
		g.saveTentative()
	}
	if n := len(g.tentDrop); n > maxTentativeDrops {
		t.Fatalf("%d ids wait to be forgotten after %d messages committed while writes fail; want at most %d", n, total-kept, maxTentativeDrops)
	}
	st.err = nil
	g.saveTentative()
	if len(st.stored) != kept {
		t.Fatalf("the store holds %d tentative messages once writes work again; want the %d still held", len(st.stored), kept)
	}
	for _, id := range still {
		if _, ok := st.stored[string(id[:])]; !ok {
			t.Fatalf("the store lost a message still held")
		}
	}
	if len(g.tentDrop) != 0 || g.tentResync {
		t.Fatalf("after a successful write, %d ids still wait (resync %v)", len(g.tentDrop), g.tentResync)
	}
}
