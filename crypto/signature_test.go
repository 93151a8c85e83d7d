package crypto

import (
	"bytes"
	stded25519 "crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"math/big"
	"strconv"
	"sync"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/demes/demes/identity"
)

// A signatureCase is a public key, a message and a signature, with whether
// DeMeS accepts it. The cases are the edges where Ed25519 verifiers disagree
// (see "Taming the many EdDSAs", Chalkias et al., 2020): a second
// implementation that accepts the same set on these cases follows the rule.
type signatureCase struct {
	name     string
	pub, msg []byte
	sig      []byte
	// valid is DeMeS's answer: the cofactored equation with strict
	// encodings (signatureRule).
	valid bool
	// stdlib is what crypto/ed25519 answers (the cofactorless equation,
	// weak keys taken), and old what DeMeS answered before it switched to
	// the cofactored equation (crypto/ed25519's rule without weak keys):
	// both are computed from the case.
	stdlib, old bool
	// zip215 is what a verifier with the cofactored equation and ZIP-215's
	// decoding rules (any encoding of A and R, small-order A) answers.
	zip215 bool
}

// scalarFrom derives a scalar from a label, deterministically.
func scalarFrom(tb testing.TB, label string) *scalar.Scalar {
	h := sha512.Sum512([]byte(label))
	s, err := scalar.NewFromBytesModOrderWide(h[:])
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func encodePoint(p *curve.EdwardsPoint) []byte {
	var c curve.CompressedEdwardsY
	c.SetEdwardsPoint(p)
	return c[:]
}

func scalarBytes(tb testing.TB, s *scalar.Scalar) []byte {
	b := make([]byte, 32)
	if err := s.ToBytes(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// challenge is k = SHA-512(R || A || msg) mod L.
func challenge(tb testing.TB, r, a, msg []byte) *scalar.Scalar {
	h := sha512.New()
	h.Write(r)
	h.Write(a)
	h.Write(msg)
	k, err := scalar.NewFromBytesModOrderWide(h.Sum(nil))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// signWith signs msg by hand with the secret scalar a for the public point
// encoding pub and the nonce point r*B + rTorsion (rTorsion may be nil): S =
// r + k*a. With torsion in the key or the nonce, only the cofactored
// equation holds.
func signWith(tb testing.TB, a *scalar.Scalar, pub []byte, r *scalar.Scalar, rTorsion *curve.EdwardsPoint, msg []byte) []byte {
	var R curve.EdwardsPoint
	R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, r)
	if rTorsion != nil {
		R.Add(&R, rTorsion)
	}
	rb := encodePoint(&R)
	var s scalar.Scalar
	s.Mul(challenge(tb, rb, pub, msg), a)
	s.Add(&s, r)
	return append(rb, scalarBytes(tb, &s)...)
}

// The identity point (0, 1): canonically, as y = p + 1 (y >= p is a
// non-canonical encoding of y - p), and with the sign bit set though x is 0.
var (
	identityPoint      = append([]byte{1}, make([]byte, 31)...)
	identityNonCanonic = append(append([]byte{0xee}, bytes.Repeat([]byte{0xff}, 30)...), 0x7f)
	identitySignBit    = append(append([]byte{1}, make([]byte, 30)...), 0x80) // x = 0, "negative"
)

// notOnCurve returns the encoding of the smallest y that is no point's.
func notOnCurve(tb testing.TB) []byte {
	for y := uint64(2); ; y++ {
		b := make([]byte, 32)
		binary.LittleEndian.PutUint64(b, y)
		var c curve.CompressedEdwardsY
		copy(c[:], b)
		var p curve.EdwardsPoint
		if _, err := p.SetCompressedY(&c); err != nil {
			return b
		}
	}
}

// groupOrder is L = 2^252 + 27742317777372353535851937790883648493.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// plusL returns the signature with S replaced by S + L, the same scalar
// modulo L written as a number that is not below L.
func plusL(sig []byte) []byte {
	le := func(b []byte) []byte { // little-endian <-> big-endian
		out := make([]byte, len(b))
		for i := range b {
			out[len(b)-1-i] = b[i]
		}
		return out
	}
	s := new(big.Int).SetBytes(le(sig[32:]))
	s.Add(s, groupOrder)
	out := append([]byte{}, sig[:32]...)
	return append(out, le(s.FillBytes(make([]byte, 32)))...)
}

func signatureCases(tb testing.TB) []signatureCase {
	id := testID(tb, 1)
	pub := id.Public().Sign
	msg := []byte("DeMeS signature test")
	good := id.Sign(msg)
	flip := func(b []byte, i int) []byte {
		out := append([]byte{}, b...)
		out[i] ^= 1
		return out
	}
	topBit := func(sig []byte) []byte {
		out := append([]byte{}, sig...)
		out[63] |= 0x80
		return out
	}

	// A key with a torsion component: A = a*B + T, T of order 8.
	a := scalarFrom(tb, "DeMeS test key a")
	var A curve.EdwardsPoint
	A.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, a)
	aPlain := encodePoint(&A)
	A.Add(&A, curve.EIGHT_TORSION[1])
	aMixed := encodePoint(&A)
	r := scalarFrom(tb, "DeMeS test nonce r")
	// The cofactorless equation fails by k*T, so pick a message whose
	// challenge k is not a multiple of 8 (k*T is not the identity).
	var mixedMsg []byte
	for i := 0; ; i++ {
		mixedMsg = append([]byte("torsion in the key "), byte('0'+i))
		var R curve.EdwardsPoint
		R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, r)
		var kT curve.EdwardsPoint
		kT.Mul(curve.EIGHT_TORSION[1], challenge(tb, encodePoint(&R), aMixed, mixedMsg))
		if !kT.IsIdentity() {
			break
		}
	}

	// A signature by the key a*B on msg whose R is a point of small order
	// t, with S = k*a: only the cofactored equation holds, unless t is the
	// identity. rBytes may be a non-canonical encoding of t.
	smallR := func(rBytes []byte) []byte {
		var s scalar.Scalar
		s.Mul(challenge(tb, rBytes, aPlain, msg), a)
		return append(append([]byte{}, rBytes...), scalarBytes(tb, &s)...)
	}
	// (0, -1), the point of order 2, with the sign bit set though x is 0.
	order2SignBit := append(append([]byte{0xec}, bytes.Repeat([]byte{0xff}, 30)...), 0xff)

	cases := []signatureCase{
		{name: "valid", pub: pub[:], msg: msg, sig: good, valid: true, zip215: true},
		{name: "another message", pub: pub[:], msg: []byte("DeMeS signature tesT"), sig: good},
		{name: "R changed", pub: pub[:], msg: msg, sig: flip(good, 0)},
		{name: "S changed", pub: pub[:], msg: msg, sig: flip(good, 32)},
		{name: "key changed", pub: flip(pub[:], 0), msg: msg, sig: good},
		{name: "S not below the group order (S + L)", pub: pub[:], msg: msg, sig: plusL(good)},
		{name: "S with its top bit set", pub: pub[:], msg: msg, sig: topBit(good)},
		{name: "key not on the curve", pub: notOnCurve(tb), msg: msg, sig: good},
		{name: "signature of 63 bytes", pub: pub[:], msg: msg, sig: good[:63]},
		{name: "key of 31 bytes", pub: pub[:31], msg: msg, sig: good},
		{name: "empty message", pub: pub[:], msg: nil, sig: id.Sign(nil), valid: true, zip215: true},
		// Small order and non-canonical keys are refused, unlike by
		// crypto/ed25519: the identity key verifies R = identity, S = 0
		// for every message, a forgery anyone can make.
		{name: "small-order key (the identity), R the identity, S zero", pub: identityPoint, msg: msg,
			sig: append(append([]byte{}, identityPoint...), make([]byte, 32)...), zip215: true},
		{name: "small-order key (order 8), R the identity, S zero", pub: encodePoint(curve.EIGHT_TORSION[1]), msg: msg,
			sig: append(append([]byte{}, identityPoint...), make([]byte, 32)...), zip215: true},
		{name: "non-canonical key (the identity as y = p + 1), R the identity, S zero", pub: identityNonCanonic, msg: msg,
			sig: append(append([]byte{}, identityPoint...), make([]byte, 32)...), zip215: true},
		{name: "non-canonical key (the identity with the sign bit set), R the identity, S zero", pub: identitySignBit, msg: msg,
			sig: append(append([]byte{}, identityPoint...), make([]byte, 32)...), zip215: true},
		// R must be a canonical encoding.
		{name: "non-canonical R (the identity as y = p + 1)", pub: aPlain, msg: msg, sig: smallR(identityNonCanonic), zip215: true},
		{name: "non-canonical R (the identity with the sign bit set)", pub: aPlain, msg: msg, sig: smallR(identitySignBit), zip215: true},
		{name: "non-canonical R (the point of order 2 with the sign bit set)", pub: aPlain, msg: msg, sig: smallR(order2SignBit), zip215: true},
		// A small-order R is allowed.
		{name: "small-order R (the identity), S = k*a", pub: aPlain, msg: msg, sig: smallR(identityPoint), valid: true, zip215: true},
		{name: "small-order R (order 8), S = k*a", pub: aPlain, msg: msg, sig: smallR(encodePoint(curve.EIGHT_TORSION[1])), valid: true, zip215: true},
		// Torsion, which only the cofactored equation ignores: signatures
		// only the key's holder can make, valid under DeMeS's rule.
		{name: "key with a component of order 8", pub: aMixed, msg: mixedMsg,
			sig: signWith(tb, a, aMixed, r, nil, mixedMsg), valid: true, zip215: true},
		{name: "R with a component of order 8", pub: aPlain, msg: msg,
			sig: signWith(tb, a, aPlain, r, curve.EIGHT_TORSION[1], msg), valid: true, zip215: true},
		{name: "R with a component of order 8, S + L", pub: aPlain, msg: msg,
			sig: plusL(signWith(tb, a, aPlain, r, curve.EIGHT_TORSION[1], msg))},
		{name: "hand-made signature without torsion", pub: aPlain, msg: msg,
			sig: signWith(tb, a, aPlain, r, nil, msg), valid: true, zip215: true},
	}
	for i := range cases {
		c := &cases[i]
		c.stdlib = stdlibVerify(c.pub, c.msg, c.sig)
		c.old = c.stdlib && !weakKey(c.pub)
	}
	return cases
}

// weakKey reports whether pub is an ed25519 key DeMeS refuses though
// crypto/ed25519 may take it: a point of small order or a non-canonical
// encoding (identity.CheckSigningKey; a key off the curve, which it refuses
// too, crypto/ed25519 refuses as well).
func weakKey(pub []byte) bool {
	return len(pub) == 32 && identity.CheckSigningKey([32]byte(pub)) != nil
}

// stdlibVerify is crypto/ed25519.Verify, which defines the rule, made total:
// it panics on a key of the wrong length.
func stdlibVerify(pub, msg, sig []byte) bool {
	return len(pub) == stded25519.PublicKeySize && stded25519.Verify(pub, msg, sig)
}

// oldRule is the rule DeMeS had before it switched to the cofactored
// equation (crypto/ed25519's cofactorless equation, weak keys refused).
var oldRule = &voi.Options{Verify: &voi.VerifyOptions{AllowSmallOrderR: true, CofactorlessVerify: true}}

// oldVerify checks a signature under oldRule.
func oldVerify(pub, msg, sig []byte) bool {
	return len(pub) == voi.PublicKeySize && voi.VerifyWithOptions(pub, msg, sig, oldRule)
}

// fipsVerify is voi's FIPS 186-5 rule (the cofactored equation, A and R
// canonical, small-order A and R taken), verified without expanded keys:
// DeMeS's rule is it without small-order keys. It is an independent
// computation to compare VerifySignature with.
func fipsVerify(pub, msg, sig []byte) bool {
	fips := &voi.Options{Verify: voi.VerifyOptionsFIPS_186_5}
	return len(pub) == voi.PublicKeySize && voi.VerifyWithOptions(pub, msg, sig, fips)
}

// TestVerifySignatureRule checks VerifySignature, alone and in a batch, on
// the cases where verifiers disagree, against the rules it is made of, and
// that DeMeS's old rule answers differently on some of them: the rule has
// not changed by accident.
func TestVerifySignatureRule(t *testing.T) {
	zip215 := &voi.Options{Verify: voi.VerifyOptionsZIP_215}
	differ := 0
	for _, tc := range signatureCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the first call expands the key, the second finds it
			// in the cache.
			for range 2 {
				if got := VerifySignature(tc.pub, tc.msg, tc.sig); got != tc.valid {
					t.Fatalf("VerifySignature = %v, want %v", got, tc.valid)
				}
			}
			if got := checkInBatches(t, tc.pub, tc.msg, tc.sig); got != tc.valid {
				t.Fatalf("in a batch: %v, want %v", got, tc.valid)
			}
			if got, want := fipsVerify(tc.pub, tc.msg, tc.sig) && !weakKey(tc.pub), tc.valid; got != want {
				t.Fatalf("FIPS 186-5 without weak keys = %v, the case %v", got, want)
			}
			if got := oldVerify(tc.pub, tc.msg, tc.sig); got != tc.old {
				t.Fatalf("the old rule = %v, crypto/ed25519 without weak keys %v", got, tc.old)
			}
			got := len(tc.pub) == voi.PublicKeySize && voi.VerifyWithOptions(tc.pub, tc.msg, tc.sig, zip215)
			if got != tc.zip215 {
				t.Fatalf("the ZIP-215 rule says %v, the case %v", got, tc.zip215)
			}
		})
		if tc.valid != tc.old {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("no case tells DeMeS's rule from the cofactorless one")
	}
}

