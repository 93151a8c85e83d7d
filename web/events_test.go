package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/internal/testutil"
)

// openEvents opens the event stream of u on its real listener.
func openEvents(t *testing.T, ctx context.Context, u *testUI) *bufio.Reader {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, "GET", u.URL+"/api/v1/events?token="+u.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Do returns when the headers arrive: this fails by the deadline if
	// the handler does not flush them before the first event.
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("event stream: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("event stream Cache-Control = %q", cc)
	}
	return bufio.NewReader(resp.Body)
}

// nextLine returns the next line starting with prefix, skipping others.
func nextLine(t *testing.T, rd *bufio.Reader, prefix string) string {
	t.Helper()
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream for %q: %v", prefix, err)
		}
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSuffix(line, "\n")
		}
	}
}

func TestEvents(t *testing.T) {
	w, gid, u := friendsUI(t)
	bobUI := startUI(t, w.node("bob"), nil)
	// No ping to flush the headers for us: the stream must open by itself.
	bobUI.h.ping = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rd := openEvents(t, ctx, bobUI)

	// Alice sends through her API; Bob's stream carries it.
	rec := serve(u, newReq(u, "POST", "/api/v1/groups/"+gid+"/messages", `{"text":"over the wire"}`))
	if rec.Code != 200 {
		t.Fatalf("send: %d %s", rec.Code, rec.Body.String())
	}
	for {
		line := nextLine(t, rd, "data: ")
		var ev api.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if ev.Kind != "message" {
			continue
		}
		if ev.GroupID != gid || ev.Message == nil || ev.Message.Text != "over the wire" || ev.Message.State != api.StateCommitted {
			t.Fatalf("event = %+v", ev)
		}
		break
	}
}

func TestEventsPingAndEnd(t *testing.T) {
	w, _, u := friendsUI(t)
	u.h.ping = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rd := openEvents(t, ctx, u)
	nextLine(t, rd, ": ping")

	// When the backend ends the subscription (the node stopped), the
	// stream ends too.
	w.node("alice").StopNode()
	for {
		if _, err := rd.ReadString('\n'); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("want the stream to end cleanly, got %v", err)
		}
	}
}

// TestEventsUnsubscribe checks that a browser going away ends the
// subscription, so closed tabs do not pile up in the node.
func TestEventsUnsubscribe(t *testing.T) {
	w, _, u := friendsUI(t)
	alice := w.node("alice")
	subs := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(alice.subs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	streamCtx, hangUp := context.WithCancel(ctx)
	openEvents(t, streamCtx, u)
	if n := subs(); n != 1 {
		t.Fatalf("%d subscriptions with one stream open, want 1", n)
	}
	hangUp()
	waitUntil(t, ctx, "the subscription to end", func() bool { return subs() == 0 })
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if err := testutil.Poll(ctx, testutil.PollEvery, what, cond); err != nil {
		t.Fatal(err)
	}
}
