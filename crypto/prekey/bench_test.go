package prekey

import (
	"fmt"
	"testing"
)

// recipients returns n members' prekeys and the first member's secrets.
func recipients(b *testing.B, n int) ([]*Prekey, *SecretSet, [32]byte) {
	var ps []*Prekey
	set := NewSecretSet()
	var first [32]byte
	for i := range n {
		m := member(b, byte(i+1))
		p, s := prekeyOf(b, m, byte(i))
		ps = append(ps, p)
		if i == 0 {
			set.Add(s)
			first = p.Owner
		}
	}
	return ps, set, first
}

// BenchmarkPrekey reports the cost of making a prekey, of checking one, and
// its size on the wire.
func BenchmarkPrekey(b *testing.B) {
	m := member(b, 1)
	p, _ := prekeyOf(b, m, 1)
	b.Run("generate", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := Generate(m, t0, DefaultLifetime); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(p.Bytes())), "bytes/prekey")
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := Verify(p.Bytes(), t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkKeyHeader seals a sender key to n members' prekeys, and opens
// one member's stanza, reporting the header's size.
func BenchmarkKeyHeader(b *testing.B) {
	for _, n := range []int{3, 100} {
		ps, set, first := recipients(b, n)
		ctx := KeyContext{Sender: first, Epoch: 1}
		key := [KeySize]byte{1}
		h, err := SealKey(ctx, &key, ps, t0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("seal/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := SealKey(ctx, &key, ps, t0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(h)), "bytes/header")
		})
		b.Run(fmt.Sprintf("open/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := OpenKey(h, ctx, first, set); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
