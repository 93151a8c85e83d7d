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
	}{
		{0, "", "abcde"},
		{2, "", "de"},
		{2, "d", "bc"},
		{2, "b", "a"},
		{2, "a", ""},
		{10, "", "abcde"},
		{0, "c", "ab"},
	}
	for _, tc := range tests {
		got, err := Page(msgs, tc.limit, tc.before)
		if err != nil || ids(got) != tc.want {
			t.Errorf("Page(limit %d, before %q) = %q, %v; want %q", tc.limit, tc.before, ids(got), err, tc.want)
		}
	}
	if _, err := Page(msgs, 2, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown id: %v", err)
	}
	if _, err := Page(msgs, -1, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("a negative limit: %v", err)
	}
	// A page is its own slice: appending to it leaves the list alone.
	p, _ := Page(msgs, 2, "d")
	_ = append(p, Message{ID: "z"})
	if msgs[3].ID != "d" {
		t.Error("appending to a page changed the list")
	}
}
