package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRelayPrintsBoundPort: `demes relay --listen 127.0.0.1:0` names on
// stderr the port the system chose, the one in the address it prints for
// members, not port 0.
func TestRelayPrintsBoundPort(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(demesBin, "relay", "--home", filepath.Join(t.TempDir(), "relay"), "--listen", "127.0.0.1:0", "--log-level", "warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	var addr string
	select {
	case addr = <-line:
	case <-time.After(60 * time.Second):
		t.Error("demes relay printed no address within 60 s")
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait() // stderr is whole once it returns
	m := regexp.MustCompile(`(?m)^demes: relay \S+ on 127\.0\.0\.1:(\d+)`).FindStringSubmatch(stderr.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("stderr does not name the port bound:\n%s", stderr.String())
	}
	if !strings.Contains(addr, "/ip4/127.0.0.1/tcp/"+m[1]+"/") {
		t.Errorf("stderr names port %s, the address printed is %q", m[1], addr)
	}
}
