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

// BenchmarkKeyHeaderLinked seals a sender key to n members' prekeys in a
// header of version 2 over key links to all of them but one (whose stanza
// is full, as a node seals its own), and opens one member's linked stanza,
// reporting the header's size.
func BenchmarkKeyHeaderLinked(b *testing.B) {
	for _, n := range []int{3, 100} {
		ps, set, first := recipients(b, n)
		ctx := KeyContext{Sender: first, Epoch: 1}
		key := [KeySize]byte{1}
		rs := make([]Recipient, n)
		for i, p := range ps {
			rs[i] = Recipient{Prekey: p}
		}
		full, started, err := SealKeyLinked(ctx, &key, rs, t0)
		if err != nil {
			b.Fatal(err)
		}
		// The first member (the reader) learns its link's root.
		if _, err := OpenKey(full, ctx, first, set); err != nil {
			b.Fatal(err)
		}
		for _, l := range started {
			for i, p := range ps {
				if p.Owner == l.Owner && i < n-1 {
					rs[i] = Recipient{Prekey: p, Link: l, Linked: true}
				}
			}
		}
		h, _, err := SealKeyLinked(ctx, &key, rs, t0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("seal/%d", n), func(b *testing.B) {
			for b.Loop() {
				for _, r := range rs {
					if r.Link != nil && r.Link.next >= MaxLinkSteps {
						b.StopTimer()
						*r.Link = *newSendLink(r.Prekey, t0) // a sender starts a new link there
						b.StartTimer()
					}
				}
				if _, _, err := SealKeyLinked(ctx, &key, rs, t0); err != nil {
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
