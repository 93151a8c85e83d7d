package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// writeTimeout bounds each write to an event stream, so a browser that stops
// reading cannot hold the handler (and its subscription) forever.
const writeTimeout = 30 * time.Second

// events answers GET /api/v1/events with server-sent events: one "data:"
// line of api.Event JSON per event, and a comment line every h.ping so idle
// streams stay open. The stream ends when the client goes away, the server's
// base context ends, or the backend closes the subscription.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	events, cancel := h.backend.Subscribe()
	defer cancel()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// "retry" tells EventSource to reconnect after 2 s rather than its
	// default; the comment gives the browser its first bytes at once.
	// Without the flush the browser would wait for the first event before
	// it reports the stream open.
	if !h.write(rc, w, "retry: 2000\n: connected\n\n") {
		return
	}

	ping := time.NewTicker(h.ping)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			b, err := json.Marshal(ev)
			if err != nil {
				h.log.Error().Err(err).Msg("cannot encode UI event")
				continue
			}
			// JSON escapes newlines, so one data line always suffices.
			if !h.write(rc, w, "data: "+string(b)+"\n\n") {
				return
			}
		case <-ping.C:
			if !h.write(rc, w, ": ping\n\n") {
				return
			}
		}
	}
}

// write sends s and flushes it; false means the stream is broken.
func (h *handler) write(rc *http.ResponseController, w http.ResponseWriter, s string) bool {
	// Not every ResponseWriter supports deadlines (httptest's recorder does
	// not); the stream still works without one.
	if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return false
	}
	if _, err := w.Write([]byte(s)); err != nil {
		return false
	}
	if err := rc.Flush(); err != nil {
		h.log.Error().Err(err).Msg("event stream cannot flush")
		return false
	}
	return true
}
