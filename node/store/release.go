package store

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Mapped pages. bbolt reads the database through a shared read-only
// mapping of the whole file, and every page a transaction reads stays
// mapped into the node's process, and counted in its resident memory, until
// the kernel needs the memory back. A node reads the pages it has just
// written (the end of each group's log, at every append) and those of the
// history it serves, so without a release its resident memory grows with
// the history even though those pages are the kernel's page cache, clean
// and shared: 207 to 218 MiB of a node that had committed 1,000,000
// messages (docs/BENCHMARKS.md, "History"). The store drops its mappings of
// the pages every releaseEvery; the pages stay in the page cache, and the
// next read maps them again from there, without reading the disk.

// releaseEvery is how often the store drops the pages mapped into the
// process: at a catch-up of 30,000 messages a second, a node reads back
// about 20 MiB of new pages a second.
const releaseEvery = time.Second

// releaser runs [Store.ReleaseMapped] every releaseEvery until stopped.
type releaser struct {
	stop chan struct{}
	once sync.Once
	done sync.WaitGroup
}

// startReleaser starts dropping the mapped pages of db every releaseEvery.
func startReleaser(s *Store) *releaser {
	r := &releaser{stop: make(chan struct{})}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		t := time.NewTicker(releaseEvery)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				// An error here changes nothing: the pages stay mapped
				// until the next tick, as they would without the release.
				_ = s.ReleaseMapped()
			}
		}
	}()
	return r
}

// halt stops the releaser and waits for it, so that no release runs while
// the database closes. It may be called more than once.
func (r *releaser) halt() {
	if r == nil {
		return
	}
	r.once.Do(func() { close(r.stop) })
	r.done.Wait()
}

// ReleaseMapped drops this process's mappings of the database's pages
// (madvise MADV_DONTNEED, Linux): its resident memory no longer counts
// them, and they stay in the kernel's page cache. Nothing is lost: the
// mapping is read-only and shared, so a page read again is mapped again
// from the file. It runs inside a read transaction, which holds bbolt's
// mapping in place (a remap waits for every read transaction to end).
func (s *Store) ReleaseMapped() error {
	return s.db.View(func(tx *bolt.Tx) error {
		return dropMapped(s.db.Info().Data, uintptr(tx.Size()))
	})
}
