package api

import (
	"errors"
	"strings"
	"testing"
)

func TestPage(t *testing.T) {
	var msgs []Message
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		msgs = append(msgs, Message{ID: id})
	}
	ids := func(ms []Message) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.ID)
		}
		return strings.Join(s, "")
	}
	tests := []struct {
		limit  int
		before string
		want   string
		more   bool
	}{
		{0, "", "abcde", false},
		{2, "", "de", true},
		{2, "d", "bc", true},
		{2, "c", "ab", false},
		{2, "b", "a", false},
		{2, "a", "", false},
		{10, "", "abcde", false},
		{5, "", "abcde", false},
		{4, "", "bcde", true},
		{0, "c", "ab", false},
	}
	for _, tc := range tests {
		got, err := Page(msgs, tc.limit, tc.before)
		if err != nil || ids(got.Messages) != tc.want || got.More != tc.more {
			t.Errorf("Page(limit %d, before %q) = %q more %v, %v; want %q more %v",
				tc.limit, tc.before, ids(got.Messages), got.More, err, tc.want, tc.more)
		}
	}
	if _, err := Page(msgs, 2, "x"); !errors.Is(err, ErrUnknownMessage) || !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown id: %v", err)
	}
	if _, err := Page(msgs, -1, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("a negative limit: %v", err)
	}
	if _, err := Page(msgs, MaxPage+1, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("a limit over MaxPage: %v", err)
	}
	// A page is its own slice: appending to it leaves the list alone.
	p, _ := Page(msgs, 2, "d")
	_ = append(p.Messages, Message{ID: "z"})
	if msgs[3].ID != "d" {
		t.Error("appending to a page changed the list")
	}
}
