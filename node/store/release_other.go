//go:build !linux

package store

// dropMapped does nothing where the store does not release its mapped pages
// (only Linux is measured: docs/BENCHMARKS.md, "History").
func dropMapped(addr, size uintptr) error { return nil }
