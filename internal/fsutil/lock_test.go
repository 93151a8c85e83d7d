//go:build unix

package fsutil

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestLockFile: a held lock is seen by Locked and refused to a second
// LockFile (flock locks each open file, so one process shows it), and is
// free again once its file is closed.
func TestLockFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	if Locked(p) {
		t.Fatal("a missing lock file is locked")
	}
	f, err := LockFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !Locked(p) {
		t.Error("Locked does not see the lock")
	}
	if g, err := LockFile(p); !errors.Is(err, ErrLocked) {
		if g != nil {
			g.Close()
		}
		t.Errorf("a second LockFile: %v, want ErrLocked", err)
	}
	f.Close()
	if Locked(p) {
		t.Error("the lock outlives its file")
	}
	g, err := LockFile(p)
	if err != nil {
		t.Fatalf("LockFile after the first let go: %v", err)
	}
	g.Close()
}
