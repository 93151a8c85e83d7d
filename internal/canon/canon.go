// Package canon is the strict CBOR codec of the forward-secrecy formats
// (crypto/prekey, crypto/ratchet): the deterministic core profile of RFC
// 8949 with nil slices written as empty strings, so that every value has
// exactly one encoding; decoding refuses tags, indefinite lengths, maps and
// deep nesting, which none of those formats uses.
package canon

import (
	"bytes"
	"errors"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

var (
	encMode  cbor.UserBufferEncMode
	arrayDec cbor.DecMode
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	var err error
	if encMode, err = eo.UserBufferEncMode(); err != nil {
		panic(err)
	}
	arrayDec, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  4,  // the smallest the library allows; the formats need 1
		MaxArrayElements: 16, // the smallest the library allows; the formats need 6
		MaxMapPairs:      16, // the smallest the library allows; the formats use none
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// ErrNotCanonical is returned by [Decode] for data that decodes but is not
// the one deterministic encoding of its value.
var ErrNotCanonical = errors.New("not in deterministic encoding")

// Marshal returns the deterministic encoding of v.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Decode decodes data into v and checks that data is exactly the
// deterministic encoding of v: signatures and HPKE contexts cover bytes,
// so a second encoding of the same value must not pass.
func Decode(data []byte, v any) error {
	if err := arrayDec.Unmarshal(data, v); err != nil {
		return err
	}
	same, err := Encodes(encMode, v, data)
	if err != nil {
		return err
	}
	if !same {
		return ErrNotCanonical
	}
	return nil
}

// Encodes reports whether em encodes v to exactly data: the check of a
// deterministic encoding after decoding, as Decode does and the codecs of
// packages crypto and state do with their own modes. It encodes into a
// pooled buffer rather than a new slice: every envelope, sealed message and
// batch a node receives is checked so, and the copies were a quarter of the
// bytes its nodes allocated under load.
func Encodes(em cbor.UserBufferEncMode, v any, data []byte) (bool, error) {
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooled {
			buffers.Put(buf)
		}
	}()
	if err := em.MarshalToBuffer(v, buf); err != nil {
		return false, err
	}
	return bytes.Equal(buf.Bytes(), data), nil
}

// maxPooled is the largest buffer Encodes keeps for the next check: a
// batch of raft messages may be megabytes, and a pool of such buffers
// would hold that memory for the rare large batch.
const maxPooled = 256 << 10

var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
