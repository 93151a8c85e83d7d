package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// busyWorld builds a group's log with every kind of entry and every part of
// the state in use: joins, an open invite, promotions and a demotion,
// address updates, latency maps (one empty), checkpoints, chats with and
// without key headers, retries and duplicates, rejected entries, raft's
// empty entries, a removal and a leave (former members), and sender keys
// registered in the last epoch.
func busyWorld(t testing.TB) *world {
	w := newWorld(t, 6)
	a, b, c, d, e := w.ids[0], w.ids[1], w.ids[2], w.ids[3], w.ids[4]
	must := func(r Result) {
		t.Helper()
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	chats := func(rounds int, from ...*identity.Identity) {
		t.Helper()
		for _, id := range from {
			k := crypto.NewSenderKey(w.group, id.Public().Sign, w.s.Epoch)
			must(w.chatWith(id, k, w.s.Recipients(), crypto.NewMessageID()))
			for range rounds {
				must(w.chatWith(id, k, nil, crypto.NewMessageID()))
			}
			// A retry sealed again under the same key, with the header.
			must(w.chatWith(id, k, w.s.Recipients(), crypto.NewMessageID()))
		}
	}
	w.raw(w.frame(a, crypto.TypeInvite, w.invite(b.Public().Bytes()))) // before the genesis: rejected
	w.genesis()
	w.raw(nil) // raft's entry after an election
	must(w.join(1))
	must(w.join(2))
	chats(2, a, b)
	must(w.conf(a, crypto.TypePromote, &TargetBody{Target: key(b), Voter: true}, RaftID(b.Public().Sign), AddVoter))
	must(w.conf(a, crypto.TypePromote, &TargetBody{Target: key(c), Voter: true}, RaftID(c.Public().Sign), AddVoter))
	must(w.entry(b, crypto.TypeAddress, &AddressBody{URL: "http://b.example"}))
	must(w.entry(a, crypto.TypeLatencyMap, &LatencyBody{Peers: [][]byte{key(b), key(c)}, RTTus: []uint32{1500, 250}}))
	must(w.entry(b, crypto.TypeLatencyMap, &LatencyBody{}))
	must(w.entry(c, crypto.TypeLatencyMap, &LatencyBody{Peers: [][]byte{key(a)}, RTTus: []uint32{4_000_000_000}}))
	head, _ := w.s.HeadAt(w.index)
	must(w.entry(c, crypto.TypeCheckpoint, &CheckpointBody{Index: w.index, Head: head[:]}))
	dup := crypto.NewMessageID()
	must(w.chat(c, w.s.Recipients(), dup))
	wantRejected(t, w.chat(a, w.s.Recipients(), dup), "duplicate")
	must(w.join(3))
	chats(1, c, d)
	must(w.entry(c, crypto.TypeLead, &LeadBody{Term: 2}))
	must(w.conf(c, crypto.TypePromote, &TargetBody{Target: key(d), Voter: true}, RaftID(d.Public().Sign), AddVoter))
	must(w.entry(a, crypto.TypeLead, &LeadBody{Term: 3}))
	must(w.conf(a, crypto.TypePromote, &TargetBody{Target: key(b), Voter: false}, RaftID(b.Public().Sign), AddLearner))
	must(w.conf(a, crypto.TypeRemove, &TargetBody{Target: key(c)}, RaftID(c.Public().Sign), Remove))
	must(w.conf(d, crypto.TypeLeave, &struct{}{}, RaftID(d.Public().Sign), Remove))
	wantRejected(t, w.entry(c, crypto.TypeAddress, &AddressBody{URL: "http://gone"}), "not a member")
	forged := w.frame(b, crypto.TypeAddress, &AddressBody{URL: "http://forged"})
	forged[len(forged)-1] ^= 1
	wantRejected(t, w.raw(forged), "bad envelope")
	w.raw(nil)
	must(w.entry(a, crypto.TypeAdmin, &AdminBody{Target: key(b), Admin: true}))
	must(w.entry(b, crypto.TypeSettings, &SettingsBody{MembersInvite: true}))
	must(w.entry(b, crypto.TypeInvite, w.invite(c.Public().Bytes())))
	must(w.entry(a, crypto.TypeRevoke, &TargetBody{Target: key(c)}))
	must(w.entry(a, crypto.TypeInvite, w.invite(e.Public().Bytes()))) // left open
	chats(3, a, b)
	head, _ = w.s.HeadAt(w.index - 2)
	must(w.entry(a, crypto.TypeCheckpoint, &CheckpointBody{Index: w.index - 2, Head: head[:]}))
	return w
}

// TestSnapshotRestoresEveryField: at every position of a busy log, a state
// restored from a snapshot equals the state it was taken of, unexported
// fields included; it applies the rest of the log with exactly the original's
// results, and ends equal to it.
func TestSnapshotRestoresEveryField(t *testing.T) {
	w := busyWorld(t)
	if len(w.s.Former) != 2 || len(w.s.Invites) != 1 || len(w.s.keys) != 2 || len(w.s.Latency) != 2 {
		t.Fatalf("the busy log does not fill the state: %d former, %d invites, %d senders with keys, %d latency maps",
			len(w.s.Former), len(w.s.Invites), len(w.s.keys), len(w.s.Latency))
	}
	// The original run, with its results and a snapshot after each entry.
	orig := New(w.group)
	results := make([]Result, len(w.log))
	snaps := make([][]byte, len(w.log)+1)
	var err error
	if snaps[0], err = orig.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i, e := range w.log {
		results[i] = e.apply(orig)
		if snaps[i+1], err = orig.Snapshot(); err != nil {
			t.Fatal(err)
		}
		r, err := Restore(w.group, snaps[i+1])
		if err != nil {
			t.Fatalf("restore after entry %d: %v", e.index, err)
		}
		if !reflect.DeepEqual(r, orig) {
			t.Fatalf("after entry %d: the restored state differs:\n got %+v\nwant %+v", e.index, r, orig)
		}
	}
	if !reflect.DeepEqual(orig, w.s) {
		t.Fatal("applying the log again gave another state")
	}
	for k := range snaps {
		r, err := Restore(w.group, snaps[k])
		if err != nil {
			t.Fatalf("restore after %d entries: %v", k, err)
		}
		for i := k; i < len(w.log); i++ {
			if got := w.log[i].apply(r); !reflect.DeepEqual(got, results[i]) {
				t.Fatalf("restored after %d entries, entry %d: got %+v, want %+v", k, w.log[i].index, got, results[i])
			}
		}
		if !reflect.DeepEqual(r, orig) {
			t.Fatalf("restored after %d entries, the state after the whole log differs", k)
		}
		again, err := r.Snapshot()
		if err != nil || !bytes.Equal(again, snaps[len(snaps)-1]) {
			t.Fatalf("restored after %d entries: the final snapshot differs (%v)", k, err)
		}
	}
}

// TestAcceptedChat: the restored state tells exactly which entries of the
// log are accepted chat messages, and what ApplyEntry said of them.
func TestAcceptedChat(t *testing.T) {
	w := busyWorld(t)
	orig := New(w.group)
	data, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Restore(w.group, data)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range w.log {
		res := e.apply(orig)
		got := r.AcceptedChat(e.index, e.frame)
		if e.conf {
			got = nil // a membership change is never a chat, whatever its frame
		}
		want := res.Chat
		if want != nil && want.Epoch != r.Epoch {
			w := *want
			w.KeyAt = 0 // not kept after its epoch
			want = &w
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entry %d: AcceptedChat = %+v, want %+v", e.index, got, want)
		}
		if want != nil {
			n++
		}
		// Elsewhere in the log, the same frame is not the accepted message.
		if want != nil && r.AcceptedChat(e.index+1, e.frame) != nil {
			t.Fatalf("entry %d is taken for an accepted chat at %d", e.index, e.index+1)
		}
	}
	if n != r.MsgIDs.Len() {
		t.Fatalf("%d accepted chats found, the state accepted %d", n, r.MsgIDs.Len())
	}
}

// TestRestoreRejects: a snapshot that is not exactly what Snapshot writes
// for some state of this group is refused, with an error that says so.
func TestRestoreRejects(t *testing.T) {
	w := busyWorld(t)
	good, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var wire snapshotWire
	if err := snapDecMode.Unmarshal(good, &wire); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(w *snapshotWire)) []byte {
		var c snapshotWire
		if err := snapDecMode.Unmarshal(good, &c); err != nil {
			t.Fatal(err)
		}
		f(&c)
		b, err := encMode.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := w.group
	other[0] ^= 1
	for _, tc := range []struct {
		name  string
		group crypto.GroupID
		data  []byte
	}{
		{"empty", w.group, nil},
		{"truncated", w.group, good[:len(good)-1]},
		{"trailing bytes", w.group, append(append([]byte{}, good...), 0)},
		{"another group", other, good},
		{"another version", w.group, edit(func(s *snapshotWire) { s.Version = SnapshotVersion + 1 })},
		{"message ids out of order", w.group, edit(func(s *snapshotWire) { s.MsgIDs = packIDs(unpackIDs(s.MsgIDs), 0, 1) })},
		{"a repeated message id", w.group, edit(func(s *snapshotWire) {
			ids := unpackIDs(s.MsgIDs)
			ids[1].id = ids[0].id
			s.MsgIDs = packIDs(ids)
		})},
		{"two messages at one index", w.group, edit(func(s *snapshotWire) {
			ids := unpackIDs(s.MsgIDs)
			ids[1].index = ids[0].index
			s.MsgIDs = packIDs(ids)
		})},
		{"a message after the applied index", w.group, edit(func(s *snapshotWire) {
			ids := unpackIDs(s.MsgIDs)
			ids[0].index = s.Applied + 1
			s.MsgIDs = packIDs(ids)
		})},
		{"a message at index 0", w.group, edit(func(s *snapshotWire) {
			ids := unpackIDs(s.MsgIDs)
			ids[0].index = 0
			s.MsgIDs = packIDs(ids)
		})},
		{"a message cut short", w.group, edit(func(s *snapshotWire) { s.MsgIDs = s.MsgIDs[:len(s.MsgIDs)-1] })},
		{"an index in a longer form", w.group, edit(func(s *snapshotWire) {
			ids := unpackIDs(s.MsgIDs)
			var b []byte
			for i, m := range ids {
				b = append(b, m.id[:]...)
				if i == 0 {
					b = append(b, byte(m.index)|0x80, byte(m.index>>7)|0x80, 0) // padded
					continue
				}
				b = binary.AppendUvarint(b, m.index)
			}
			s.MsgIDs = b
		})},
		{"a member's raft id", w.group, edit(func(s *snapshotWire) { s.Members[0].RaftID++ })},
		{"a former member who has not left", w.group, edit(func(s *snapshotWire) { s.Former[0].LeftAt = 0 })},
		{"a member also former", w.group, edit(func(s *snapshotWire) { s.Former = append(s.Former, s.Members[0]) })},
		{"a head out of order", w.group, edit(func(s *snapshotWire) { s.Heads[1].Index = s.Heads[0].Index })},
		{"a chain that is not its last head", w.group, edit(func(s *snapshotWire) { s.Chain.Head = s.Heads[0].Head })},
		{"a sender key of an earlier epoch", w.group, edit(func(s *snapshotWire) { s.Keys[0].Keys[0].Index = s.Epoch })},
		{"a negative latency", w.group, edit(func(s *snapshotWire) { s.Latency[0].Peers[0].Millis = -1 })},
		{"an empty list written as empty, not nil", w.group, edit(func(s *snapshotWire) { s.Latency[1].Peers = []rttWire{} })},
	} {
		if _, err := Restore(tc.group, tc.data); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: got %v, want ErrBadSnapshot", tc.name, err)
		}
	}
	if _, err := Restore(w.group, good); err != nil {
		t.Fatalf("the good snapshot: %v", err)
	}
}

