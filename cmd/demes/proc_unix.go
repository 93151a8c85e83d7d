package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/demes/demes/node/store"
)

// processAlive reports whether a process with that pid exists, to tell a
// running serve from a serve.json left behind by a killed one.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// runningServe returns the pid of the demes serve running for home, and
// whether one is: its serve.json names a live process other than this one,
// and the home's store is locked (bbolt locks it while a node has it open).
// The pid alone is not enough: a serve killed without its cleanup (kill -9,
// an out-of-memory kill, a power cut) leaves its serve.json, and its pid may
// be another process's since, or this one's: a container's serve is always
// pid 1, so every restart after a crash found "itself" running.
func runningServe(home string) (int, bool) {
	info, err := readServeInfo(home)
	if err != nil || info.PID == os.Getpid() || !processAlive(info.PID) {
		return 0, false
	}
	return info.PID, store.InUse(filepath.Join(home, storeFile))
}
