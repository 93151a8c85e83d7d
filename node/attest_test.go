package node

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/demes/demes/election"
)

// TestLeaderAllowed checks the rule the transport applies to MsgApp and
// MsgHeartbeat from each kind of sender, as seen by a member R whose applied
// configuration has voters V1, V2 and R itself, and learners L (a newly
// promoted leader R has not heard of as a voter yet, or a liar) and M.
func TestLeaderAllowed(t *testing.T) {
	key := func(b byte) [32]byte { return [32]byte{b} }
	r, v1, v2, l, m, j := key(1), key(2), key(3), key(4), key(5), key(6)
	const lead = 44 // L's raft id
	applied := &view{
		members: map[[32]byte]viewMember{
			r: {voter: true}, v1: {voter: true}, v2: {voter: true}, l: {}, m: {},
		},
		leader: 22, term: 7,
	}
	cases := []struct {
		name string
		v    *view
		att  map[[32]byte]raftView
		from [32]byte
		term uint64
		want bool
	}{
		{name: "a voter", v: applied, from: v1, term: 9, want: true},
		{name: "a learner, nobody vouching", v: applied, from: l, term: 8, want: false},
		{name: "a learner a voter follows at that term", v: applied, from: l, term: 8,
			att: map[[32]byte]raftView{v2: {term: 8, lead: lead}}, want: true},
		{name: "a learner a voter followed at another term", v: applied, from: l, term: 9,
			att: map[[32]byte]raftView{v1: {term: 8, lead: lead}, v2: {term: 10, lead: lead}}, want: false},
		{name: "a learner a voter reports leaderless", v: applied, from: l, term: 8,
			att: map[[32]byte]raftView{v1: {term: 8}}, want: false},
		{name: "a learner only learners vouch for", v: applied, from: l, term: 8,
			att: map[[32]byte]raftView{l: {term: 8, lead: lead}, m: {term: 8, lead: lead}}, want: false},
		{name: "a learner a voter follows, at a higher term", v: applied, from: l, term: 12,
			att: map[[32]byte]raftView{v1: {term: 8, lead: lead}}, want: false},
		{name: "a learner this node already follows at that term",
			v: &view{members: applied.members, leader: lead, term: 8}, from: l, term: 8, want: true},
		{name: "a learner this node followed at an earlier term",
			v: &view{members: applied.members, leader: lead, term: 8}, from: l, term: 9, want: false},
		{name: "a report signed by this node's own key does not count", v: applied, from: l, term: 8,
			att: map[[32]byte]raftView{r: {term: 8, lead: lead}}, want: false},
		{name: "a joiner: a voter of its provisional list",
			v: &view{members: map[[32]byte]viewMember{j: {}, l: {}}, provVoters: map[[32]byte]bool{l: true}}, from: l, term: 3, want: true},
		{name: "a joiner: a provisional voter vouches",
			v:   &view{members: map[[32]byte]viewMember{j: {}, l: {}, v1: {}}, provVoters: map[[32]byte]bool{v1: true}},
			att: map[[32]byte]raftView{v1: {term: 3, lead: lead}}, from: l, term: 3, want: true},
		{name: "a joiner: a provisional learner",
			v: &view{members: map[[32]byte]viewMember{j: {}, l: {}, v1: {}}, provVoters: map[[32]byte]bool{v1: true}}, from: l, term: 3, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := leaderAllowed(tc.v, r, tc.att, tc.from, lead, tc.term); got != tc.want {
				t.Fatalf("leaderAllowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRaftViewSupersedes(t *testing.T) {
	cases := []struct {
		old, new raftView
		want     bool
	}{
		{raftView{}, raftView{term: 1}, true},
		{raftView{term: 5, lead: 9}, raftView{term: 6}, true},
		{raftView{term: 5}, raftView{term: 5, lead: 9}, true},
		// Within a term a leader is never forgotten or replaced: a
		// reordered, older ping cannot undo a report.
		{raftView{term: 5, lead: 9}, raftView{term: 5}, false},
		{raftView{term: 5, lead: 9}, raftView{term: 5, lead: 8}, false},
		{raftView{term: 5, lead: 9}, raftView{term: 4, lead: 9}, false},
		{raftView{term: 5, lead: 9}, raftView{term: 5, lead: 9}, false},
	}
	for _, tc := range cases {
		if got := tc.new.supersedes(tc.old); got != tc.want {
			t.Errorf("%+v supersedes %+v = %v, want %v", tc.new, tc.old, got, tc.want)
		}
	}
}

// TestPingPayload checks the ping and pong payloads against the example in
// docs/PROTOCOL.md, and what a receiver accepts.
func TestPingPayload(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xab}, 16)
	got := encodePing(nonce, pingKindPong, raftView{term: 7, lead: 0x0102030405060708}, pingExtra{})
	want, _ := hex.DecodeString("abababababababababababababababab" + "02" + "0000000000000007" + "0102030405060708" + "00")
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %x, want %x", got, want)
	}
	n, kind, rv, x, err := decodePing(got)
	if err != nil || !bytes.Equal(n, nonce) || kind != pingKindPong || rv != (raftView{term: 7, lead: 0x0102030405060708}) || x.flags != 0 || x.statement != nil {
		t.Fatalf("decoded %x %d %+v %+v %v", n, kind, rv, x, err)
	}
	// A bare nonce, as nodes before raft views send it; a view without
	// flags, as nodes before heads send it.
	if n, kind, _, _, err := decodePing(nonce); err != nil || kind != 0 || !bytes.Equal(n, nonce) {
		t.Fatalf("bare nonce: %x %d %v", n, kind, err)
	}
	if _, _, rv, x, err := decodePing(got[:pingViewLen]); err != nil || rv.term != 7 || x.flags != 0 || x.statement != nil {
		t.Fatalf("view only: %+v %+v %v", rv, x, err)
	}
	// The flags and a statement follow the view, and come back as they went.
	statement := bytes.Repeat([]byte{0x5a}, 200)
	withHead := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingSuspect, statement: statement})
	if !bytes.Equal(withHead[:pingViewLen], encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{})[:pingViewLen]) {
		t.Fatalf("the extra changes the bytes before it: %x", withHead)
	}
	if _, _, _, x, err := decodePing(withHead); err != nil || x.flags != pingSuspect || !bytes.Equal(x.statement, statement) {
		t.Fatalf("extra decoded as %+v, %v", x, err)
	}
	// A read mark comes between the flags and the statement, as in
	// docs/PROTOCOL.md.
	withRead := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingRead, read: 0x0a0b, statement: statement})
	if want, _ := hex.DecodeString("02" + "0000000000000a0b" + "5a5a"); !bytes.Equal(withRead[pingViewLen:pingViewLen+11], want) {
		t.Fatalf("flags and read mark encoded as %x, want %x", withRead[pingViewLen:pingViewLen+11], want)
	}
	if _, _, _, x, err := decodePing(withRead); err != nil || x.flags != pingRead || x.read != 0x0a0b || !bytes.Equal(x.statement, statement) {
		t.Fatalf("read mark decoded as %+v, %v", x, err)
	}
	// A past suspicion comes after the read mark.
	withPast := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingRead | pingPast, read: 0x0a0b, past: raftView{term: 6, lead: 0x11}, statement: statement})
	if want, _ := hex.DecodeString("0a" + "0000000000000a0b" + "0000000000000006" + "0000000000000011" + "5a5a"); !bytes.Equal(withPast[pingViewLen:pingViewLen+27], want) {
		t.Fatalf("flags, read mark and past suspicion encoded as %x, want %x", withPast[pingViewLen:pingViewLen+27], want)
	}
	if _, _, _, x, err := decodePing(withPast); err != nil || x.past != (raftView{term: 6, lead: 0x11}) || x.read != 0x0a0b || !bytes.Equal(x.statement, statement) {
		t.Fatalf("past suspicion decoded as %+v, %v", x, err)
	}
	// The last log entry comes after the past suspicion.
	withLog := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingSilent | pingPast | pingLog, past: raftView{term: 6, lead: 0x11}, log: election.LogPos{Term: 6, Index: 0x0102}, statement: statement})
	if want, _ := hex.DecodeString("1c" + "0000000000000006" + "0000000000000011" + "0000000000000006" + "0000000000000102" + "5a5a"); !bytes.Equal(withLog[pingViewLen:pingViewLen+35], want) {
		t.Fatalf("flags, past suspicion and last log entry encoded as %x, want %x", withLog[pingViewLen:pingViewLen+35], want)
	}
	if _, _, _, x, err := decodePing(withLog); err != nil || x.log != (election.LogPos{Term: 6, Index: 0x0102}) || x.past.term != 6 || !bytes.Equal(x.statement, statement) {
		t.Fatalf("last log entry decoded as %+v, %v", x, err)
	}
	cutLog := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingLog, log: election.LogPos{Term: 1, Index: 2}})[:pingFlagsLen+9]
	cutPast := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingPast, past: raftView{term: 6, lead: 1}})[:pingFlagsLen+12]
	pastOfNoHost := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingPast, past: raftView{term: 6}})
	tooLong := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{statement: make([]byte, maxHeadFrame+1)})
	tooLongRead := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingRead, statement: make([]byte, maxHeadFrame+1)})
	if _, _, _, x, err := decodePing(encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingPair})); err != nil || x.flags != pingPair {
		t.Fatalf("the pair flag decoded as %+v, %v", x, err)
	}
	unknownFlag := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: 64})
	cutRead := encodePing(nonce, pingKindPing, raftView{term: 7}, pingExtra{flags: pingRead, read: 9})[:pingFlagsLen+5]
	bad := [][]byte{nil, nonce[:15], append(append([]byte{}, nonce...), 1), got[:32], tooLong, tooLongRead, unknownFlag, cutRead, cutPast, pastOfNoHost, cutLog}
	unknownKind := append([]byte{}, got...)
	unknownKind[16] = 3
	bad = append(bad, unknownKind)
	for _, p := range bad {
		if _, _, _, _, err := decodePing(p); !errors.Is(err, errPingPayload) {
			t.Errorf("decodePing(%x): %v, want errPingPayload", p, err)
		}
	}
}
