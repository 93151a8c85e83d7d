package prekey

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/internal/canon"
)

func TestGenerateVerify(t *testing.T) {
	alice := member(t, 1)
	p, s, err := Generate(alice, t0, DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Verify(p.Bytes(), t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("verify a fresh prekey: %v", err)
	}
	if q.Owner != alice.Public().Sign || q.ID != p.ID || !bytes.Equal(q.PublicKey(), p.PublicKey()) ||
		!q.NotBefore.Equal(t0) || !q.Expires.Equal(t0.Add(DefaultLifetime)) {
		t.Fatalf("decoded prekey differs: %+v, made %+v", q, p)
	}
	if len(p.PublicKey()) != PublicKeySize {
		t.Fatalf("public key of %d bytes, want %d", len(p.PublicKey()), PublicKeySize)
	}
	if s.ID != p.ID || s.Owner != p.Owner {
		t.Fatalf("secret names %x of %x, prekey %x of %x", s.ID, s.Owner[:4], p.ID, p.Owner[:4])
	}
	// Two prekeys of the same member are different keys with different ids.
	p2, _, err := Generate(alice, t0, DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	if p2.ID == p.ID || bytes.Equal(p2.PublicKey(), p.PublicKey()) {
		t.Fatal("two generated prekeys share an id or a key")
	}
}

func TestVerifyTime(t *testing.T) {
	p, _ := prekeyOf(t, member(t, 1), 0xa1)
	for _, c := range []struct {
		name string
		at   time.Time
		want error
	}{
		{"before not-before", t0.Add(-time.Nanosecond), ErrNotYetValid},
		{"at not-before", t0, nil},
		{"last instant", t0.Add(DefaultLifetime - time.Nanosecond), nil},
		{"at expiry", t0.Add(DefaultLifetime), ErrExpired},
		{"a year later", t0.Add(365 * 24 * time.Hour), ErrExpired},
	} {
		_, err := Verify(p.Bytes(), c.at)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// Decode skips the time check, for a node replaying an old log.
	if _, err := Decode(p.Bytes()); err != nil {
		t.Errorf("decode: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	alice, bob := member(t, 1), member(t, 2)
	p, _ := prekeyOf(t, alice, 0xa1)
	good := func() *recordWire {
		k := alice.Public().Sign
		return &recordWire{Version: Version, Owner: k[:], Public: bytes.Clone(p.PublicKey()),
			NotBefore: t0.UnixNano(), Expires: t0.Add(DefaultLifetime).UnixNano()}
	}
	if _, err := Decode(signRecord(t, alice, good())); err != nil {
		t.Fatalf("the well-formed base case does not decode: %v", err)
	}
	var sw signedWire
	if err := canon.Decode(p.Bytes(), &sw); err != nil {
		t.Fatal(err)
	}
	resign := func(record []byte, sig []byte) []byte {
		b, err := canon.Marshal(&signedWire{Record: record, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flipped := bytes.Clone(sw.Record)
	flipped[len(flipped)-1] ^= 1 // the expiry's last byte

	cases := []struct {
		name   string
		signed []byte
		want   error
		text   string
	}{
		{"empty", nil, ErrMalformed, ""},
		{"oversized", make([]byte, MaxSigned+1), ErrTooLarge, "limit"},
		{"trailing byte", append(bytes.Clone(p.Bytes()), 0), ErrMalformed, ""},
		{"not an array", []byte{0x40}, ErrMalformed, ""},
		{"altered record", resign(flipped, sw.Signature), ErrSignature, ""},
		{"signed by another", resign(sw.Record, bob.Sign(signedInput(sw.Record))), ErrSignature, ""},
		{"signed without domain", resign(sw.Record, alice.Sign(sw.Record)), ErrSignature, ""},
		{"short signature", resign(sw.Record, sw.Signature[:63]), ErrMalformed, "signature of 63 bytes"},
		{"version 2", signRecord(t, alice, func() *recordWire { w := good(); w.Version = 2; return w }()), ErrMalformed, "version 2"},
		{"short public key", signRecord(t, alice, func() *recordWire { w := good(); w.Public = w.Public[:PublicKeySize-1]; return w }()), ErrMalformed, "public key of"},
		{"short owner", signRecord(t, alice, func() *recordWire { w := good(); w.Owner = w.Owner[:31]; return w }()), ErrMalformed, "owner key of 31"},
		{"zero lifetime", signRecord(t, alice, func() *recordWire { w := good(); w.Expires = w.NotBefore; return w }()), ErrMalformed, "expires before"},
		{"too long a lifetime", signRecord(t, alice, func() *recordWire {
			w := good()
			w.Expires = w.NotBefore + int64(MaxLifetime) + 1
			return w
		}()), ErrMalformed, "valid for more than"},
		{"overflowing lifetime", signRecord(t, alice, func() *recordWire {
			w := good()
			w.NotBefore, w.Expires = -1<<63, 1<<63-1
			return w
		}()), ErrMalformed, "valid for more than"},
		// Sealing to a small-order X25519 point fails: such a prekey
		// would stop every sender (node TestLowOrderPrekeyBlocksSealing).
		{"X25519 point 0", signRecord(t, alice, func() *recordWire {
			w := good()
			w.Public = bytes.Clone(w.Public)
			clear(w.Public[PublicKeySize-32:])
			return w
		}()), ErrMalformed, "small order"},
		{"X25519 point 1", signRecord(t, alice, func() *recordWire {
			w := good()
			w.Public = bytes.Clone(w.Public)
			clear(w.Public[PublicKeySize-32:])
			w.Public[PublicKeySize-32] = 1
			return w
		}()), ErrMalformed, "small order"},
	}
	// A small-order owner key: a signature by it proves nothing.
	weak := good()
	weak.Owner = make([]byte, 32)
	weak.Owner[0] = 1 // the identity point
	rec, _ := canon.Marshal(weak)
	cases = append(cases, struct {
		name   string
		signed []byte
		want   error
		text   string
	}{"small-order owner", resign(rec, make([]byte, 64)), ErrMalformed, "owner key"})
	for _, c := range cases {
		_, err := Decode(c.signed)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.text) || !strings.HasPrefix(err.Error(), "decode prekey: ") {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.text)
		}
	}
}

func TestDecodeRejectsNonCanonical(t *testing.T) {
	p, _ := prekeyOf(t, member(t, 1), 0xa1)
	// The signature's length, 64, is written 0x58 0x40; write it in the
	// longer form 0x59 0x00 0x40, which decodes to the same value.
	b := bytes.Clone(p.Bytes())
	sigHead := len(b) - 64 - 2
	if b[sigHead] != 0x58 || b[sigHead+1] != 64 {
		t.Fatalf("unexpected layout: % x", b[sigHead:sigHead+2])
	}
	nc := append(append(bytes.Clone(b[:sigHead]), 0x59, 0, 64), b[sigHead+2:]...)
	if _, err := Decode(nc); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "deterministic") {
		t.Fatalf("a non-shortest length decodes: %v", err)
	}
}

func TestFromSeedRejects(t *testing.T) {
	alice := member(t, 1)
	for _, lt := range []time.Duration{0, -time.Hour, MaxLifetime + 1} {
		if _, _, err := FromSeed(alice, [SecretSize]byte{}, t0, lt); err == nil {
			t.Errorf("lifetime %s accepted", lt)
		}
	}
	if _, _, err := FromSeed(nil, [SecretSize]byte{}, t0, time.Hour); err == nil {
		t.Error("nil owner accepted")
	}
}

func TestRestoreSecret(t *testing.T) {
	p, s := prekeyOf(t, member(t, 1), 0xa1)
	r, err := RestoreSecret(p, s.Seed())
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != p.ID || r.Owner != p.Owner || !r.Expires.Equal(p.Expires) {
		t.Fatalf("restored secret names %x, want %x", r.ID, p.ID)
	}
	if _, err := RestoreSecret(p, [SecretSize]byte{1}); err == nil || !strings.Contains(err.Error(), "not the secret of prekey") {
		t.Fatalf("a wrong seed restores: %v", err)
	}
}

// TestDecodedPrekeyIsSmall checks what a node pays to keep a member's
// prekey decoded: about the signed bytes, not the parsed ML-KEM key (Go's
// keeps its expanded matrix, 7.4 KB), which a node with 100 members in
// each of its groups would otherwise hold for every one of them.
func TestDecodedPrekeyIsSmall(t *testing.T) {
	const n = 200
	signed := make([][]byte, n)
	for i := range signed {
		p, _ := prekeyOf(t, member(t, byte(i)), byte(i))
		signed[i] = p.Bytes()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := make([]*Prekey, n)
	for i, b := range signed {
		p, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		kept[i] = p
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	runtime.KeepAlive(kept)
	// The Prekey struct itself is about 150 bytes; the signed bytes are
	// the caller's. A second copy of the public key (1,216 bytes) or the
	// parsed key would each exceed the bound.
	t.Logf("%d bytes a decoded prekey", per)
	if per > 1024 {
		t.Fatalf("a decoded prekey keeps %d bytes of heap, want at most 1,024 beyond the signed bytes it was given", per)
	}
}
