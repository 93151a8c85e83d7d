package keystore

import (
	"errors"
	"fmt"
	"os"

	"github.com/demes/demes/internal/fsutil"
)

// lockFile opens (creating it, mode 0600) the lock file at p and takes an
// exclusive lock on it, without waiting: a second process gets [ErrInUse].
// The lock goes with the file's descriptor, when it is closed or the
// process ends. Without flock (not on Unix) nothing stops a second process
// from opening the store: do not.
func lockFile(p string) (*os.File, error) {
	f, err := fsutil.LockFile(p)
	switch {
	case errors.Is(err, fsutil.ErrLocked):
		return nil, fmt.Errorf("%w: another process holds %s", ErrInUse, p)
	case err != nil:
		return nil, fmt.Errorf("lock key store %s: %w", p, err)
	}
	return f, nil
}
