package crypto

import (
	"fmt"
	"slices"

	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// BatchSize is the most signatures a [SignatureBatch] checks in one
// equation. Larger equations cost less per signature: with few keys, one of
// 64 signatures costs about 0.4 times their single checks, and one of
// more than about 186, which curve25519-voi's multiscalar multiplication
// does with Pippenger's method (above 190 terms) rather than Straus's,
// about 0.3; beyond 256 it gains little more (BenchmarkSignatureBatch). A
// failed equation is checked again one signature at a time, so that a batch
// with bad signatures costs at most about 1.3 times its single checks,
// whoever made them bad.
const BatchSize = 256

// minBatch is the fewest signatures checked in one equation: an equation
// has a fixed cost (256 doublings, a table for B and each key) that makes
// it no cheaper than single checks below about 4 signatures
// (BenchmarkSignatureBatch: one of 8 costs 0.68 times their single checks,
// one of 1 1.7 times).
const minBatch = 8

// SignatureBatch checks many signatures together, under exactly the rule of
// [VerifySignature] (docs/PROTOCOL.md, section Signatures): a batch accepts
// an entry if and only if VerifySignature would. All valid and by a few
// keys, it costs about 0.4 times as much per signature as single checks
// from 64 signatures on, 0.3 from 192 (see BatchSize); when an equation
// fails, its entries are checked one by one, so that the result names
// every bad entry. batcheq.go says how an equation is built.
//
// Add the signatures, then call [SignatureBatch.Verify] once. A
// SignatureBatch is not safe for concurrent use; the zero value is an empty
// batch.
type SignatureBatch struct {
	n int
	// bad are the entries refused when added (a wrong length, a key that
	// is no point), which never reach an equation.
	bad []int
	// todo are the others, in order.
	todo []pending
}

// pending is an entry of a batch that is not checked yet. Its message is
// the concatenation of msg's parts, kept apart so that a caller signing a
// domain string and parts of a frame need not copy them into one slice:
// the challenge hashes them in order, and only a single check (after a
// failed equation) joins them.
type pending struct {
	i   int
	key *sigKey
	msg [3][]byte
	sig []byte
}

// The domain strings as batch message parts, which nothing changes.
var (
	envelopeDomainBytes = []byte(envelopeDomain)
	messageDomainBytes  = []byte(messageDomain)
)

// message returns p's message in one slice.
func (p *pending) message() []byte {
	if p.msg[1] == nil && p.msg[2] == nil {
		return p.msg[0]
	}
	return slices.Concat(p.msg[:]...)
}

// Add adds the signature sig of msg by the public key pub to the batch, as
// the next entry (the first is entry 0). The batch keeps msg and sig until
// Verify returns: the caller must not change them before. Add never panics,
// whatever the input.
func (b *SignatureBatch) Add(pub, msg, sig []byte) {
	b.add(pub, sig, msg, nil, nil)
}

// add is Add for the message m1 || m2 || m3.
func (b *SignatureBatch) add(pub, sig, m1, m2, m3 []byte) {
	i := b.n
	b.n++
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		b.bad = append(b.bad, i)
		return
	}
	k := expandedKeys.get([32]byte(pub))
	if k == nil {
		b.bad = append(b.bad, i) // not a point on the curve
		return
	}
	b.todo = append(b.todo, pending{i: i, key: k, msg: [3][]byte{m1, m2, m3}, sig: sig})
}

// Len returns the number of entries added.
func (b *SignatureBatch) Len() int { return b.n }

// Verify checks every entry and returns ok, with ok[i] set if and only if
// entry i is a valid signature, and first, the number of the first invalid
// entry, or -1 when all are valid. The entries are split into equations of
// at most BatchSize and at least minBatch entries (fewer are checked one by
// one), whose random coefficients come from crypto/rand, so that no signer
// can aim at them.
func (b *SignatureBatch) Verify() (ok []bool, first int) {
	ok = make([]bool, b.n)
	if len(b.todo) < minBatch {
		for _, p := range b.todo {
			ok[p.i] = ed25519.VerifyExpandedWithOptions(p.key.exp, p.message(), p.sig, signatureRule)
		}
	} else {
		e := equations.Get().(*equation)
		defer equations.Put(e)
		// Equations of equal size: 65 entries make two of 33 and 32,
		// not one of 64 and one of 1.
		groups := (len(b.todo) + BatchSize - 1) / BatchSize
		for g := range groups {
			part := b.todo[g*len(b.todo)/groups : (g+1)*len(b.todo)/groups]
			e.check(part, ok)
		}
	}
	for i, good := range ok {
		if !good {
			return ok, i
		}
	}
	return ok, -1
}

