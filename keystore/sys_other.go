//go:build !unix

package keystore

import (
	"fmt"
	"os"
)

// lockFile opens the lock file at p. Without flock, nothing stops a second
// process from opening the store: do not.
func lockFile(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open key store lock: %w", err)
	}
	return f, nil
}
