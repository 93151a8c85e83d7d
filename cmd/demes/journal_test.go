//go:build unix

package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demes/demes/internal/testutil"
)

// TestServeKeepsTokenOutOfTheJournal: under systemd (deploy/systemd) the
// output of serve goes to the journal, which users who may read logs (the
// adm and systemd-journal groups) read, though they may not read the
// node's home. The UI address it prints there must not carry the token:
// with it, any of them could read and send as the node's person over the
// loopback API. systemd says that the output is the journal with
// JOURNAL_STREAM, the device and inode of the stream.
func TestServeKeepsTokenOutOfTheJournal(t *testing.T) {
	p := newServeProc(t, "alice")
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	p.start()

	token, err := os.ReadFile(p.home + "/token")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(token))
	var log string
	testutil.Eventually(t, 30*time.Second, "serve to print its UI address", func() bool {
		log = p.logFrom(0)
		return strings.Contains(log, "http://"+p.ui)
	})
	if strings.Contains(log, tok) {
		t.Fatalf("serve wrote the API token to the journal:\n%s", log)
	}
	// demes ui, run by the person, still prints it.
	if r := p.demes("ui"); r.code != 0 || !strings.Contains(r.stdout, "#token="+tok) {
		t.Fatalf("demes ui does not print the address with its token: %v", r)
	}
}
