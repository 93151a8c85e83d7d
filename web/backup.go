package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// StoreBackup is what the backup route needs from a node: a consistent copy
// of its store, written to w, with begin called with the copy's size before
// its first byte (node.Service satisfies it).
type StoreBackup interface {
	BackupStore(w io.Writer, begin func(size int64)) (int64, error)
}

// backupStore answers GET /api/v1/backup/store with a copy of the node's
// store, for `demes backup`. The token must come in the Authorization
// header: a token in the query is for EventSource and <img>, and a copy of
// the store has no business in an address that proxies and histories keep.
func (h *handler) backupStore(w http.ResponseWriter, r *http.Request) {
	if h.backup == nil {
		writeError(w, http.StatusNotFound, "this node does not serve backups", "")
		return
	}
	if r.Header.Get("Authorization") == "" {
		writeError(w, http.StatusUnauthorized, "a backup needs the token in the Authorization header",
			"send Authorization: Bearer TOKEN")
		return
	}
	started := false
	_, err := h.backup.BackupStore(w, func(size int64) {
		started = true
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
	})
	if err == nil {
		return
	}
	if !started {
		h.backendError(w, r, "copy the store", err)
		return
	}
	// The status is sent: all that is left is to cut the answer short,
	// which the client sees as a body shorter than its Content-Length.
	if !errors.Is(r.Context().Err(), context.Canceled) {
		h.log.Error().Err(err).Msg("backup: copying the store failed")
	}
	panic(http.ErrAbortHandler)
}