// TestVerifySignatureAgreesWithStdlib checks VerifySignature against
// crypto/ed25519 on every single-bit change of valid signatures, keys and
// messages.
func TestVerifySignatureAgreesWithStdlib(t *testing.T) {
	var batch checkedBatch
	for n := byte(1); n <= 3; n++ {
		id := testID(t, n)
		pub := id.Public().Sign
		msg := []byte{n, 'm', 's', 'g'}
		sig := id.Sign(msg)
		check := func(what string, pub, msg, sig []byte) {
			t.Helper()
			if got, want := VerifySignature(pub, msg, sig), stdlibVerify(pub, msg, sig); got != want {
				t.Fatalf("key %d, %s: VerifySignature = %v, crypto/ed25519 = %v", n, what, got, want)
			}
			batch.add(pub, msg, sig, stdlibVerify(pub, msg, sig))
		}
		check("unchanged", pub[:], msg, sig)
		for bit := range 8 * len(sig) {
			s := append([]byte{}, sig...)
			s[bit/8] ^= 1 << (bit % 8)
			check("signature bit "+strconv.Itoa(bit), pub[:], msg, s)
		}
		for bit := range 8 * len(pub) {
			p := pub
			p[bit/8] ^= 1 << (bit % 8)
			check("key bit "+strconv.Itoa(bit), p[:], msg, sig)
		}
		for bit := range 8 * len(msg) {
			m := append([]byte{}, msg...)
			m[bit/8] ^= 1 << (bit % 8)
			check("message bit "+strconv.Itoa(bit), pub[:], m, sig)
		}
	}
	// The same signatures, checked together, get the same answers.
	batch.verify(t)
}

