//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/internal/testutil"
)

// TestUIOpenKeepsTokenOffCommandLines: demes ui --open hands the address
// to xdg-open, which hands it to the browser. A process's arguments are
// readable by every user of the machine (/proc/PID/cmdline, ps), and a
// browser that was not running keeps them for as long as it runs: the
// token in them opens the node's API to any other user.
//
// Not fixed: the address must reach the browser without the token in an
// argument, e.g. as a private (0600) page that forwards to it, which
// confined browsers (snap, flatpak) cannot always read. Until then,
// open the address that demes ui prints by hand on a shared machine.
func TestUIOpenKeepsTokenOffCommandLines(t *testing.T) {
	t.Skip("hole: demes ui --open puts the API token in xdg-open's and the browser's arguments, readable by every local user; see the comment")
	t.Parallel()
	f := newFakeAPI(t)
	bin := t.TempDir()
	got := filepath.Join(t.TempDir(), "args")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + got + ".tmp && mv " + got + ".tmp " + got + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runDemes(t, []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}, "ui", "--open", "--home", f.home)
	wantExit(t, r, 0)
	var args []byte
	testutil.Eventually(t, 10*time.Second, "xdg-open to run", func() bool {
		var err error
		args, err = os.ReadFile(got)
		return err == nil
	})
	if strings.Contains(string(args), f.token) {
		t.Fatalf("demes ui --open put the API token in a command line: %q", args)
	}
}
