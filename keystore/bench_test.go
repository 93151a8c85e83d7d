package keystore

import (
	"fmt"
	"testing"
)

// The benchmarks include the syncs: that is the cost a caller pays. On a
// tmpfs they measure nothing useful; run them on the disk a node uses.

func benchPut(b *testing.B, size int, replace bool) {
	s := openT(b, storePath(b), testID(b, 1))
	secret := secretOf("x", size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("k/%d", i)
		if replace {
			name = "k"
		}
		if err := s.Put(name, secret, zeroTime); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut stores a new 32-byte secret (a prekey seed): one sync.
func BenchmarkPut(b *testing.B) { benchPut(b, 32, false) }

// BenchmarkPutReplace40K replaces a 40 KB secret (a ratchet receiver state
// with its skipped keys): one sync for the new value, two for erasing the
// old, and a compaction now and then.
func BenchmarkPutReplace40K(b *testing.B) { benchPut(b, 40_000, true) }

// BenchmarkPutReplace32 replaces a 32-byte secret: three syncs.
func BenchmarkPutReplace32(b *testing.B) { benchPut(b, 32, true) }

// BenchmarkDelete erases one 32-byte secret: two syncs.
func BenchmarkDelete(b *testing.B) {
	s := openT(b, storePath(b), testID(b, 1))
	s.compactMin = 1 << 40 // measure the erasure, not compaction
	for i := range b.N {
		if err := s.Put(fmt.Sprintf("k/%d", i), secretOf("x", 32), zeroTime); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if err := s.Delete(fmt.Sprintf("k/%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen1000 opens a store of 1000 32-byte secrets.
func BenchmarkOpen1000(b *testing.B) {
	path, id := storePath(b), testID(b, 1)
	s := openT(b, path, id)
	for i := range 1000 {
		if err := s.Put(fmt.Sprintf("k/%d", i), secretOf("x", 32), zeroTime); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	b.ResetTimer()
	for range b.N {
		s, err := Open(path, id)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
