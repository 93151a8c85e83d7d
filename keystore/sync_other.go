//go:build !linux

package keystore

import "os"

// syncData makes the data written to f durable.
func syncData(f *os.File) error { return f.Sync() }
