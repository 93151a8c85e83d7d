package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/demes/demes/internal/fsutil"
)

// relayLockFile is locked (flock) by the demes relay of a home while it
// runs: two relays of one home have one key, so both would answer for one
// libp2p peer id, and members' dials would reach either. (Without flock,
// not on Unix, two relays of one home both run.)
const relayLockFile = "relay.lock"

// lockRelayHome takes home's relay lock, held until the returned file is
// closed or the process ends however it does, or says that another relay
// holds it.
func lockRelayHome(home string) (io.Closer, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	f, err := fsutil.LockFile(filepath.Join(home, relayLockFile))
	switch {
	case errors.Is(err, fsutil.ErrLocked):
		return nil, failf("stop it first, or give this relay a home of its own: demes relay --home DIR",
			"a demes relay is already running for home %s: two would answer for one libp2p peer id", home)
	case err != nil:
		return nil, fmt.Errorf("lock the relay's home: %w", err)
	}
	// The pid, for whoever looks; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

// relayRunning reports whether a demes relay holds home's relay lock.
func relayRunning(home string) bool {
	return fsutil.Locked(filepath.Join(home, relayLockFile))
}
