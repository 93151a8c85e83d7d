package fsutil

import "errors"

// ErrLocked is LockFile's error when another process holds the lock.
var ErrLocked = errors.New("another process holds the lock")