// VerifyFrames checks each frame as [Verify] does, with the same results,
// but checks their signatures together ([SignatureBatch]): envs[i] and
// errs[i] are what Verify(frames[i]) returns. It is for many frames at once,
// the entries of a transcript or of a catch-up. It never panics, whatever
// the input.
func VerifyFrames(frames [][]byte) (envs []*Envelope, errs []error) {
	envs = make([]*Envelope, len(frames))
	errs = make([]error, len(frames))
	var b SignatureBatch
	at := make([]int, 0, len(frames)) // the frame of each batch entry
	for i, frame := range frames {
		sender, sig, body, err := splitFrame("verify envelope", frame)
		if err != nil {
			errs[i] = err
			continue
		}
		b.add(sender, sig, envelopeDomainBytes, frame[:1+keySize], body) // signedEnvelope's parts
		at = append(at, i)
	}
	ok, _ := b.Verify()
	for j, i := range at {
		if !ok[j] {
			errs[i] = fmt.Errorf("verify envelope: %w", ErrSignature)
			continue
		}
		envs[i], errs[i] = decodeFrame("verify envelope", frames[i])
	}
	return envs, errs
}

// VerifyRecords checks each record and its signature as [VerifyRecord]
// does, with the same results, but checks the signatures together
// ([SignatureBatch]): msgs[i] and errs[i] are what VerifyRecord(records[i],
// sigs[i]) returns. records and sigs must have the same length. It never
// panics, whatever they hold.
func VerifyRecords(records, sigs [][]byte) (msgs []*Message, errs []error) {
	n := min(len(records), len(sigs))
	msgs = make([]*Message, n)
	errs = make([]error, n)
	var b SignatureBatch
	at := make([]int, 0, n)
	for i := range n {
		m, err := decodeRecord(records[i])
		if err != nil {
			errs[i] = fmt.Errorf("verify record: %w", err)
			continue
		}
		msgs[i] = m
		b.add(m.Author.Sign[:], sigs[i], messageDomainBytes, records[i], nil) // signedRecord's parts
		at = append(at, i)
	}
	ok, _ := b.Verify()
	for j, i := range at {
		if !ok[j] {
			msgs[i], errs[i] = nil, fmt.Errorf("verify record: %w", ErrSignature)
		}
	}
	return msgs, errs
}

// ToOpen is one message for [OpenMessages]: the arguments of [OpenMessage].
type ToOpen struct {
	Key    *SenderKey
	Group  GroupID
	Sealed []byte
	Sender [32]byte
	ID     [16]byte
}

// OpenMessages opens each message as [OpenMessage] does, with the same
// results, but checks the records' signatures together
// ([SignatureBatch]): opened[i] and errs[i] are what OpenMessage returns for
// msgs[i]. It is for many messages at once, a member catching up. It never
// panics, whatever the input.
func OpenMessages(msgs []ToOpen) (opened []*Opened, errs []error) {
	opened = make([]*Opened, len(msgs))
	errs = make([]error, len(msgs))
	type unsealed struct {
		i           int
		record, sig []byte
		m           *Message
		counter     uint64 // Opened.Counter
	}
	var b SignatureBatch
	var todo []unsealed
	for i, o := range msgs {
		if o.Key == nil {
			errs[i] = openMessageErr(o)
			continue
		}
		w, err := decodeSealed(o.Sealed)
		if err != nil {
			errs[i] = fmt.Errorf("open message: %w", err)
			continue
		}
		k := o.Key
		if k.Group != o.Group || k.Sender != o.Sender || k.Epoch != w.Epoch || k.ID != [KeyIDSize]byte(w.KeyID) {
			errs[i] = fmt.Errorf("open message: %w", ErrWrongKey)
			continue
		}
		mk, aad, err := k.keysFor(w, o.ID)
		if err != nil {
			errs[i] = err
			continue
		}
		record, sig, m, err := unsealRecord(mk, aad, w)
		clear(mk)
		if err != nil {
			errs[i] = err
			continue
		}
		b.add(m.Author.Sign[:], sig, messageDomainBytes, record, nil) // signedRecord's parts
		todo = append(todo, unsealed{i, record, sig, m, w.counter1()})
	}
	ok, _ := b.Verify()
	for j, u := range todo {
		o := msgs[u.i]
		if !ok[j] {
			errs[u.i] = fmt.Errorf("open message: verify record: %w", ErrSignature)
			continue
		}
		opened[u.i], errs[u.i] = checkOpened(u.m, u.record, u.sig, o.Group, o.Sender, o.ID)
		if opened[u.i] != nil {
			opened[u.i].Counter = u.counter
		}
	}
	return opened, errs
}

// openMessageErr is OpenMessage's error for o when it has no key.
func openMessageErr(o ToOpen) error {
	_, err := openMessage(o.Key, o.Group, o.Sealed, o.Sender, o.ID)
	return err
}
