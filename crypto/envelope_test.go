package crypto

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	alice, bob := testID(t, 1), testID(t, 2)
	tests := []struct {
		name string
		e    Envelope
	}{
		{"chat to group", Envelope{Type: TypeChat, Group: testGroup, Counter: 1, Time: 2, Payload: []byte("sealed")}},
		{"ping to peer", Envelope{Type: TypePing, Group: testGroup, To: bob.Public().Sign, Counter: math.MaxUint64, Time: math.MaxInt64}},
		{"negative time", Envelope{Type: TypePong, Counter: 0, Time: math.MinInt64, Payload: []byte{}}},
		{"unknown type", Envelope{Type: 200, Group: testGroup, Payload: []byte{0}}},
		{"large payload", Envelope{Type: TypeBatch, Payload: bytes.Repeat([]byte{0xab}, 1<<20)}},
		{"max payload", Envelope{Type: TypeBatch, Payload: make([]byte, MaxPayload)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			frame := mustSign(t, alice, &e)
			if e.Sender != alice.Public().Sign {
				t.Fatalf("Sign set Sender to %x, want the signer's key", e.Sender)
			}
			if len(frame) > MaxFrame {
				t.Fatalf("frame of %d bytes is over MaxFrame", len(frame))
			}
			got, err := Verify(frame)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != e.Type || got.Group != e.Group || got.Sender != e.Sender || got.To != e.To ||
				got.Counter != e.Counter || got.Time != e.Time || !bytes.Equal(got.Payload, e.Payload) {
				t.Fatalf("round trip changed the envelope:\n got %+v\nwant %+v", got, e)
			}
		})
	}
}

func TestSignRejects(t *testing.T) {
	alice := testID(t, 1)
	tests := []struct {
		name string
		e    Envelope
		want error
	}{
		{"type 0", Envelope{Type: 0}, ErrMalformed},
		{"payload over limit", Envelope{Type: TypeBatch, Payload: make([]byte, MaxPayload+1)}, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Sign(alice, &tc.e); !errors.Is(err, tc.want) {
				t.Fatalf("Sign = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Sign(nil, &Envelope{Type: TypePing}); err == nil {
		t.Fatal("Sign with a nil identity succeeded")
	}
}

// TestVerifyEveryByte flips each bit of a frame, and each whole byte, in
// turn: no change to any byte may verify.
func TestVerifyEveryByte(t *testing.T) {
	alice := testID(t, 1)
	frame := mustSign(t, alice, &Envelope{Type: TypeChat, Group: testGroup, To: testID(t, 2).Public().Sign,
		Counter: 1700000000000000000, Time: 1700000000123456789, Payload: []byte("ciphertext")})
	if _, err := Verify(frame); err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		for _, mask := range []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff} {
			f := bytes.Clone(frame)
			f[i] ^= mask
			want := ErrSignature
			if i == 0 {
				want = ErrVersion
			}
			if _, err := Verify(f); !errors.Is(err, want) {
				t.Fatalf("byte %d ^ %#02x: Verify = %v, want %v", i, mask, err, want)
			}
		}
	}
}

// TestVerifySwappedPayload swaps the payloads of two signed envelopes, as a
// relay trying to pass one member's ciphertext off under another's envelope
// would: both must fail.
func TestVerifySwappedPayload(t *testing.T) {
	alice, bob := testID(t, 1), testID(t, 2)
	ea := Envelope{Type: TypeChat, Group: testGroup, Counter: 1, Time: 1, Payload: []byte("alice's ciphertext")}
	eb := Envelope{Type: TypeChat, Group: testGroup, Counter: 1, Time: 1, Payload: []byte("bob's ciphertext!!")}
	fa, fb := mustSign(t, alice, &ea), mustSign(t, bob, &eb)
	swap := func(frame []byte, e Envelope, payload []byte) []byte {
		e.Payload = payload
		body, err := encodeBody(&e)
		if err != nil {
			t.Fatal(err)
		}
		return append(bytes.Clone(frame[:headerSize]), body...)
	}
	for name, f := range map[string][]byte{
		"alice's envelope, bob's payload": swap(fa, ea, eb.Payload),
		"bob's envelope, alice's payload": swap(fb, eb, ea.Payload),
		"alice's header, bob's body":      append(bytes.Clone(fa[:headerSize]), fb[headerSize:]...),
		"alice's signature on bob's":      append(append(bytes.Clone(fb[:1+keySize]), fa[1+keySize:headerSize]...), fb[headerSize:]...),
	} {
		if _, err := Verify(f); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Verify = %v, want %v", name, err, ErrSignature)
		}
	}
}

// cborBody builds an envelope body from raw CBOR items, so that tests can
// write encodings the encoder never produces.
func cborBody(items ...[]byte) []byte { return bytes.Join(items, nil) }

var (
	cGroup   = append([]byte{0x50}, testGroup[:]...)           // byte string of 16
	cTo      = append([]byte{0x58, 0x20}, make([]byte, 32)...) // byte string of 32
	cPayload = []byte{0x42, 'h', 'i'}
)

