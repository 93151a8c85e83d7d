package crypto

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/canon"
)

// Version is the envelope format version, the first byte of every frame.
// A receiver rejects any other value with [ErrVersion] before looking further:
// a new version may change everything after that byte.
const Version = 1

// Limits. Every length a peer controls is bounded before it is used, so a
// hostile frame costs at most a bounded amount of memory and time.
const (
	// MaxFrame is the largest frame Verify accepts. It is large because
	// one batch may carry raft messages that replicate many log entries.
	MaxFrame = 8 << 20
	// MaxPayload is the largest envelope payload. It leaves 256 bytes of
	// the frame for the header and the encoded fields, which need at most
	// 172, so that every envelope Sign accepts fits in MaxFrame.
	MaxPayload = MaxFrame - 256
	// MaxBatchItems is the largest number of inner messages in a batch.
	MaxBatchItems = 4096
	// MaxBody is the largest chat message body, in bytes of UTF-8.
	MaxBody = 64 << 10
	// MaxRecipients is the largest number of recipients a chat message
	// can be sealed to. It is age's own limit on recipient stanzas, so
	// that any age implementation can read what DeMeS writes.
	MaxRecipients = 1024
	// MaxRecord is the largest encoded message record: MaxBody plus room
	// for the fixed-size fields, which need at most 147 bytes.
	MaxRecord = MaxBody + 256
)

// Lengths of the parts of a frame.
const (
	sigSize    = ed25519.SignatureSize // 64
	keySize    = ed25519.PublicKeySize // 32
	headerSize = 1 + keySize + sigSize // version, sender, signature
)

// envelopeDomain separates envelope signatures from every other signature
// made with the same ed25519 key (message records, anything added later), so
// that no signed envelope can be presented as something else.
const envelopeDomain = "DeMeS envelope v1\x00"

// Errors. The functions of this package wrap one of them, with detail, so a
// caller can classify a rejection with errors.Is and log the full text.
var (
	// ErrMalformed: the bytes do not follow the format or break a limit
	// other than the overall size.
	ErrMalformed = errors.New("malformed")
	// ErrVersion: the frame's version byte is not [Version].
	ErrVersion = errors.New("unsupported version")
	// ErrSignature: a signature does not verify.
	ErrSignature = errors.New("bad signature")
	// ErrTooLarge: the input is larger than its limit.
	ErrTooLarge = errors.New("too large")
	// ErrReplay: the envelope's counter was seen before, or is too old to
	// tell (see [ReplayFilter]).
	ErrReplay = errors.New("replayed")
	// ErrSkew: the envelope's time is too far from the receiver's clock.
	ErrSkew = errors.New("clock skew too large")
	// ErrNotRecipient: a sealed message is not sealed to this identity.
	ErrNotRecipient = errors.New("not a recipient")
	// ErrAuthorMismatch: a sealed message's author is not the sender of the
	// envelope that carries it.
	ErrAuthorMismatch = errors.New("author is not the sender")
	// ErrWrongGroup: a sealed message belongs to another group.
	ErrWrongGroup = errors.New("wrong group")
)

// Envelope is the decoded, verified content of a signed frame: what [Verify]
// returns and what [Sign] encodes.
type Envelope struct {
	Type  Type
	Group GroupID
	// Sender is the ed25519 public key of the signer. Sign sets it; Verify
	// fills it from the frame, whose signature it has checked.
	Sender [32]byte
	// To is the ed25519 key of the node the envelope is meant for, so that
	// an envelope sent to one peer cannot be replayed to another. Zero
	// means the whole group.
	To [32]byte
	// Counter strictly increases per sender (see [Counter]); with Time it
	// lets the receiver reject replays (see [ReplayFilter]).
	Counter uint64
	// Time is the sender's clock, in unix nanoseconds.
	Time    int64
	Payload []byte
}

