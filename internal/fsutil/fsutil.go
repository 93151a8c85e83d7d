// Package fsutil holds the file-system steps that several packages need:
// making their writes durable, and locking a file between processes.
package fsutil

import (
	"fmt"
	"os"
	"runtime"
)

// SyncDir flushes the entries of directory dir to disk, so that a file
// created, renamed or removed in it survives a crash. On Windows, where a
// directory cannot be opened for syncing, it does nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
