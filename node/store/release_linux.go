package store

import (
	"fmt"
	"syscall"
)

// dropMapped drops the mapped pages of the size bytes at addr, the start of
// bbolt's mapping (a page boundary).
func dropMapped(addr, size uintptr) error {
	if size == 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("release the store's mapped pages: %w", errno)
	}
	return nil
}
