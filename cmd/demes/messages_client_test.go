package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/demes/demes/api"
)

func TestMessages(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	msgs := []api.Message{
		{ID: "m1", Index: 1, Author: alice.String(), Name: "Alice", Text: "hi", SentAt: at, State: api.StateCommitted},
		{ID: "m2", Index: 2, Author: bob.String(), Text: "two\nlines \x1b[31mred", SentAt: at, State: api.StateCommitted},
		{ID: "m3", Author: alice.String(), Name: "Alice", Text: "later", SentAt: at, State: api.StateTentative},
	}
	f.locked(func() { f.messages[alpha.GroupID] = msgs })
	r := runDemes(t, []string{"TZ=UTC"}, "messages", "--home", f.home)
	wantExit(t, r, 0)
	want := "[1] 2026-03-01 12:30:00 Alice: hi\n" +
		"[2] 2026-03-01 12:30:00 " + bob.Fingerprint() + ": two\n    lines \uFFFD[31mred\n" +
		"[tentative] 2026-03-01 12:30:00 Alice: later\n"
	if runtime.GOOS != "windows" && r.stdout != want {
		t.Errorf("messages:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = runDemes(t, nil, "messages", "--json", "--home", f.home)
	wantExit(t, r, 0)
	var ms []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil || len(ms) != 3 {
		t.Fatalf("messages --json: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"id", "index", "author", "text", "sent_at"} {
		if _, ok := ms[0][k]; !ok {
			t.Errorf("messages --json lacks %q: %v", k, ms[0])
		}
	}
	if ms[1]["author"] != bob.String() || ms[0]["sent_at"] != at.Format(time.RFC3339) {
		t.Errorf("messages --json: %v", ms)
	}
}

// TestMessagesPages: without --limit, messages prints the whole history,
// read a page at a time from the newest back (so no answer of the node grows
// with the history), in group order and without a gap or a repeat at a
// page's edge; --limit N --before ID prints one page.
func TestMessagesPages(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	const total = api.MaxPage + 2
	msgs := make([]api.Message, total)
	for i := range msgs {
		msgs[i] = api.Message{ID: fmt.Sprintf("%032x", i), Index: uint64(i + 1), Author: alice.String(), Text: strconv.Itoa(i), State: api.StateCommitted}
	}
	f.locked(func() { f.messages[alpha.GroupID] = msgs })
	r := runDemes(t, nil, "messages", "--json", "--home", f.home)
	wantExit(t, r, 0)
	var ms []api.Message
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil || len(ms) != total {
		t.Fatalf("messages --json: %d messages, %v", len(ms), err)
	}
	for i, m := range ms {
		if m.ID != msgs[i].ID {
			t.Fatalf("message %d is %s, want %s", i, m.ID, msgs[i].ID)
		}
	}
	f.locked(func() {
		if f.pages != 2 {
			t.Errorf("%d page queries for %d messages, want 2", f.pages, total)
		}
	})
	r = runDemes(t, nil, "messages", "--json", "--limit", "2", "--before", msgs[5].ID, "--home", f.home)
	wantExit(t, r, 0)
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil || len(ms) != 2 || ms[0].ID != msgs[3].ID || ms[1].ID != msgs[4].ID {
		t.Errorf("--limit 2 --before the sixth: %v %v", ms, err)
	}
}
