package adversary

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// TestNonCanonicalEncodings: M signs entries whose bodies are valid values
// in a second, non-canonical CBOR encoding (a string length and integers
// not in their shortest form, an indefinite-length array), and an envelope
// whose own body encodes its type the long way: a second frame for the same
// statement, or room to hide bytes in one. Each is rejected by the honest
// members and counted, and the honest state is unchanged (the address M
// slipped in is not taken).
func TestNonCanonicalEncodings(t *testing.T) {
	t.Parallel()
	const c, a, m = 0, 1, 2 // creator (admin), honest, malicious
	g := newGroup(t, 3, options{})
	g.form(c, a, m)
	g.send(c, "something to checkpoint")
	// An honest host drops entries it cannot even read the type of; M
	// hosts, so that they reach the log and the state machine.
	g.makeHost(m, c, a)
	before := g.settled(c, a)
	counted := g.count("malformed", c, a)

	url := g.c.Member(m).URL + "/" // another spelling of M's address: taken, it would show
	cKey := g.pub(c).Sign
	_, st := g.outcomes(c)
	head := st.Chain
	cases := []struct {
		what string
		t    crypto.Type
		body []byte
		want any // the value the body encodes
	}{
		{"an address with a two-byte string length", crypto.TypeAddress,
			cat([]byte{0x81, 0x79}, be16(len(url)), []byte(url)), &state.AddressBody{URL: url}},
		{"an address in an indefinite-length array", crypto.TypeAddress,
			cat([]byte{0x9f}, text(url), []byte{0xff}), &state.AddressBody{URL: url}},
		{"a latency map with a four-byte RTT of 5", crypto.TypeLatencyMap,
			cat([]byte{0x82, 0x81, 0x58, 0x20}, cKey[:], []byte{0x81, 0x1a, 0, 0, 0, 5}), &state.LatencyBody{Peers: [][]byte{cKey[:]}, RTTus: []uint32{5}}},
		{"a checkpoint with an eight-byte index", crypto.TypeCheckpoint,
			cat([]byte{0x82, 0x1b}, be64(head.Index), []byte{0x58, 0x20}, head.Head[:]), &state.CheckpointBody{Index: head.Index, Head: head.Head[:]}},
	}
	var at []uint64
	for _, tc := range cases {
		sameValue(t, tc.what, tc.body, tc.want)
		at = append(at, g.signedFresh(c, func() uint64 { return g.commit(m, c, g.signBy(m, tc.t, tc.body)) }))
	}
	at = append(at, g.signedFresh(c, func() uint64 {
		return g.commit(m, c, g.longTypeEnvelope(m, crypto.TypeAddress, &state.AddressBody{URL: url}))
	}))

	res, _ := g.outcomes(c)
	for k, idx := range at {
		what := "an envelope with its type as a two-byte integer"
		if k < len(cases) {
			what = cases[k].what
		}
		g.rejected(res, idx, what, "malformed")
	}
	g.applied(at[len(at)-1], c, a)
	g.unchanged(before, c, a)
	g.rose(counted, int64(len(at)))
}

// sameValue fails the test unless body, read by a lenient decoder, is the
// value want: the entry says what a valid one says, in other bytes.
func sameValue(t *testing.T, what string, body []byte, want any) {
	t.Helper()
	canonical, err := state.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(canonical) == string(body) {
		t.Fatalf("%s: the body is the canonical encoding", what)
	}
	got := newLike(want)
	if err := cbor.Unmarshal(body, got); err != nil {
		t.Fatalf("%s: the body does not decode: %v", what, err)
	}
	if again, _ := state.Encode(got); string(again) != string(canonical) {
		t.Fatalf("%s: the body decodes to %+v, not %+v", what, got, want)
	}
}

func newLike(v any) any {
	switch v.(type) {
	case *state.AddressBody:
		return &state.AddressBody{}
	case *state.LatencyBody:
		return &state.LatencyBody{}
	case *state.CheckpointBody:
		return &state.CheckpointBody{}
	}
	panic(fmt.Sprintf("no such body: %T", v))
}

// longTypeEnvelope signs, as node m's identity and with a counter of m's, an
// envelope of type t with body whose own encoding writes the type as a
// two-byte integer: the envelope of a valid frame in other bytes.
func (g *group) longTypeEnvelope(m int, t crypto.Type, body any) []byte {
	g.t.Helper()
	payload, err := state.Encode(body)
	if err != nil {
		g.t.Fatal(err)
	}
	// A counter of m's that its node will not use again.
	e, err := crypto.Verify(g.signBy(m, t, payload))
	if err != nil {
		g.t.Fatal(err)
	}
	var zero [32]byte
	b := cat([]byte{0x86, 0x19}, be16(int(t)), // array of 6; the type, two bytes long
		[]byte{0x50}, g.gid[:], []byte{0x58, 0x20}, zero[:],
		[]byte{0x1b}, be64(e.Counter), []byte{0x1b}, be64(uint64(e.Time)))
	if len(payload) < 24 {
		b = append(b, 0x40+byte(len(payload)))
	} else {
		b = append(b, 0x58, byte(len(payload)))
	}
	b = append(b, payload...)
	id := g.ident(m)
	sender := id.Public().Sign
	head := append([]byte{crypto.Version}, sender[:]...)
	sig := id.Sign(cat([]byte("DeMeS envelope v1\x00"), head, b))
	frame := cat(head, sig, b)
	// The same envelope, canonically encoded, is a valid frame.
	canon, err := crypto.Sign(id, &crypto.Envelope{Type: t, Group: g.gid, Counter: e.Counter, Time: e.Time, Payload: payload})
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := crypto.Verify(canon); err != nil || string(canon[97:]) == string(b) {
		g.t.Fatalf("the long-type envelope is not another encoding of a valid one: %v", err)
	}
	return frame
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// text is the canonical encoding of a text string of under 256 bytes.
func text(s string) []byte {
	if len(s) < 24 {
		return append([]byte{0x60 + byte(len(s))}, s...)
	}
	return append([]byte{0x78, byte(len(s))}, s...)
}

func be16(n int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(n)) }

func be64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
