package testutil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records a failure instead of ending the test.
type fakeTB struct{ failed string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	var n atomic.Int32
	Eventually(t, 10*time.Second, "the third check", func() bool { return n.Add(1) == 3 })

	f := &fakeTB{}
	Eventually(f, 30*time.Millisecond, "something that never holds", func() bool { return false })
	if !strings.Contains(f.failed, "something that never holds") {
		t.Fatalf("failure does not say what it waited for: %q", f.failed)
	}
}

func TestWaitWakes(t *testing.T) {
	// With a poll interval far beyond the test's deadline, only the wake
	// channel can make the condition pass.
	wake := make(chan struct{}, 1)
	var ready atomic.Bool
	go func() {
		ready.Store(true)
		wake <- struct{}{}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Wait(ctx, wake, time.Hour, "the wake", ready.Load); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := Poll(ctx, time.Millisecond, "never", func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll after cancel: %v", err)
	}
}

func TestLockedBuffer(t *testing.T) {
	var b LockedBuffer
	b.Write([]byte("first "))
	off := b.Len()
	b.Write([]byte("second"))
	if got := b.Since(off); got != "second" {
		t.Fatalf("Since: %q", got)
	}
	if got := b.String(); got != "first second" {
		t.Fatalf("String: %q", got)
	}
}