// envelopeBody is the wire form of an envelope's body: a CBOR array of six
// items, in this order. Keys and ids are byte strings rather than fixed
// arrays so that the decoder sees their real length and can reject a wrong one.
type envelopeBody struct {
	_       struct{} `cbor:",toarray"`
	Type    uint8
	Group   []byte // 16 bytes
	To      []byte // 32 bytes
	Counter uint64
	Time    int64
	Payload []byte
}

// The CBOR codec. Encoding is the deterministic core profile of RFC 8949
// (shortest integers, definite lengths), with nil slices written as empty
// strings so that there is exactly one encoding of every value. Decoding
// refuses what the format never uses (tags, indefinite lengths, duplicate
// map keys, deep nesting, long arrays), so a hostile input is rejected early.
var (
	encMode  cbor.UserBufferEncMode
	arrayDec cbor.DecMode // envelope bodies, records, sealed messages: short flat arrays
	batchDec cbor.DecMode // batches: arrays of up to MaxBatchItems items
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	var err error
	if encMode, err = eo.UserBufferEncMode(); err != nil {
		panic(err)
	}
	mk := func(maxArray int) cbor.DecMode {
		d, err := cbor.DecOptions{
			DupMapKey:        cbor.DupMapKeyEnforcedAPF,
			MaxNestedLevels:  4, // the smallest the library allows; we need 1
			MaxArrayElements: maxArray,
			MaxMapPairs:      16, // the smallest the library allows; we use none
			IndefLength:      cbor.IndefLengthForbidden,
			TagsMd:           cbor.TagsForbidden,
		}.DecMode()
		if err != nil {
			panic(err)
		}
		return d
	}
	arrayDec = mk(16) // the smallest the library allows; we need 6
	batchDec = mk(MaxBatchItems)
}

// decodeCanonical decodes data into v and then checks that data is exactly
// the deterministic encoding of v. Signatures cover bytes, not values, so
// accepting a second encoding of the same value would let anyone mint a new
// signed-looking frame (with a new hash) from an old one; and it would break
// the rule that whatever decodes re-encodes to the same bytes.
func decodeCanonical(dm cbor.DecMode, data []byte, v any) error {
	if err := dm.Unmarshal(data, v); err != nil {
		return err
	}
	same, err := canon.Encodes(encMode, v, data)
	if err != nil {
		return err
	}
	if !same {
		return errors.New("not in deterministic encoding")
	}
	return nil
}

// Sign sets e.Sender to id's signing key, encodes and signs e, and returns
// the frame that travels:
//
//	version (1 byte) || sender (32) || signature (64) || body
//
// The signature covers the domain string "DeMeS envelope v1\x00" followed by
// the version, the sender and the body, exactly as they appear in the frame.
func Sign(id *identity.Identity, e *Envelope) ([]byte, error) {
	if id == nil || e == nil {
		return nil, errors.New("sign envelope: nil identity or envelope")
	}
	if e.Type == 0 {
		return nil, fmt.Errorf("sign envelope: %w: type 0", ErrMalformed)
	}
	if len(e.Payload) > MaxPayload {
		return nil, fmt.Errorf("sign envelope: %w: payload of %d bytes, limit %d", ErrTooLarge, len(e.Payload), MaxPayload)
	}
	e.Sender = id.Public().Sign
	// One buffer holds both what is signed and the frame: the body is
	// encoded once, after room for the header, and the signature input
	// (domain, version, sender, body) is laid out in that room right
	// before the body; once signed, the header overwrites it. A frame is
	// up to MaxFrame, and each copy of it cost as much as a memmove of a
	// megabyte does under the race detector (docs/BENCHMARKS.md, "History").
	buf := bytes.NewBuffer(make([]byte, headerSize, headerSize+len(e.Payload)+bodyOverhead))
	if err := encMode.MarshalToBuffer(wireBody(e), buf); err != nil {
		return nil, fmt.Errorf("sign envelope: %v", err)
	}
	frame := buf.Bytes()
	frame[0] = Version
	copy(frame[1:], e.Sender[:])
	head := frame[:1+keySize]
	signed := frame[headerSize-len(envelopeDomain)-len(head):]
	appendSignatureInput(signed[:0], head, nil) // the body follows already
	copy(frame[len(head):headerSize], id.Sign(signed))
	return frame, nil
}