// FuzzRestore: Restore never panics, refuses with ErrBadSnapshot, and what it
// accepts encodes back to exactly the bytes it read.
//
//	go test ./state -run '^$' -fuzz FuzzRestore -fuzztime 1m -fuzzminimizetime 2s
//
// (Minimizing a new input as big as a snapshot takes the default minute.)
func FuzzRestore(f *testing.F) {
	group := crypto.GroupID{1, 2, 3} // newWorld's
	busy, err := busyWorld(f).s.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	empty, err := New(group).Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(empty)
	f.Add(busy)
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Restore(group, data)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			return
		}
		again, err := s.Snapshot()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("%x restores and encodes to %x (%v)", data, again, err)
		}
	})
}

// bigState is the state of a group after n chat messages, as far as its
// size goes: n accepted ids and n chain heads.
func bigState(b *testing.B, n int) *State {
	s := busyWorld(b).s
	base := s.Applied
	for i := range n {
		var id [16]byte
		copy(id[:], fmt.Sprintf("%016d", i))
		index := base + uint64(i) + 1
		s.MsgIDs.add(id, index)
		s.chain(index, id[:])
	}
	return s
}

// BenchmarkSnapshot measures a snapshot of a group after 100,000 and
// 1,000,000 messages (the group's goroutine takes one every
// Config.SnapshotEntries entries).
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			s := bigState(b, n)
			var size int
			for b.Loop() {
				data, err := s.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

// BenchmarkRestore measures restoring those states from a snapshot that
// holds the ids (a copy for a catch-up; a restart before 18b8d37).
func BenchmarkRestore(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			s := bigState(b, n)
			data, err := s.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Restore(s.Group, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type packedID struct {
	id    [16]byte
	index uint64
}

func unpackIDs(b []byte) []packedID {
	var out []packedID
	for len(b) > 0 {
		index, n := binary.Uvarint(b[16:])
		out = append(out, packedID{[16]byte(b[:16]), index})
		b = b[16+n:]
	}
	return out
}

// packIDs packs ids, with the items at swap (two positions) swapped.
func packIDs(ids []packedID, swap ...int) []byte {
	if len(swap) == 2 {
		ids[swap[0]], ids[swap[1]] = ids[swap[1]], ids[swap[0]]
	}
	var b []byte
	for _, m := range ids {
		b = binary.AppendUvarint(append(b, m.id[:]...), m.index)
	}
	return b
}