func TestVerifyRejects(t *testing.T) {
	alice := testID(t, 1)
	good := mustSign(t, alice, &Envelope{Type: TypePing, Group: testGroup, Counter: 5, Time: 7, Payload: []byte("hi")})
	goodBody := cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x05, 0x07}, cPayload)
	if !bytes.Equal(good[headerSize:], goodBody) {
		t.Fatalf("test body builder is off:\n got %x\nwant %x", goodBody, good[headerSize:])
	}
	signed := func(body []byte) []byte { return signRaw(alice, Version, body) }
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrMalformed},
		{"version 0", signRaw(alice, 0, goodBody), ErrVersion},
		{"version 2", signRaw(alice, 2, goodBody), ErrVersion},
		{"header cut", good[:50], ErrMalformed},
		{"header only", good[:headerSize], ErrMalformed},
		{"body cut", good[:len(good)-1], ErrSignature},
		{"byte appended", append(bytes.Clone(good), 0), ErrSignature},
		{"over MaxFrame", append([]byte{Version}, make([]byte, MaxFrame)...), ErrTooLarge},
		{"control: good body", signed(goodBody), nil},
		{"non-shortest counter", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x18, 0x05, 0x07}, cPayload)), ErrMalformed},
		{"trailing data in body", signed(append(bytes.Clone(goodBody), 0x00)), ErrMalformed},
		{"array of 5", signed(cborBody([]byte{0x85, 0x03}, cGroup, cTo, []byte{0x05}, cPayload)), ErrMalformed},
		{"array of 7", signed(cborBody([]byte{0x87, 0x03}, cGroup, cTo, []byte{0x05, 0x07}, cPayload, []byte{0x00})), ErrMalformed},
		{"indefinite array", signed(cborBody([]byte{0x9f, 0x03}, cGroup, cTo, []byte{0x05, 0x07}, cPayload, []byte{0xff})), ErrMalformed},
		{"indefinite payload", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x05, 0x07, 0x5f, 0x42, 'h', 'i', 0xff})), ErrMalformed},
		{"tagged body", signed(append([]byte{0xc1}, goodBody...)), ErrMalformed},
		{"map body", signed(cborBody([]byte{0xa1, 0x00, 0x00})), ErrMalformed},
		{"null body", signed([]byte{0xf6}), ErrMalformed},
		{"type 0", signed(cborBody([]byte{0x86, 0x00}, cGroup, cTo, []byte{0x05, 0x07}, cPayload)), ErrMalformed},
		{"type 256", signed(cborBody([]byte{0x86, 0x19, 0x01, 0x00}, cGroup, cTo, []byte{0x05, 0x07}, cPayload)), ErrMalformed},
		{"group of 15", signed(cborBody([]byte{0x86, 0x03, 0x4f}, testGroup[:15], cTo, []byte{0x05, 0x07}, cPayload)), ErrMalformed},
		{"group of 17", signed(cborBody([]byte{0x86, 0x03, 0x51}, testGroup[:], []byte{0}, cTo, []byte{0x05, 0x07}, cPayload)), ErrMalformed},
		{"to empty", signed(cborBody([]byte{0x86, 0x03}, cGroup, []byte{0x40, 0x05, 0x07}, cPayload)), ErrMalformed},
		{"to of 31", signed(cborBody([]byte{0x86, 0x03}, cGroup, []byte{0x58, 0x1f}, make([]byte, 31), []byte{0x05, 0x07}, cPayload)), ErrMalformed},
		{"negative counter", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x20, 0x07}, cPayload)), ErrMalformed},
		{"float time", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x05, 0xf9, 0x3c, 0x00}, cPayload)), ErrMalformed},
		{"text payload", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x05, 0x07, 0x62, 'h', 'i'})), ErrMalformed},
		{"null payload", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x05, 0x07, 0xf6})), ErrMalformed},
		{"payload longer than body", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x05, 0x07, 0x45, 'h', 'i'})), ErrMalformed},
		{"huge declared length", signed(cborBody([]byte{0x86, 0x03}, cGroup, cTo, []byte{0x05, 0x07, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.frame)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if err.Error() != strings.ToLower(err.Error()[:1])+err.Error()[1:] {
				t.Errorf("error %q does not start in lower case", err)
			}
		})
	}
}

func TestBatchRoundTrip(t *testing.T) {
	many := make([][]byte, MaxBatchItems)
	for i := range many {
		many[i] = []byte{byte(i), byte(i >> 8)}
	}
	tests := []struct {
		name  string
		items [][]byte
	}{
		{"empty", [][]byte{}},
		{"one empty item", [][]byte{{}}},
		{"three", [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 300), {0}}},
		{"max items", many},
		{"one big item", [][]byte{make([]byte, 1<<20)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeBatch(tc.items)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.items) {
				t.Fatalf("got %d items, want %d", len(got), len(tc.items))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.items[i]) {
					t.Fatalf("item %d changed", i)
				}
			}
		})
	}
	if b, err := EncodeBatch(nil); err != nil || !bytes.Equal(b, []byte{0x80}) {
		t.Fatalf("EncodeBatch(nil) = %x, %v; want the empty array 80", b, err)
	}
}

