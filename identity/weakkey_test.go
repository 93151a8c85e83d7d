package identity

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestWeakKeysRefused is the attack of issue 15 on ids: a public id built on
// an ed25519 key of small order verifies a forged signature on any message
// (anyone can sign as it), and one built on an X25519 key of small order makes
// every key agreement with it all zeros (sealing to it fails, or leaks). Such
// ids, and non-canonical encodings of keys, must be refused when parsed, with
// a reason.
func TestWeakKeysRefused(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	good := id.Public()
	h := func(s string) [32]byte {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("bad test key %q", s)
		}
		return [32]byte(b)
	}
	cases := []struct {
		name string
		sign [32]byte
		box  [32]byte
		why  string
	}{
		{"ed25519 identity point", h("0100000000000000000000000000000000000000000000000000000000000000"), good.Box, "small order"},
		{"ed25519 point of order 8", h("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), good.Box, "small order"},
		{"ed25519 identity as y = p + 1", h("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), good.Box, "not canonical"},
		{"ed25519 identity with the sign bit set", h("0100000000000000000000000000000000000000000000000000000000000080"), good.Box, "not canonical"},
		{"ed25519 not on the curve", h("0200000000000000000000000000000000000000000000000000000000000000"), good.Box, "not on the curve"},
		{"X25519 u = 1 (order 4)", good.Sign, h("0100000000000000000000000000000000000000000000000000000000000000"), "small order"},
		{"X25519 point of order 8", good.Sign, h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), "small order"},
		{"X25519 u = p (zero, non-canonical)", good.Sign, h("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), "small order"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := append(append([]byte{}, tc.sign[:]...), tc.box[:]...)
			_, err := PublicIDFromBytes(b)
			if !errors.Is(err, ErrWeakKey) {
				t.Fatalf("PublicIDFromBytes = %v, want ErrWeakKey", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			// The text form is refused alike.
			s := PublicID{Sign: tc.sign, Box: tc.box}.String()
			if _, err := ParsePublicID(s); !errors.Is(err, ErrWeakKey) {
				t.Fatalf("ParsePublicID = %v, want ErrWeakKey", err)
			}
		})
	}
	if _, err := PublicIDFromBytes(good.Bytes()); err != nil {
		t.Fatalf("a real identity's id is refused: %v", err)
	}
}
