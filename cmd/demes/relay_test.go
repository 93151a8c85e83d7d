package main

import (
	"bufio"
	"bytes"
	"net"
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

// TestRelayPortInUse: a relay whose port another program holds (TCP and
// UDP, so that neither of its listeners starts; or TCP alone, where libp2p
// would start on QUIC alone and say nothing) exits 1 and says so in words,
// with the flag to change, and not libp2p's list of bind errors nor its
// dependency injection's log line.
func TestRelayPortInUse(t *testing.T) {
	t.Parallel()
	for _, udpToo := range []bool{true, false} {
		var addr string
		for try := 0; addr == "" && try < 20; try++ {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			pc, err := net.ListenPacket("udp", ln.Addr().String())
			if err != nil {
				continue // that UDP port is taken: another
			}
			if udpToo {
				defer pc.Close()
			} else {
				pc.Close()
			}
			addr = ln.Addr().String()
		}
		if addr == "" {
			t.Fatal("no port free for both TCP and UDP")
		}
		r := runDemes(t, nil, "relay", "--home", filepath.Join(t.TempDir(), "relay"), "--listen", addr, "--log-level", "warn")
		wantExit(t, r, exitFailure)
		wantStderr(t, r,
			"demes: error: the relay cannot listen on "+addr+": the port is in use by another program\n",
			"demes: hint: choose another port with --listen, or stop the program that uses this one\n")
		for _, s := range []string{"failed to listen", "bind:", "start failed"} {
			if strings.Contains(r.stderr, s) {
				t.Errorf("stderr has %q:\n%s", s, r.stderr)
			}
		}
	}
}
