package keystore

import (
	"os"
	"syscall"
)

// syncData makes the data written to f durable. fdatasync skips the
// metadata a read does not need (the times), but not the file's size.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
