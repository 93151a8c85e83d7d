package p2p

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Attack: a peer takes a frame's first bytes and never reads the rest (nor
// answers). The sender's frame to it fills the stream's window and blocks;
// its frames to everyone else go on meanwhile, and the stalled post ends at
// its own deadline.
func TestStalledReaderBlocksOnlyItsOwnPost(t *testing.T) {
	a, b := newHost(t, newSeed(t), Config{}), newHost(t, newSeed(t), Config{})
	stalled := newHost(t, newSeed(t), Config{})
	entered, release := make(chan struct{}, 1), make(chan struct{})
	t.Cleanup(func() { close(release) })
	stalled.SetHandler(func(_ context.Context, _ string, _ int64, body io.Reader) (int, []byte) {
		body.Read(make([]byte, 1))
		entered <- struct{}{}
		<-release
		return 200, nil
	})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := a.Post(ctx, stalled.URL(), []byte(strings.Repeat("x", testMaxFrame)))
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled peer never got the frame")
	}
	for i := 0; i < 3; i++ {
		if got, err := post(t, a, b.URL(), "meanwhile"); err != nil || string(got) != "echo:meanwhile" {
			t.Fatalf("a post to another peer while one stalls: %q, %v", got, err)
		}
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the post to the stalled peer succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the post to the stalled peer outlived its deadline by 28 s")
	}
}
