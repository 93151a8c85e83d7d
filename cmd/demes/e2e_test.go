package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/internal/testutil"
)

// serveProc is one `demes serve` process of an end-to-end test, with fixed
// ports so that a restarted node keeps its address.
type serveProc struct {
	t          *testing.T
	name, home string
	listen, ui string
	cmd        *exec.Cmd
	exited     chan struct{} // closed once cmd has exited, after waitErr is set
	waitErr    error
	started    bool // it served once: its addresses are the group's now
	logPath    string
	extra      []string // more flags of demes serve
}

// handedOut are the addresses freeAddr gave, so that it never gives one
// twice: the kernel may hand a port it just freed to the next listener, and
// two processes of one test would then race for it ("address already in
// use", seen in CI).
var handedOut = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// freeAddr returns a loopback address with a port that was free a moment
// ago and that no other caller in this test binary got.
func freeAddr(t *testing.T) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut.m[addr] {
			handedOut.m[addr] = true
			return addr
		}
	}
}

func newServeProc(t *testing.T, name string) *serveProc {
	p := &serveProc{t: t, name: name, home: filepath.Join(t.TempDir(), name), listen: freeAddr(t), ui: freeAddr(t)}
	p.logPath = filepath.Join(t.TempDir(), name+".log")
	wantExit(t, runDemes(t, nil, "keygen", "--home", p.home, "--name", name), 0)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			if b, err := os.ReadFile(p.logPath); err == nil {
				t.Logf("log of %s:\n%s", name, b)
			}
		}
	})
	return p
}

// start starts the process and waits until it serves. freeAddr's ports
// were free a moment ago, but another package's test process, or an
// outgoing connection's ephemeral port, can take one before demes serve
// binds it (seen in CI). On a first start, which nothing knows the
// addresses of yet, such a failure picks new ones and starts again; a
// restart keeps its addresses, which the group knows.
func (p *serveProc) start() {
	p.t.Helper()
	for try := 1; ; try++ {
		logged := p.logSize()
		if p.startOnce() {
			p.started = true
			return
		}
		log := p.logFrom(logged)
		// listenFailed words EADDRINUSE so (Go's own words before it).
		taken := strings.Contains(log, "in use by another program") || strings.Contains(log, "address already in use")
		if p.started || try == 5 || !taken {
			p.t.Fatalf("%s: demes serve exited (%v) before it served; its log:\n%s", p.name, p.waitErr, log)
		}
		p.t.Logf("%s: a port was taken (%s, %s); starting on others", p.name, p.listen, p.ui)
		p.listen, p.ui = freeAddr(p.t), freeAddr(p.t)
	}
}

// startOnce starts the process and reports whether it serves, or false once
// it exited first.
func (p *serveProc) startOnce() bool {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(demesBin, append([]string{"serve", "--home", p.home, "--listen", p.listen, "--ui", p.ui, "--log-level", "warn"}, p.extra...)...)
	cmd.Env = append(os.Environ(), "HOME="+p.home)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	log.Close()
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		p.waitErr = cmd.Wait()
		close(exited)
	}(p.exited)
	serves := false
	testutil.Eventually(p.t, 60*time.Second, p.name+" to serve", func() bool {
		select {
		case <-p.exited:
			return true
		default:
		}
		serves = runDemes(p.t, nil, "status", "--home", p.home).code == 0
		return serves
	})
	if !serves {
		p.cmd = nil
	}
	return serves
}

// wait waits for the process to exit (after a signal) and returns how it
// ended, as exec.Cmd.Wait.
func (p *serveProc) wait() error {
	<-p.exited
	p.cmd = nil
	return p.waitErr
}

func (p *serveProc) logSize() int64 {
	if fi, err := os.Stat(p.logPath); err == nil {
		return fi.Size()
	}
	return 0
}

// logFrom returns the process's log from byte off on.
func (p *serveProc) logFrom(off int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < off {
		return fmt.Sprintf("(the log could not be read: %v)", err)
	}
	return string(b[off:])
}

// kill is kill -9: no shutdown, no flush beyond what the node already synced.
func (p *serveProc) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	p.wait()
}

func (p *serveProc) demes(args ...string) result {
	return runDemes(p.t, nil, append(args, "--home", p.home)...)
}

func (p *serveProc) status() api.Status {
	p.t.Helper()
	r := p.demes("status", "--json")
	wantExit(p.t, r, 0)
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		p.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

func (p *serveProc) messages() []api.Message {
	p.t.Helper()
	r := p.demes("messages", "--json")
	if r.code != 0 {
		return nil
	}
	var ms []api.Message
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil {
		p.t.Fatalf("messages --json: %v\n%s", err, r.stdout)
	}
	return ms
}

// waitVoters waits until every process's node is in one group with n voters.
func waitVoters(t *testing.T, procs []*serveProc, n int) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, fmt.Sprintf("%d voters on every node", n), func() bool {
		for _, p := range procs {
			st := p.status()
			if len(st.Groups) != 1 {
				return false
			}
			voters := 0
			for _, m := range st.Groups[0].Members {
				if m.Voter {
					voters++
				}
			}
			if voters != n {
				return false
			}
		}
		return true
	})
}

