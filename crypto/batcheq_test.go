package crypto

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// handKey is a key whose secret scalar the test knows, to sign by hand
// (signWith): with torsion in R or in the key, or with S altered.
type handKey struct {
	a   *scalar.Scalar
	pub []byte
	n   int // signatures made, for fresh nonces
}

func newHandKey(tb testing.TB, label string, torsion *curve.EdwardsPoint) *handKey {
	a := scalarFrom(tb, label)
	var A curve.EdwardsPoint
	A.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, a)
	if torsion != nil {
		A.Add(&A, torsion)
	}
	return &handKey{a: a, pub: encodePoint(&A)}
}

// sign signs msg with a fresh nonce, adding rTorsion (may be nil) to R.
func (k *handKey) sign(tb testing.TB, msg []byte, rTorsion *curve.EdwardsPoint) []byte {
	k.n++
	r := scalarFrom(tb, fmt.Sprintf("nonce %x %d", k.pub, k.n))
	return signWith(tb, k.a, k.pub, r, rTorsion, msg)
}

// withS returns sig with S replaced by S + d mod L.
func withS(tb testing.TB, sig []byte, d *scalar.Scalar) []byte {
	s, err := scalar.NewFromBytesModOrder(sig[32:])
	if err != nil {
		tb.Fatal(err)
	}
	s.Add(s, d)
	return append(bytes.Clone(sig[:32]), scalarBytes(tb, s)...)
}

// withR returns sig with R replaced by R + t (S unchanged).
func withR(tb testing.TB, sig []byte, t *curve.EdwardsPoint) []byte {
	var c curve.CompressedEdwardsY
	copy(c[:], sig[:32])
	var R curve.EdwardsPoint
	if _, err := R.SetCompressedY(&c); err != nil {
		tb.Fatal(err)
	}
	R.Add(&R, t)
	return append(encodePoint(&R), sig[32:]...)
}

// attack is a set of entries to hide among valid ones in a batch, with the
// answer the rule gives each.
type attack struct {
	name    string
	entries checkedBatch
}

