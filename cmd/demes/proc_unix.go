package main

import (
	"errors"
	"os"
	"syscall"
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