func TestKeyCache(t *testing.T) {
	c := newKeyCache(4)
	member := testID(t, 1).Public().Sign
	first := c.get(member)
	if first == nil {
		t.Fatal("no expanded key for a valid key")
	}
	// Many other keys pass through; the member keeps signing.
	for n := byte(2); n < 40; n++ {
		if c.get(testID(t, n).Public().Sign) == nil {
			t.Fatalf("no expanded key for key %d", n)
		}
		if c.get(member) != first {
			t.Fatalf("the member's key was dropped after key %d", n)
		}
		if c.len() > 8 {
			t.Fatalf("%d keys held, limit 2*4", c.len())
		}
	}
	// A key not used for two generations is gone.
	early := testID(t, 2).Public().Sign
	if c.cur[early] != nil || c.old[early] != nil {
		t.Fatal("key 2 is still held after 37 other keys")
	}
	bad := [32]byte(notOnCurve(t))
	if c.get(bad) != nil || c.cur[bad] != nil {
		t.Fatal("an expanded key for a key that is not a point")
	}
}

// TestVerifySignatureConcurrent verifies from many goroutines, as the
// transcript verifier and the node's receive path do (run it with -race).
func TestVerifySignatureConcurrent(t *testing.T) {
	type signed struct{ pub, msg, sig []byte }
	var all []signed
	for n := byte(1); n <= 6; n++ {
		id := testID(t, n)
		pub := id.Public().Sign
		msg := []byte{'c', n}
		all = append(all, signed{pub[:], msg, id.Sign(msg)})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				s := all[(g+i)%len(all)]
				if !VerifySignature(s.pub, s.msg, s.sig) {
					errs <- "valid signature rejected"
					return
				}
				if VerifySignature(s.pub, append([]byte{'x'}, s.msg...), s.sig) {
					errs <- "signature of another message accepted"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// len returns the number of keys held, for tests.
func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
