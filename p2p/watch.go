package p2p

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// watchAfter is how long a handler may answer a frame before serve watches
// the stream for the peer going away (a reset, or its end of the stream
// closed), and cancels the handler's context when it does: a member that
// waits for a join to commit stops waiting when the joiner gave up, as it
// does over HTTP. Nearly every frame is answered sooner and costs no watch.
const watchAfter = time.Second

// frameReader is the body of one frame on a stream; it notes when the
// frame has been read to its end, after which reading the stream is no
// longer the handler's business.
type frameReader struct {
	io.LimitedReader
	read atomic.Bool
}

func newFrameReader(s io.Reader, size int64) *frameReader {
	r := &frameReader{LimitedReader: io.LimitedReader{R: s, N: size}}
	r.read.Store(size <= 0)
	return r
}

func (r *frameReader) Read(p []byte) (int, error) {
	n, err := r.LimitedReader.Read(p)
	if r.N <= 0 {
		r.read.Store(true)
	}
	return n, err
}

// peerWatch cancels the context of a handler that runs longer than
// watchAfter once the peer goes away. A peer sends its next frame only
// after the answer (see Post), so a read on the stream while the handler
// runs ends only when the peer resets or closes the stream, or when stop
// ends it.
type peerWatch struct {
	s      network.Stream
	body   *frameReader
	cancel context.CancelFunc
	timer  *time.Timer

	mu      sync.Mutex
	stopped bool
	ended   chan struct{} // closed when the watching read returned; nil until it starts
	gone    bool          // the peer went away, or sent out of turn: the stream is done
}

// watchPeer returns the context for the handler of a frame read from s
// through body, and the watch that cancels it.
func watchPeer(s network.Stream, body *frameReader) (context.Context, *peerWatch) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &peerWatch{s: s, body: body, cancel: cancel}
	// Under w.mu, which start takes before it reads w.timer: the timer
	// may fire before AfterFunc's answer is stored.
	w.mu.Lock()
	w.timer = time.AfterFunc(watchAfter, w.start)
	w.mu.Unlock()
	return ctx, w
}

func (w *peerWatch) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if !w.body.read.Load() {
		// The handler still reads the frame (the stream's read deadline
		// bounds that): look again later.
		w.timer.Reset(watchAfter)
		return
	}
	w.ended = make(chan struct{})
	go func() {
		defer close(w.ended)
		var b [1]byte
		_, err := w.s.Read(b[:])
		w.mu.Lock()
		defer w.mu.Unlock()
		var ne net.Error
		if w.stopped && errors.As(err, &ne) && ne.Timeout() {
			return // ended by stop: the peer waits for the answer
		}
		w.gone = true
		w.cancel()
	}()
}

// stop ends the watch once the handler has returned, and reports whether
// the peer went away meanwhile (or sent out of turn): then the stream is
// of no more use.
func (w *peerWatch) stop() (gone bool) {
	w.timer.Stop()
	w.mu.Lock()
	w.stopped = true
	ended := w.ended
	w.mu.Unlock()
	if ended != nil {
		w.s.SetReadDeadline(time.Now())
		<-ended
	}
	w.cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone
}
