//go:build !unix

package main

import "io"

// toJournal: only systemd has a journal (journal_unix.go).
func toJournal(io.Writer) bool { return false }