// bodyOverhead bounds what an envelope's body adds to its payload: the
// array's head, the type, group, recipient, counter and time, and the
// payload's own head.
const bodyOverhead = 1 + 2 + (1 + 16) + (2 + keySize) + 9 + 9 + 9

// signedEnvelope returns the signature input for a frame whose version and
// sender are head and whose body is body.
func signedEnvelope(head, body []byte) []byte {
	return appendSignatureInput(make([]byte, 0, len(envelopeDomain)+len(head)+len(body)), head, body)
}

// appendSignatureInput appends to dst the signature input of a frame whose
// version and sender are head and whose body is body: the domain string,
// then head, then body.
func appendSignatureInput(dst, head, body []byte) []byte {
	dst = append(dst, envelopeDomain...)
	dst = append(dst, head...)
	return append(dst, body...)
}

// verifyFrameSignature checks sig, sender's signature of the frame whose
// version and sender are head and whose body is body. The signature input
// is built in a buffer from a pool: a frame is up to MaxFrame, and a fresh
// one for each frame received was a tenth of the bytes a catch-up on large
// messages allocated (its allocation and collection cost most of the CPU
// under the race detector, docs/BENCHMARKS.md "History").
func verifyFrameSignature(sender, head, body, sig []byte) bool {
	bp := signedInputs.Get().(*[]byte)
	msg := appendSignatureInput((*bp)[:0], head, body)
	ok := VerifySignature(sender, msg, sig)
	if cap(msg) <= maxPooledInput {
		*bp = msg
		signedInputs.Put(bp)
	}
	return ok
}

// signedInputs holds buffers for verifyFrameSignature, each at most
// maxPooledInput: about a raft append (1 MiB) with its envelope.
var signedInputs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledInput = 2 << 20

func encodeBody(e *Envelope) ([]byte, error) {
	return encMode.Marshal(wireBody(e))
}

// wireBody returns e's body as it is encoded.
func wireBody(e *Envelope) *envelopeBody {
	return &envelopeBody{
		Type:    uint8(e.Type),
		Group:   e.Group[:],
		To:      e.To[:],
		Counter: e.Counter,
		Time:    e.Time,
		Payload: e.Payload,
	}
}

// Verify checks a frame and returns its envelope. In order, it checks the
// size, the version, and the sender's signature over the exact bytes
// received; only a frame that passes all three is decoded, and the decoder
// enforces the length of every field and rejects any encoding other than the
// deterministic one. Verify never panics, whatever the input.
//
// A verified envelope is authentic, not yet acceptable: the caller still
// checks the sender's membership, the recipient ([Envelope.To]) and
// freshness ([ReplayFilter]).
func Verify(frame []byte) (*Envelope, error) {
	return parseFrame(frame, true)
}

// ParseTrusted decodes a frame like [Verify] but does not check its
// signature. It is only for a frame that was verified before and was kept
// since where only this node writes: a node that restored a group's state
// from its own snapshot reads the log entries before the snapshot back from
// its own store to rebuild what it shows, and the state machine verified
// each of them when it applied it. Anything from a peer or from a file
// someone else may have written goes through Verify.
func ParseTrusted(frame []byte) (*Envelope, error) {
	return parseFrame(frame, false)
}

func parseFrame(frame []byte, verify bool) (*Envelope, error) {
	op := "verify envelope"
	if !verify {
		op = "parse envelope"
	}
	sender, sig, body, err := splitFrame(op, frame)
	if err != nil {
		return nil, err
	}
	if verify && !verifyFrameSignature(sender, frame[:1+keySize], body, sig) {
		return nil, fmt.Errorf("%s: %w", op, ErrSignature)
	}
	return decodeFrame(op, frame)
}