// batchAttacks are the entries a weak batch equation would get wrong: each
// per-entry check the equation cannot see (s below L, canonical R and A, A
// not of small order), signatures whose error is a point of small order
// (which the rule's cofactor ignores, and only the cofactor ignores), and
// pairs of bad signatures whose errors cancel unless every z_i is random.
// Every entry by key's key (a plain key, whose valid signatures fill the
// batch in the same-key placements).
func batchAttacks(tb testing.TB, key, mixed *handKey) []attack {
	var out []attack
	add := func(name string, entries ...[]any) {
		var c checkedBatch
		for _, e := range entries {
			c.add(e[0].([]byte), e[1].([]byte), e[2].([]byte), e[3].(bool))
		}
		out = append(out, attack{name, c})
	}
	e := func(pub, msg, sig []byte, valid bool) []any { return []any{pub, msg, sig, valid} }
	msg := func(s string) []byte { return []byte("attack: " + s) }
	small := func(rBytes []byte, m []byte) []byte { // R of small order, S = k*a
		var s scalar.Scalar
		s.Mul(challenge(tb, rBytes, key.pub, m), key.a)
		return append(bytes.Clone(rBytes), scalarBytes(tb, &s)...)
	}
	forgery := append(bytes.Clone(identityPoint), make([]byte, 32)...) // R identity, S 0
	order2SignBit := append(append([]byte{0xec}, bytes.Repeat([]byte{0xff}, 30)...), 0xff)

	for o := 1; o < 8; o++ {
		m := msg(fmt.Sprintf("torsion %d in R", o))
		add(fmt.Sprintf("R with a component of order %d (valid)", o),
			e(key.pub, m, key.sign(tb, m, curve.EIGHT_TORSION[o]), true))
		m = msg(fmt.Sprintf("torsion %d added to R", o))
		add(fmt.Sprintf("a point of order %d added to a valid signature's R", o),
			e(key.pub, m, withR(tb, key.sign(tb, m, nil), curve.EIGHT_TORSION[o]), false))
		var A curve.EdwardsPoint
		c := curve.CompressedEdwardsY(key.pub)
		if _, err := A.SetCompressedY(&c); err != nil {
			tb.Fatal(err)
		}
		A.Add(&A, curve.EIGHT_TORSION[o])
		m = msg(fmt.Sprintf("torsion %d added to A", o))
		add(fmt.Sprintf("a point of order %d added to the key of a valid signature", o),
			e(encodePoint(&A), m, key.sign(tb, m, nil), false))
		m = msg(fmt.Sprintf("mixed key, torsion %d in R", o))
		add(fmt.Sprintf("key with a component of order 8, R with one of order %d (valid)", o),
			e(mixed.pub, m, mixed.sign(tb, m, curve.EIGHT_TORSION[o]), true))
	}
	m := msg("mixed key")
	add("key with a component of order 8 (valid)", e(mixed.pub, m, mixed.sign(tb, m, nil), true))

	m = msg("s + L")
	add("S not below L (S + L)", e(key.pub, m, plusL(key.sign(tb, m, nil)), false))
	m = msg("s + L, torsion")
	add("S not below L, R with torsion", e(key.pub, m, plusL(key.sign(tb, m, curve.EIGHT_TORSION[3])), false))

	m = msg("non-canonical R")
	add("R the identity as y = p + 1", e(key.pub, m, small(identityNonCanonic, m), false))
	add("R the identity with the sign bit set", e(key.pub, m, small(identitySignBit, m), false))
	add("R of order 2 with the sign bit set", e(key.pub, m, small(order2SignBit, m), false))
	add("R the identity, canonical (valid)", e(key.pub, m, small(identityPoint, m), true))

	m = msg("small-order key")
	for o := range 8 {
		add(fmt.Sprintf("key of order dividing 8 (torsion point %d), R the identity, S zero", o),
			e(encodePoint(curve.EIGHT_TORSION[o]), m, forgery, false))
	}
	add("key the identity as y = p + 1, R the identity, S zero", e(identityNonCanonic, m, forgery, false))
	add("key the identity with the sign bit set, R the identity, S zero", e(identitySignBit, m, forgery, false))

	m = msg("signed")
	add("a signature of another message", e(key.pub, msg("another"), key.sign(tb, m, nil), false))
	add("a signature by another key", e(mixed.pub, m, key.sign(tb, m, nil), false))

	// Two bad signatures whose errors cancel: S1 + d and S2 - d. With z_1
	// = z_2 the equation cannot tell them from two valid ones.
	d := scalarFrom(tb, "the error that cancels")
	var negD scalar.Scalar
	negD.Neg(d)
	m1, m2 := msg("cancel 1"), msg("cancel 2")
	add("two signatures by one key whose errors cancel",
		e(key.pub, m1, withS(tb, key.sign(tb, m1, nil), d), false),
		e(key.pub, m2, withS(tb, key.sign(tb, m2, nil), &negD), false))
	add("two signatures by two keys whose errors cancel",
		e(key.pub, m1, withS(tb, key.sign(tb, m1, nil), d), false),
		e(mixed.pub, m2, withS(tb, mixed.sign(tb, m2, nil), &negD), false))
	// Errors that cancel through the key terms: entry 1 claims challenge
	// k1 + d's worth of A by signing S1 + d*a, entry 2 S2 - d*a.
	var da, negDA scalar.Scalar
	da.Mul(d, key.a)
	negDA.Neg(&da)
	add("two signatures whose errors cancel in the key's term",
		e(key.pub, m1, withS(tb, key.sign(tb, m1, nil), &da), false),
		e(key.pub, m2, withS(tb, key.sign(tb, m2, nil), &negDA), false))
	return out
}

