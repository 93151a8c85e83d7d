package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestDeadServeSendsNoToken: a serve killed outright (kill -9, an
// out-of-memory kill, a power cut) leaves serve.json behind, naming its
// fixed port (127.0.0.1:7947 by default). Another user of the machine may
// listen there since. The CLI must not hand that listener the API token,
// which the next serve of the home takes up again (loadOrCreateToken): it
// would open the node to that user.
func TestDeadServeSendsNoToken(t *testing.T) {
	t.Parallel()
	const token = "the-home-token-0123456789abcdefghijklmn"
	var (
		mu   sync.Mutex
		seen []string
	)
	squatter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	}))
	defer squatter.Close()

	home := t.TempDir()
	wantExit(t, runDemes(t, nil, "keygen", "--home", home), 0)
	writeServeFiles(t, home, squatter.URL, token)
	// The dead serve's pid: a process that has exited.
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(serveInfo{UIURL: squatter.URL, PID: done.ProcessState.Pid()})
	if err := os.WriteFile(filepath.Join(home, serveInfoFile), info, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"status"}, {"groups"}, {"send", "hi"}} {
		r := runDemes(t, nil, append(args, "--home", home)...)
		if r.code != 1 || !strings.Contains(r.stderr, "no demes serve is running") {
			t.Errorf("demes %q with a dead serve: want exit 1, no serve running; got %v", args, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, token) {
			t.Fatalf("the CLI sent the home's API token to whatever listens on a dead serve's port: %q", s)
		}
	}
}
