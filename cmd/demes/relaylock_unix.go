//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// relayLockFile is locked (flock) by the demes relay of a home while it
// runs: two relays of one home have one key, so both would answer for one
// libp2p peer id, and members' dials would reach either.
const relayLockFile = "relay.lock"

// lockRelayHome takes home's relay lock, held until the returned file is
// closed or the process ends however it does, or says that another relay
// holds it.
func lockRelayHome(home string) (io.Closer, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(home, relayLockFile), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the relay's lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, failf("stop it first, or give this relay a home of its own: demes relay --home DIR",
				"a demes relay is already running for home %s: two would answer for one libp2p peer id", home)
		}
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
	f, err := os.OpenFile(filepath.Join(home, relayLockFile), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