// TestBatchEquationAttacks hides each attack among valid signatures, in
// batches of several sizes (one equation and two, Straus and Pippenger
// sized), at the start, middle and end, among signatures by the
// attacked key alone and by several keys. Every batch must answer for
// every entry what VerifySignature does, and the attacks' answers must be
// the rule's (checked against VerifySignature first, so the cases are
// what they claim).
func TestBatchEquationAttacks(t *testing.T) {
	key := newHandKey(t, "batch attack key", nil)
	mixed := newHandKey(t, "batch attack mixed key", curve.EIGHT_TORSION[1])
	sameKey := func(n int) *checkedBatch {
		var c checkedBatch
		for i := range n {
			m := fmt.Appendf(nil, "valid %d", i)
			c.add(key.pub, m, key.sign(t, m, nil), true)
		}
		return &c
	}
	same, five := sameKey(BatchSize+3), validSignatures(t, BatchSize+3)
	// Where to hide an attack: in one small equation, one of Straus's
	// size, one of Pippenger's, and two equations (the middle of BatchSize
	// + 3 is where they split); first, in the middle, last. (Few large
	// batches: a failed equation costs a single check per entry.)
	type placement struct {
		pool      *checkedBatch
		n, pos    int
		what      string
		shortTest bool
	}
	places := []placement{
		{same, minBatch - 1, (minBatch - 1) / 2, "the attacked key alone, one small equation", true},
		{same, BatchSize - 1, BatchSize - 1, "the attacked key alone, one large equation, last", false},
		{five, minBatch - 1, 0, "five keys, one small equation, first", true},
		{five, 31, 15, "five keys, one equation, middle", false},
		{five, BatchSize + 3, (BatchSize + 3) / 2, "five keys, two equations, where they split", true},
		{five, 40, 40, "five keys, one equation, last", false},
	}
	for _, at := range batchAttacks(t, key, mixed) {
		for i := range at.entries.pubs {
			if got := VerifySignature(at.entries.pubs[i], at.entries.msgs[i], at.entries.sigs[i]); got != at.entries.want[i] {
				t.Fatalf("%s, entry %d: VerifySignature = %v, the case says %v", at.name, i, got, at.entries.want[i])
			}
		}
		for _, pl := range places {
			if testing.Short() && !pl.shortTest {
				continue
			}
			var c checkedBatch
			for i := range pl.n {
				if i == pl.pos {
					c.append(&at.entries)
				}
				c.add(pl.pool.pubs[i], pl.pool.msgs[i], pl.pool.sigs[i], true)
			}
			if pl.pos == pl.n {
				c.append(&at.entries)
			}
			t.Run(at.name+"/"+pl.what, func(t *testing.T) { c.verify(t) })
		}
	}
}

// append adds every entry of o to c.
func (c *checkedBatch) append(o *checkedBatch) {
	c.pubs = append(c.pubs, o.pubs...)
	c.msgs = append(c.msgs, o.msgs...)
	c.sigs = append(c.sigs, o.sigs...)
	c.want = append(c.want, o.want...)
}