// splitFrame checks a frame's size and version and returns its sender,
// signature and body: what comes before the signature check.
func splitFrame(op string, frame []byte) (sender, sig, body []byte, err error) {
	switch {
	case len(frame) > MaxFrame:
		return nil, nil, nil, fmt.Errorf("%s: %w: frame of %d bytes, limit %d", op, ErrTooLarge, len(frame), MaxFrame)
	case len(frame) == 0:
		return nil, nil, nil, fmt.Errorf("%s: %w: empty frame", op, ErrMalformed)
	case frame[0] != Version:
		return nil, nil, nil, fmt.Errorf("%s: %w: %d", op, ErrVersion, frame[0])
	case len(frame) <= headerSize:
		return nil, nil, nil, fmt.Errorf("%s: %w: truncated frame of %d bytes", op, ErrMalformed, len(frame))
	}
	return frame[1 : 1+keySize], frame[1+keySize : headerSize], frame[headerSize:], nil
}

// decodeFrame decodes the body of a frame that splitFrame accepted (and
// whose signature, if it is to be checked, was): what comes after the
// signature check.
func decodeFrame(op string, frame []byte) (*Envelope, error) {
	e, err := decodeBody(frame[headerSize:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	copy(e.Sender[:], frame[1:1+keySize])
	return e, nil
}

// decodeBody decodes and checks an envelope body. It is separate from Verify
// so that the fuzz test can reach the decoder without a valid signature.
func decodeBody(body []byte) (*Envelope, error) {
	var w envelopeBody
	if err := parseEnvelopeBody(body, &w); err != nil { // what decodeCanonical accepts (cborwire.go)
		return nil, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	e := &Envelope{Type: Type(w.Type), Counter: w.Counter, Time: w.Time, Payload: w.Payload}
	switch {
	case e.Type == 0:
		return nil, fmt.Errorf("%w: type 0", ErrMalformed)
	case len(w.Group) != len(e.Group):
		return nil, fmt.Errorf("%w: group id of %d bytes", ErrMalformed, len(w.Group))
	case len(w.To) != len(e.To):
		return nil, fmt.Errorf("%w: recipient key of %d bytes", ErrMalformed, len(w.To))
	case len(w.Payload) > MaxPayload:
		return nil, fmt.Errorf("%w: payload of %d bytes", ErrTooLarge, len(w.Payload))
	}
	copy(e.Group[:], w.Group)
	copy(e.To[:], w.To)
	return e, nil
}

// EncodeBatch encodes items, the inner messages of a [TypeBatch] envelope,
// as a CBOR array of byte strings. There may be at most [MaxBatchItems]
// items, and the result must fit in [MaxPayload].
func EncodeBatch(items [][]byte) ([]byte, error) {
	if len(items) > MaxBatchItems {
		return nil, fmt.Errorf("encode batch: %w: %d items, limit %d", ErrTooLarge, len(items), MaxBatchItems)
	}
	if items == nil {
		items = [][]byte{} // a nil batch is an empty one, not CBOR null
	}
	// Into a buffer of the right size: Marshal would grow one and copy the
	// result out of it, and a batch is up to a megabyte.
	size := 9
	for _, it := range items {
		size += 9 + len(it)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if err := encMode.MarshalToBuffer(items, buf); err != nil {
		return nil, fmt.Errorf("encode batch: %v", err)
	}
	b := buf.Bytes()
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("encode batch: %w: %d bytes, limit %d", ErrTooLarge, len(b), MaxPayload)
	}
	return b, nil
}

// DecodeBatch decodes a batch written by [EncodeBatch]. It enforces the same
// limits, accepts only the deterministic encoding, and never panics.
func DecodeBatch(b []byte) ([][]byte, error) {
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("decode batch: %w: %d bytes, limit %d", ErrTooLarge, len(b), MaxPayload)
	}
	var items [][]byte
	if err := decodeCanonical(batchDec, b, &items); err != nil {
		return nil, fmt.Errorf("decode batch: %w: %v", ErrMalformed, err)
	}
	return items, nil
}
