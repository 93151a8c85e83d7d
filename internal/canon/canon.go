// Package canon is the strict CBOR codec of the forward-secrecy formats
// (crypto/prekey, crypto/ratchet): the deterministic core profile of RFC
// 8949 with nil slices written as empty strings, so that every value has
// exactly one encoding; decoding refuses tags, indefinite lengths, maps and
// deep nesting, which none of those formats uses.
package canon

import (
	"bytes"
	"errors"

	"github.com/fxamacker/cbor/v2"
)

var (
	encMode  cbor.EncMode
	arrayDec cbor.DecMode
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	var err error
	if encMode, err = eo.EncMode(); err != nil {
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
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return ErrNotCanonical
	}
	return nil
}