func TestBatchRejects(t *testing.T) {
	if _, err := EncodeBatch(make([][]byte, MaxBatchItems+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("EncodeBatch with too many items = %v, want %v", err, ErrTooLarge)
	}
	if _, err := EncodeBatch([][]byte{make([]byte, MaxPayload)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("EncodeBatch over MaxPayload = %v, want %v", err, ErrTooLarge)
	}
	tooMany := append([]byte{0x99, 0x10, 0x01}, make([]byte, MaxBatchItems+1)...)
	for i := 3; i < len(tooMany); i++ {
		tooMany[i] = 0x40 // empty byte string
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"control: two items", []byte{0x82, 0x41, 'a', 0x40}, nil},
		{"empty input", nil, ErrMalformed},
		{"null", []byte{0xf6}, ErrMalformed},
		{"too many items", tooMany, ErrMalformed},
		{"non-shortest length", []byte{0x98, 0x02, 0x41, 'a', 0x40}, ErrMalformed},
		{"indefinite array", []byte{0x9f, 0x41, 'a', 0xff}, ErrMalformed},
		{"indefinite item", []byte{0x81, 0x5f, 0x41, 'a', 0xff}, ErrMalformed},
		{"nested array", []byte{0x81, 0x81, 0x40}, ErrMalformed},
		{"integer item", []byte{0x81, 0x01}, ErrMalformed},
		{"trailing byte", []byte{0x81, 0x40, 0x00}, ErrMalformed},
		{"truncated", []byte{0x82, 0x41, 'a'}, ErrMalformed},
		{"over MaxPayload", make([]byte, MaxPayload+1), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBatch(tc.in)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("DecodeBatch = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeBatch = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestGroupID(t *testing.T) {
	g := NewGroupID()
	if g == (GroupID{}) || g == NewGroupID() {
		t.Fatal("NewGroupID is not random")
	}
	p, err := ParseGroupID(g.String())
	if err != nil || p != g {
		t.Fatalf("ParseGroupID(%q) = %v, %v", g, p, err)
	}
	if s := testGroup.String(); s != "101112131415161718191a1b1c1d1e1f" {
		t.Fatalf("String = %q", s)
	}
	if p, err := ParseGroupID("101112131415161718191A1B1C1D1E1F"); err != nil || p != testGroup {
		t.Fatalf("upper case: %v, %v", p, err)
	}
	for _, s := range []string{"", "1011", "101112131415161718191a1b1c1d1e1", "101112131415161718191a1b1c1d1e1f00", "z01112131415161718191a1b1c1d1e1f", " 01112131415161718191a1b1c1d1e1f"} {
		if _, err := ParseGroupID(s); err == nil {
			t.Errorf("ParseGroupID(%q) succeeded", s)
		}
	}
	var u GroupID
	if err := u.UnmarshalText([]byte(testGroup.String())); err != nil || u != testGroup {
		t.Fatalf("UnmarshalText: %v, %v", u, err)
	}
}

func TestTypeString(t *testing.T) {
	tests := []struct {
		t Type
		s string
	}{
		{TypeBatch, "batch"},
		{TypeChallenge, "challenge"},
		{TypeGenesis, "genesis"},
		{TypeChat, "chat"},
		{TypePromote, "promote"},
		{0, "type(0)"},
		{2, "type(2)"},
		{TypeHead, "head"},
		{TypeBehind, "behind"},
		{TypeCatchUp, "catch-up"},
		{TypeTentative, "tentative"},
		{TypeDelivered, "delivered"},
		{TypeBlobGet, "blob-get"},
		{TypeBlobPart, "blob-part"},
		{TypeSuccessor, "successor"},
		{TypePrekey, "prekey"},
		{34, "type(34)"},
		{99, "type(99)"},
	}
	for _, tc := range tests {
		if tc.t.String() != tc.s {
			t.Errorf("Type(%d) = %q, want %q", uint8(tc.t), tc.t, tc.s)
		}
	}
	// The numbers are the wire format: they must never change.
	wire := map[Type]uint8{TypeBatch: 1, TypePing: 3, TypePong: 4, TypeJoinReply: 6, TypeChallenge: 7, TypeHead: 8, TypeBehind: 9, TypeCatchUp: 10, TypeTentative: 11, TypeDelivered: 12, TypeBlobGet: 13, TypeBlobPart: 14, TypeSuccessor: 15, TypeGenesis: 16, TypeInvite: 17, TypeJoin: 18, TypeLeave: 19, TypeRemove: 20, TypeChat: 21,
		TypeLatencyMap: 22, TypeCheckpoint: 23, TypeAddress: 24, TypePromote: 25, TypeAdmin: 26, TypeSettings: 27, TypeRevoke: 28, TypeLead: 29, TypeRename: 30, TypeKeeper: 31, TypeRekey: 32, TypePrekey: 33}
	for ty, n := range wire {
		if uint8(ty) != n {
			t.Errorf("%s = %d, want %d", ty, ty, n)
		}
	}
	if len(wire) != len(typeNames) {
		t.Errorf("%d named types, %d pinned here", len(typeNames), len(wire))
	}
}
