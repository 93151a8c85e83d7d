package crypto

import (
	"crypto/rand"
	"crypto/sha512"
	"hash"
	"sync"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// equation checks a batch's entries in one multiscalar multiplication:
//
//	[8]( [-sum z_i s_i]B + sum [z_i]R_i + sum_j [sum_{i by key j} z_i k_i]A_j ) = identity
//
// with z_i random 128-bit scalars from crypto/rand and k_i = SHA-512(R_i ||
// A_i || M_i) mod L. It is curve25519-voi's batch equation, with one term
// per distinct key instead of one per signature: a transcript's or a
// catch-up's signatures come from a group's few members, and a term with a
// full-size scalar costs about twice one with a 128-bit z_i
// (BenchmarkSignatureBatch). Grouping the terms changes nothing in what
// the equation says: sum_i [z_i k_i]A_i is the same point however the equal
// A_i are collected.
//
// Why it is the rule: if every entry satisfies the cofactored equation
// [8]([s_i]B - R_i - [k_i]A_i) = identity, so does their combination; if
// one does not, [8] of its difference is a nonzero point of order L, and
// the combination is the identity for at most one value of its z_i mod L in
// 2^128 (ZIP-215's argument, docs/PROTOCOL.md "Signatures"). The strict
// encodings, which the equation cannot see, are checked per entry first,
// exactly as voi's single check does (unpack, below): an entry failing them
// is invalid and stays out of the equation.
//
// An equation is scratch space reused across batches (equations).
type equation struct {
	h      hash.Hash
	digest [64]byte
	rnd    []byte // 16 random bytes per entry
	r      []curve.EdwardsPoint
	z      []scalar.Scalar // z_i of the entries in the equation
	keys   []*sigKey       // the distinct keys, in order of first use
	a      []scalar.Scalar // sum z_i k_i of each key
	in     []int           // the entries in the equation (indexes in part)

	points  []*curve.EdwardsPoint
	scalars []*scalar.Scalar
}

var equations = sync.Pool{New: func() any { return &equation{h: sha512.New()} }}

// check sets ok[p.i] for each entry p of part: true if and only if the
// signature is valid under the rule. It checks the equation over the
// entries that pass the per-entry checks; if it fails, it checks each of
// them alone (ed25519.VerifyExpandedWithOptions), so that every bad entry
// is named. It returns whether the equation held (true when no entry
// reached it): valid signatures, torsion and all, must never need the
// single checks.
func (e *equation) check(part []pending, ok []bool) (held bool) {
	n := len(part)
	e.reset(n)
	rand.Read(e.rnd) // never fails (crypto/rand since Go 1.24)
	var bsum, t scalar.Scalar
	for j := range part {
		p := &part[j]
		m := len(e.in)
		var s, k scalar.Scalar
		if !p.key.strict || !unpack(p.sig, &e.r[m], &s) {
			continue // invalid: not in the equation
		}
		e.h.Reset()
		e.h.Write(p.sig[:32])
		e.h.Write(p.key.enc[:])
		for _, part := range p.msg {
			e.h.Write(part)
		}
		e.h.Sum(e.digest[:0])
		if _, err := k.SetBytesModOrderWide(e.digest[:]); err != nil {
			continue // cannot happen: the digest is 64 bytes
		}
		z := &e.z[m]
		randomizer(z, e.rnd[16*j:16*j+16])
		bsum.Add(&bsum, t.Mul(z, &s))
		a := e.term(p.key)
		a.Add(a, t.Mul(z, &k))
		e.in = append(e.in, j)
	}
	if len(e.in) == 0 {
		return true
	}

	// The terms: B, each R_i, each distinct A_j.
	bsum.Neg(&bsum)
	e.scalars = append(e.scalars[:0], &bsum)
	e.points = append(e.points[:0], curve.ED25519_BASEPOINT_POINT)
	for m := range e.in {
		e.scalars = append(e.scalars, &e.z[m])
		e.points = append(e.points, &e.r[m])
	}
	for j, k := range e.keys {
		e.scalars = append(e.scalars, &e.a[j])
		e.points = append(e.points, &k.point)
	}
	var sum curve.EdwardsPoint
	sum.MultiscalarMulVartime(e.scalars, e.points)
	clear(e.points) // so that the pool keeps no key alive
	// [8]sum = identity:
	if sum.IsSmallOrder() {
		for _, j := range e.in {
			ok[part[j].i] = true
		}
		return true
	}
	for _, j := range e.in {
		p := &part[j]
		ok[p.i] = ed25519.VerifyExpandedWithOptions(p.key.exp, p.message(), p.sig, signatureRule)
	}
	return false
}

// reset empties e for an equation of at most n entries.
func (e *equation) reset(n int) {
	e.rnd = grow(e.rnd, 16*n)
	e.r = grow(e.r, n)
	e.z = grow(e.z, n)
	e.in = e.in[:0]
	clear(e.keys) // no key kept alive by the pool
	e.keys = e.keys[:0]
	e.a = e.a[:0]
}

// grow returns s resized to n elements, reusing its array when it can.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// term returns the coefficient of k's term, adding a zero one if k has none
// yet. Keys are told apart by pointer: the cache hands out one sigKey per
// key, and two for the same key (after an eviction) only make two terms.
func (e *equation) term(k *sigKey) *scalar.Scalar {
	for j, have := range e.keys {
		if have == k {
			return &e.a[j]
		}
	}
	e.keys = append(e.keys, k)
	e.a = append(e.a, scalar.Scalar{})
	return &e.a[len(e.a)-1]
}

// randomizer sets z to the 128-bit number in raw (little-endian), or 2^128
// if it is zero, as voi does: z_i must not be zero, or the equation would
// not check entry i.
func randomizer(z *scalar.Scalar, raw []byte) {
	var b [32]byte
	copy(b[:16], raw)
	if b == ([32]byte{}) {
		b[16] = 1
	}
	_, _ = z.SetBits(b[:]) // cannot fail: 32 bytes
}

// unpack decodes a signature's R and s under the rule's encoding checks, as
// curve25519-voi's VerifyOptions.unpackSignature does for DeMeS's options
// (signatureRule): 64 bytes, s below the group order L, R the encoding of
// a curve point, and a canonical one (a small-order R is allowed).
func unpack(sig []byte, r *curve.EdwardsPoint, s *scalar.Scalar) bool {
	if len(sig) != ed25519.SignatureSize || !scalar.ScMinimalVartime(sig[32:]) {
		return false
	}
	rc := curve.CompressedEdwardsY(sig[:32])
	if _, err := r.SetCompressedY(&rc); err != nil {
		return false
	}
	if !rc.IsCanonicalVartime() {
		return false
	}
	_, err := s.SetBytesModOrder(sig[32:])
	return err == nil
}
