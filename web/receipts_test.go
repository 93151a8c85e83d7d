package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/demes/demes/api"
)

// TestReceiptsBadRequests: the receipts routes refuse a bad message id,
// an unknown message or group, and a body that is not exactly what they
// take, each with a clear error, and change nothing: neither the read mark
// nor the preference (a body that does not say read_receipts does not turn
// receipts off).
func TestReceiptsBadRequests(t *testing.T) {
	w, gid, u := friendsUI(t)
	alice := w.node("alice")
	m, err := alice.Send(t.Context(), gid, "read me", 0)
	if err != nil {
		t.Fatal(err)
	}
	read := func(group, id string) string { return "/api/v1/groups/" + group + "/messages/" + id + "/read" }
	mark := func() uint64 {
		idx, err := alice.MarkRead(t.Context(), gid, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	// Marking read through the message itself is what a good request does.
	if rec := serve(u, newReq(u, "POST", read(gid, m.ID), `{}`)); rec.Code != 200 {
		t.Fatalf("a good mark: %d %s", rec.Code, rec.Body.String())
	}
	want := mark()
	for _, tc := range []struct {
		name, path, body string
		code             int
	}{
		{"not a message id", read(gid, "nothex"), `{}`, 400},
		{"a short message id", read(gid, strings.Repeat("ab", 15)), `{}`, 400},
		{"an unknown message", read(gid, strings.Repeat("ab", 16)), `{}`, 404},
		{"an unknown group", read(strings.Repeat("cd", 16), m.ID), `{}`, 404},
		{"a field", read(gid, m.ID), `{"index":99}`, 400},
		{"no body", read(gid, m.ID), ``, 400},
		{"two values", read(gid, m.ID), `{}{}`, 400},
	} {
		rec := serve(u, newReq(u, "POST", tc.path, tc.body))
		if rec.Code != tc.code {
			t.Errorf("%s: status %d, want %d: %s", tc.name, rec.Code, tc.code, rec.Body.String())
			continue
		}
		decodeError(t, rec)
		if got := mark(); got != want {
			t.Errorf("%s: the mark moved to %d from %d", tc.name, got, want)
		}
	}

	put := func(body string) *http.Request {
		r := newReq(u, "PUT", "/api/v1/preferences", body)
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	for _, body := range []string{``, `{}`, `null`, `true`, `{"read_receipts":"no"}`, `{"read_receipts":null}`, `{"read_receipts":false,"colour":"red"}`, `{"read_receipts":false}{}`} {
		rec := serve(u, put(body))
		if rec.Code != 400 {
			t.Errorf("PUT preferences %s: status %d, want 400: %s", body, rec.Code, rec.Body.String())
			continue
		}
		decodeError(t, rec)
		if !alice.ReadReceipts() {
			t.Fatalf("PUT preferences %s turned read receipts off", body)
		}
	}
	rec := serve(u, put(`{"read_receipts":false}`))
	var p api.Preferences
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.ReadReceipts || alice.ReadReceipts() {
		t.Fatalf("turning receipts off: %d %s", rec.Code, rec.Body.String())
	}
}
