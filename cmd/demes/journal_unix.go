//go:build unix

package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// toJournal reports whether w is the systemd journal: systemd sets
// JOURNAL_STREAM to the device and inode of the stream it connects a
// service's output to (systemd.exec(5)). Whoever may read logs (the adm
// and systemd-journal groups) reads the journal, so serve keeps its token
// out of it.
func toJournal(w io.Writer) bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	f, isFile := w.(*os.File)
	if !ok || !isFile {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return strconv.FormatUint(uint64(st.Dev), 10) == dev && strconv.FormatUint(uint64(st.Ino), 10) == ino
}
