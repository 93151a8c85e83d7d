//go:build unix

package keystore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile opens (creating it, mode 0600) the lock file at p and takes an
// exclusive lock on it, without waiting: a second process gets [ErrInUse].
// The lock goes with the file's descriptor, when it is closed or the
// process ends.
func lockFile(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open key store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another process holds %s", ErrInUse, p)
		}
		return nil, fmt.Errorf("lock key store %s: %w", p, err)
	}
	return f, nil
}