// TestBatchMatchesSingleRandom builds random batches of valid signatures
// by one, a few or many keys, spoils random entries in random ways
// (bits flipped, S + L, torsion with and without signing for it, small-order
// keys, swapped messages, errors that cancel), and checks that the batch
// answers VerifySignature's answer for every entry. The seed is fixed: a
// failure is reproducible.
func TestBatchMatchesSingleRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2026))
	keys := make([]*handKey, 40)
	for i := range keys {
		var torsion *curve.EdwardsPoint
		if i%7 == 6 {
			torsion = curve.EIGHT_TORSION[1+i%7]
		}
		keys[i] = newHandKey(t, fmt.Sprintf("random batch key %d", i), torsion)
	}
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		n := minBatch + rng.IntN(BatchSize+20)
		nkeys := []int{1, 2, 5, len(keys)}[rng.IntN(4)]
		var c checkedBatch
		for i := range n {
			k := keys[rng.IntN(nkeys)]
			m := fmt.Appendf(nil, "round %d entry %d", round, i)
			c.add(k.pub, m, k.sign(t, m, nil), true)
		}
		for range rng.IntN(4) {
			i := rng.IntN(n)
			pub, msg, sig := c.pubs[i], bytes.Clone(c.msgs[i]), bytes.Clone(c.sigs[i])
			switch rng.IntN(9) {
			case 0:
				sig[rng.IntN(64)] ^= 1 << rng.IntN(8)
			case 1:
				msg = append(msg, '!')
			case 2:
				pub = bytes.Clone(pub)
				pub[rng.IntN(32)] ^= 1 << rng.IntN(8)
			case 3:
				sig = plusL(sig)
			case 4: // valid: torsion the signer chose
				k := keys[0]
				pub, sig = k.pub, k.sign(t, msg, curve.EIGHT_TORSION[rng.IntN(8)])
			case 5:
				sig = withR(t, sig, curve.EIGHT_TORSION[1+rng.IntN(7)])
			case 6:
				pub, sig = encodePoint(curve.EIGHT_TORSION[rng.IntN(8)]), append(bytes.Clone(identityPoint), make([]byte, 32)...)
			case 7:
				msg = c.msgs[rng.IntN(n)]
			case 8: // two errors that cancel
				j := rng.IntN(n)
				d := scalarFrom(t, fmt.Sprintf("cancel %d", round))
				var negD scalar.Scalar
				negD.Neg(d)
				sig = withS(t, sig, d)
				c.sigs[j] = withS(t, c.sigs[j], &negD)
			}
			c.pubs[i], c.msgs[i], c.sigs[i] = pub, msg, sig
		}
		for i := range c.want {
			c.want[i] = VerifySignature(c.pubs[i], c.msgs[i], c.sigs[i])
		}
		c.verify(t)
	}
}

// equationHolds reports whether the batch equation over c's entries holds,
// without the single checks that follow a failed one.
func equationHolds(c *checkedBatch) bool {
	var b SignatureBatch
	for i := range c.pubs {
		b.Add(c.pubs[i], c.msgs[i], c.sigs[i])
	}
	e := equations.Get().(*equation)
	defer equations.Put(e)
	return e.check(b.todo, make([]bool, b.Len()))
}

// TestBatchEquationHoldsForValidSignatures checks the equation itself, not
// the answers (which the single checks after a failed equation would put
// right): batches of valid signatures, with torsion in R or in the key, by
// one key or several, must pass in one equation. An equation without the
// cofactor, or with a key's terms summed wrong, would fail on them, and a
// signer could make every batch fall back to single checks; and a bad
// signature must fail it.
func TestBatchEquationHoldsForValidSignatures(t *testing.T) {
	key := newHandKey(t, "equation key", nil)
	mixed := newHandKey(t, "equation mixed key", curve.EIGHT_TORSION[5])
	for _, n := range []int{minBatch, 64, BatchSize + 5} {
		c := validSignatures(t, n/2)
		for i := range n - n/2 {
			k := key
			if i%3 == 0 {
				k = mixed
			}
			m := fmt.Appendf(nil, "equation %d", i)
			c.add(k.pub, m, k.sign(t, m, curve.EIGHT_TORSION[i%8]), true)
		}
		for i := range c.pubs {
			if !VerifySignature(c.pubs[i], c.msgs[i], c.sigs[i]) {
				t.Fatalf("entry %d is not valid", i)
			}
		}
		if !equationHolds(c) {
			t.Fatalf("%d valid signatures (torsion in R and keys) fail the equation", n)
		}
		c.sigs[n/2] = withS(t, c.sigs[n/2], scalar.One())
		if equationHolds(c) {
			t.Fatalf("%d signatures, one with S + 1: the equation holds", n)
		}
	}
}
