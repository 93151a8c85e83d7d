package fsutil

import (
	"path/filepath"
	"testing"
)

// TestSyncDir: an existing directory syncs; a missing one is an error that
// names what failed.
func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatalf("sync %s: %v", dir, err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing directory synced")
	}
}
