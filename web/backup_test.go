package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/demes/demes/api"
)

// fakeBackup copies data, or fails before the copy (errBefore) or after
// half of it (errDuring).
type fakeBackup struct {
	data                 string
	errBefore, errDuring error
}

func (f fakeBackup) BackupStore(w io.Writer, begin func(int64)) (int64, error) {
	if f.errBefore != nil {
		return 0, f.errBefore
	}
	begin(int64(len(f.data)))
	if f.errDuring != nil {
		n, _ := io.WriteString(w, f.data[:len(f.data)/2])
		return int64(n), f.errDuring
	}
	n, err := io.WriteString(w, f.data)
	return int64(n), err
}

// getBackup GETs the backup route over HTTP, as demes backup does (an
// aborted answer shows only on a real connection).
func getBackup(t *testing.T, u *testUI, auth string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u.URL+api.RouteBackupStore+"?token="+u.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestBackupStore(t *testing.T) {
	w, _ := newFriends(t)
	u := startUI(t, w.node("alice"), nil)
	bearer := "Bearer " + u.Token
	store := strings.Repeat("bbolt pages ", 10_000)

	// Without a Backup in the Config, there is no backup.
	resp, body, err := getBackup(t, u, bearer)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no Backup: %s %q %v, want 404", resp.Status, body, err)
	}

	u.h.backup = fakeBackup{data: store}
	// The token in the query parameter, which GET routes accept, is not
	// enough for a copy of the store.
	resp, body, err = getBackup(t, u, "")
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Authorization header") {
		t.Fatalf("query token: %s %q %v, want 401 naming the header", resp.Status, body, err)
	}
	resp, body, err = getBackup(t, u, bearer)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != store {
		t.Fatalf("backup: %s, %d bytes, %v; want 200 with the store", resp.Status, len(body), err)
	}
	if resp.ContentLength != int64(len(store)) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("Content-Length %d, Content-Type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
	}

	// A stopped node: 503 with the API's error body.
	u.h.backup = fakeBackup{errBefore: fmt.Errorf("backup: %w", api.ErrStopped)}
	resp, body, err = getBackup(t, u, bearer)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("stopped: %s %q %v, want 503", resp.Status, body, err)
	}

	// A failure halfway, after the status went out: the answer is cut
	// short, so the client sees less than Content-Length and an error,
	// never a short copy that looks whole.
	u.h.backup = fakeBackup{data: store, errDuring: errors.New("disk on fire")}
	resp, body, err = getBackup(t, u, bearer)
	if err == nil || len(body) >= len(store) {
		t.Fatalf("failure halfway: %s, %d of %d bytes, err %v; want a cut answer and an error", resp.Status, len(body), len(store), err)
	}
	if !strings.Contains(u.logs.String(), "disk on fire") {
		t.Errorf("the failure is not logged: %s", u.logs.String())
	}
}
