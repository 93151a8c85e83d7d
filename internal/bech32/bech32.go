// Package bech32 implements the BIP-173 bech32 encoding without the
// 90-character limit, as age does, so that two 32-byte keys fit in one string.
package bech32

import (
	"errors"
	"fmt"
	"strings"
)

const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

var generator = []uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}

func polymod(values []byte) uint32 {
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>uint(i))&1 == 1 {
				chk ^= generator[i]
			}
		}
	}
	return chk
}

func hrpExpand(hrp string) []byte {
	h := []byte(strings.ToLower(hrp))
	var ret []byte
	for _, c := range h {
		ret = append(ret, c>>5)
	}
	ret = append(ret, 0)
	for _, c := range h {
		ret = append(ret, c&31)
	}
	return ret
}

func verifyChecksum(hrp string, data []byte) bool {
	return polymod(append(hrpExpand(hrp), data...)) == 1
}

func createChecksum(hrp string, data []byte) []byte {
	values := append(hrpExpand(hrp), data...)
	values = append(values, []byte{0, 0, 0, 0, 0, 0}...)
	mod := polymod(values) ^ 1
	ret := make([]byte, 6)
	for p := range ret {
		ret[p] = byte(mod>>uint(5*(5-p))) & 31
	}
	return ret
}

func convertBits(data []byte, frombits, tobits byte, pad bool) ([]byte, error) {
	var ret []byte
	acc := uint32(0)
	bits := byte(0)
	maxv := byte(1<<tobits - 1)
	for _, value := range data {
		if value>>frombits != 0 {
			return nil, errors.New("invalid data range")
		}
		acc = acc<<frombits | uint32(value)
		bits += frombits
		for bits >= tobits {
			bits -= tobits
			ret = append(ret, byte(acc>>bits)&maxv)
		}
	}
	if pad {
		if bits > 0 {
			ret = append(ret, byte(acc<<(tobits-bits))&maxv)
		}
	} else if bits >= frombits {
		return nil, errors.New("illegal zero padding")
	} else if byte(acc<<(tobits-bits))&maxv != 0 {
		return nil, errors.New("non-zero padding")
	}
	return ret, nil
}

// Encode encodes the HRP and a bytes slice to bech32. The HRP's case is kept.
func Encode(hrp string, data []byte) (string, error) {
	values, err := convertBits(data, 8, 5, true)
	if err != nil {
		return "", err
	}
	if len(hrp) < 1 {
		return "", errors.New("empty human-readable part")
	}
	for _, c := range []byte(hrp) {
		if c < 33 || c > 126 {
			return "", fmt.Errorf("invalid human-readable part character %q", c)
		}
	}
	lower := strings.ToLower(hrp) == hrp
	hrp = strings.ToLower(hrp)
	var b strings.Builder
	b.WriteString(hrp)
	b.WriteByte('1')
	for _, v := range values {
		b.WriteByte(charset[v])
	}
	for _, v := range createChecksum(hrp, values) {
		b.WriteByte(charset[v])
	}
	if !lower {
		return strings.ToUpper(b.String()), nil
	}
	return b.String(), nil
}

// ErrChecksum is returned by Decode when the string's checksum does not match,
// which almost always means a typo.
var ErrChecksum = errors.New("checksum mismatch (is there a typo?)")

// Decode decodes a bech32 string. Mixed case is rejected.
func Decode(s string) (hrp string, data []byte, err error) {
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, errors.New("mixed case")
	}
	pos := strings.LastIndex(s, "1")
	if pos < 1 || pos+7 > len(s) {
		return "", nil, errors.New("separator '1' at invalid position")
	}
	hrp = s[:pos]
	for p, c := range []byte(hrp) {
		if c < 33 || c > 126 {
			return "", nil, fmt.Errorf("invalid character in human-readable part: s[%d]=%d", p, c)
		}
	}
	s = strings.ToLower(s)
	var values []byte
	for p, c := range []byte(s[pos+1:]) {
		d := strings.IndexByte(charset, c)
		if d == -1 {
			return "", nil, fmt.Errorf("invalid character %q at position %d", c, pos+1+p)
		}
		values = append(values, byte(d))
	}
	if !verifyChecksum(strings.ToLower(hrp), values) {
		return "", nil, ErrChecksum
	}
	data, err = convertBits(values[:len(values)-6], 5, 8, false)
	if err != nil {
		return "", nil, err
	}
	return hrp, data, nil
}
