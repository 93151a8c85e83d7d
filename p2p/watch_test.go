package p2p

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// A handler that waits on purpose (a member waiting for a join to commit)
// learns that the peer gave up: its context ends, as over HTTP. One that
// answers after watchAfter still gets its answer through, and the stream
// serves the next frame.
func TestHandlerContextEndsWhenThePeerGoesAway(t *testing.T) {
	a, b := newHost(t, newSeed(t), Config{}), newHost(t, newSeed(t), Config{})
	entered, ended := make(chan struct{}, 1), make(chan error, 1)
	b.SetHandler(func(ctx context.Context, _ string, _ int64, body io.Reader) (int, []byte) {
		frame, err := io.ReadAll(body)
		if err != nil {
			return 400, nil
		}
		switch string(frame) {
		case "wait":
			entered <- struct{}{}
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
			case <-time.After(30 * time.Second):
				ended <- nil
			}
			return 503, []byte("gave up")
		case "slow":
			select {
			case <-ctx.Done():
				return 500, []byte("cancelled although the peer waits")
			case <-time.After(watchAfter + 500*time.Millisecond):
			}
		}
		return 200, append([]byte("echo:"), frame...)
	})
	idle := func() network.Stream {
		a.mu.Lock()
		defer a.mu.Unlock()
		if q := a.idle[b.ID()]; len(q) == 1 {
			return q[0]
		}
		return nil
	}
	if got, err := post(t, a, b.URL(), "slow"); err != nil || string(got) != "echo:slow" {
		t.Fatalf("a slow answer: %q, %v", got, err)
	}
	kept := idle()
	if kept == nil {
		t.Fatal("no stream kept after the slow answer")
	}
	for i := 0; i < 3; i++ {
		if got, err := post(t, a, b.URL(), "after"); err != nil || string(got) != "echo:after" {
			t.Fatalf("post %d after a slow answer: %q, %v", i, got, err)
		}
		// The same stream served it: the watch left it as it was.
		if s := idle(); s != kept {
			t.Fatalf("post %d after a slow answer went over another stream: the watch broke the first", i)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.Post(ctx, b.URL(), []byte("wait"))
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler never got the frame")
	}
	// Past watchAfter, so that the watch has started.
	time.AfterFunc(watchAfter+200*time.Millisecond, cancel)
	if err := <-done; err == nil {
		t.Fatal("the cancelled post succeeded")
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the handler waited out its 30 s: its context did not end when the peer went away")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler never returned")
	}
	if got, err := post(t, a, b.URL(), "again"); err != nil || string(got) != "echo:again" {
		t.Fatalf("after the peer went away once: %q, %v", got, err)
	}
}