// formProcGroup creates the group name on procs[0] and has each other
// process join it through the command line (id, invite, join), and returns
// the group id.
func formProcGroup(t *testing.T, procs []*serveProc, name string) string {
	t.Helper()
	r := procs[0].demes("group", "create", name)
	wantExit(t, r, 0)
	gid := r.lastLine()
	for _, p := range procs[1:] {
		id := p.demes("id")
		wantExit(t, id, 0)
		code := procs[0].demes("invite", id.lastLine())
		wantExit(t, code, 0)
		j := p.demes("join", code.lastLine())
		wantExit(t, j, 0)
		if j.lastLine() != gid {
			t.Fatalf("join printed %q, want the group id %s", j.lastLine(), gid)
		}
	}
	return gid
}

// sameMessages is the condition that every process in ps lists the same n
// messages; it leaves their list (msgTexts) in *ref.
func sameMessages(ps []*serveProc, n int, ref *string) bool {
	*ref = ""
	for i, p := range ps {
		got := msgTexts(p.messages())
		if i == 0 {
			*ref = got
		} else if got != *ref {
			return false
		}
	}
	return strings.Count(*ref, "|") == n
}

// wantEachOnce fails unless each text is in the msgTexts list ref exactly
// once.
func wantEachOnce(t *testing.T, ref string, texts ...string) {
	t.Helper()
	for _, want := range texts {
		if strings.Count(ref, ":"+want+"|") != 1 {
			t.Fatalf("%q not exactly once in %s", want, ref)
		}
	}
}

// waitHostProc waits until procs[0] names a host among procs, and returns
// its index.
func waitHostProc(t *testing.T, procs []*serveProc) int {
	t.Helper()
	host := -1
	testutil.Eventually(t, 30*time.Second, "a host", func() bool {
		st := procs[0].status()
		for i, p := range procs {
			if st.Groups[0].Host != "" && st.Groups[0].Host == p.status().PublicID {
				host = i
			}
		}
		return host >= 0
	})
	return host
}

func msgTexts(ms []api.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d:%s|", m.Index, m.Text)
	}
	return b.String()
}

// TestRealProcessesSurviveHostKill runs three real `demes serve` processes on
// loopback, forms a group through the CLI, kills the host with SIGKILL, and
// checks that the group goes on and every node lists the same messages.
func TestRealProcessesSurviveHostKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	procs := []*serveProc{newServeProc(t, "alice"), newServeProc(t, "bob"), newServeProc(t, "carol")}
	for _, p := range procs {
		p.start()
	}
	formProcGroup(t, procs, "e2e")
	waitVoters(t, procs, 3)
	for _, p := range procs {
		wantExit(t, p.demes("send", "hello from "+p.name), 0)
	}
	host := waitHostProc(t, procs)
	procs[host].kill()
	survivor := procs[(host+1)%3]
	wantExit(t, survivor.demes("send", "after the host died", "--timeout", "30s"), 0)

	var ref string
	same := func(ps []*serveProc, n int) func() bool {
		return func() bool { return sameMessages(ps, n, &ref) }
	}
	var live []*serveProc
	for i, p := range procs {
		if i != host {
			live = append(live, p)
		}
	}
	testutil.Eventually(t, 30*time.Second, "the same 4 messages on the live nodes", same(live, 4))
	// The killed host restarts from its store and catches up.
	procs[host].start()
	testutil.Eventually(t, 60*time.Second, "the same 4 messages on every node", same(procs, 4))
	wantEachOnce(t, ref, "hello from alice", "hello from bob", "hello from carol", "after the host died")
	// SIGTERM shuts a node down cleanly: exit 0, serve.json removed.
	p := procs[0]
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.home, serveInfoFile)); !os.IsNotExist(err) {
		t.Fatalf("serve.json left behind after a clean shutdown: %v", err)
	}
	wantExit(t, p.demes("status"), 1)
}

// TestServeStartsAfterACrashWhosePIDLives: a serve killed outright leaves
// its serve.json, and the pid in it may be another live process's by the
// next start (in a container, the serve is always pid 1): the new serve
// must start, not take that process for itself.
func TestServeStartsAfterACrashWhosePIDLives(t *testing.T) {
	t.Parallel()
	p := newServeProc(t, "alice")
	p.start()
	p.kill()
	path := filepath.Join(p.home, serveInfoFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("a killed serve left no %s: %v", serveInfoFile, err)
	}
	var info map[string]any
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	info["pid"] = os.Getpid() // alive, and no serve
	if b, err = json.Marshal(info); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	id := p.demes("id")
	wantExit(t, id, 0)
	if got := p.status().PublicID; got != id.lastLine() {
		t.Fatalf("status names %s, want %s", got, id.lastLine())
	}
}

// TestServeProcStartsAgainOnOtherPorts: the harness's first start picks
// other ports when one it chose was taken meanwhile (another test process,
// an outgoing connection's ephemeral port). It once looked for Go's words
// for it, which serve no longer prints, and so failed the test instead.
func TestServeProcStartsAgainOnOtherPorts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	t.Parallel()
	p := newServeProc(t, "alice")
	taken, err := net.Listen("tcp", p.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p.start()
	if p.listen == taken.Addr().String() {
		t.Fatalf("serve started on %s, which was taken", p.listen)
	}
}
