//go:build !unix

package fsutil

import "os"

// LockFile opens (creating it, mode 0600) the lock file at p. Without
// flock it locks nothing: nothing stops a second process.
func LockFile(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
}

// Locked reports false: without flock nothing is locked.
func Locked(p string) bool { return false }
