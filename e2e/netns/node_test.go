package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one long-running demes process (serve or relay) in a namespace.
type proc struct {
	t       *testing.T
	name    string
	ns      string // the namespace it runs in, its machine
	home    string
	logPath string // its stderr (and a serve's stdout)
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited
}

// newProc gives a process a home and a log, and stops it when t ends; a
// failed test gets the tail of its log.
func newProc(t *testing.T, name, ns string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, name: name, ns: ns, home: filepath.Join(dir, "home"), logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			p.logTail(120)
		}
	})
	return p
}

// start runs `demes ARGS --home HOME` inside the namespace; its stdout
// goes to stdout, or to the log when stdout is "".
func (p *proc) start(stdout string, args ...string) {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer log.Close()
	out := log
	if stdout != "" {
		if out, err = os.Create(stdout); err != nil {
			p.t.Fatal(err)
		}
		defer out.Close()
	}
	// ip netns exec enters the namespace and then execs demes, so the
	// process's pid is demes's own and signals reach it.
	cmd := exec.Command(ipBin, append([]string{"netns", "exec", p.ns, demesBin}, append(args, "--home", p.home)...)...)
	cmd.Env = append(os.Environ(), "HOME="+p.home)
	cmd.Stdout, cmd.Stderr = out, log
	// Should the test binary die without its cleanups (go test's
	// -timeout), the kernel kills the node with it; the signal setting
	// survives ip's exec of demes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(p.exited)
}

// running says whether the process has not exited.
func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the process to shut down, and kills it if it has not within
// ten seconds: a node that hangs in shutdown must not keep the namespace.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.t.Logf("%s did not stop within 10s of SIGTERM; killing it", p.name)
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// kill is kill -9: the node gets no shutdown, as when a laptop dies.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// logTail logs the last n lines of the process's log.
func (p *proc) logTail(n int) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	p.t.Logf("last %d lines of %s's log (in %s):\n%s", len(lines), p.name, p.ns, strings.Join(lines, "\n"))
}

// result is what one CLI command did.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("demes %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// lastLine is the command's value: the contract puts it on stdout's last
// line.
func (r result) lastLine() string {
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// demes runs one CLI command for this process's home inside its namespace:
// the node's API listens on the namespace's own loopback.
func (p *proc) demes(args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	full := append(append([]string{}, args...), "--home", p.home)
	cmd := exec.CommandContext(ctx, ipBin, append([]string{"netns", "exec", p.ns, demesBin}, full...)...)
	cmd.Env = append(os.Environ(), "HOME="+p.home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		p.t.Fatalf("%s: demes %s did not finish within %v", p.name, strings.Join(args, " "), cliTimeout)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		p.t.Fatalf("%s: demes %s: %v", p.name, strings.Join(args, " "), err)
	}
	return r
}

// must runs a CLI command and fails the test unless it exits with code.
func (p *proc) must(code int, args ...string) result {
	p.t.Helper()
	r := p.demes(args...)
	if r.code != code {
		p.t.Fatalf("%s: want exit %d, got %v", p.name, code, r)
	}
	return r
}

// node is one member's `demes serve`.
type node struct {
	*proc
	pub string // its public id
}

// newNode makes a member's identity in a fresh home; start runs it.
func newNode(t *testing.T, name, ns string) *node {
	t.Helper()
	n := &node{proc: newProc(t, name, ns)}
	n.pub = n.must(0, "keygen", "--name", name).lastLine()
	return n
}

// start runs `demes serve` with flags and waits until its API answers.
func (n *node) start(flags ...string) {
	n.t.Helper()
	n.proc.start("", append([]string{"serve", "--log-level", "info"}, flags...)...)
	waitFor(n.t, waitLong, n.name+" to serve", func() bool {
		if !n.running() {
			n.t.Fatalf("%s's demes serve exited", n.name)
		}
		return n.demes("status").code == 0
	})
}

// statusDoc is the part of `demes status --json` the tests read. Members
// stay maps so that fields newer than this test (path) can be looked for.
type statusDoc struct {
	PublicID string `json:"public_id"`
	Groups   []struct {
		GroupID string           `json:"group_id"`
		Host    string           `json:"host"`
		Members []map[string]any `json:"members"`
	} `json:"groups"`
}

// status is the node's `demes status --json`.
func (n *node) status() statusDoc {
	n.t.Helper()
	r := n.must(0, "status", "--json")
	var st statusDoc
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		n.t.Fatalf("%s: status --json: %v\n%s", n.name, err, r.stdout)
	}
	return st
}

// members is the node's view of its one group's members, from `demes
// status --json`; nil while it is in no group or in several.
func (n *node) members() []map[string]any {
	n.t.Helper()
	st := n.status()
	if len(st.Groups) != 1 {
		return nil
	}
	return st.Groups[0].Members
}

// chatMsg is one entry of `demes messages --json`.
type chatMsg struct {
	ID     string `json:"id"`
	Index  uint64 `json:"index"`
	Author string `json:"author"`
	Text   string `json:"text"`
	State  string `json:"state"`
}

// committed is the node's committed messages in group order; nil while it
// cannot say (no group yet, or its API is busy).
func (n *node) committed() []chatMsg {
	n.t.Helper()
	r := n.demes("messages", "--json")
	if r.code != 0 {
		return nil
	}
	var all []chatMsg
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		n.t.Fatalf("%s: messages --json: %v\n%s", n.name, err, r.stdout)
	}
	var ms []chatMsg
	for _, m := range all {
		if m.State == "" || m.State == "committed" {
			ms = append(ms, m)
		}
	}
	return ms
}

// relay is a `demes relay` process.
type relay struct {
	*proc
	stdout string // the file its stdout goes to
	addr   string // the address it printed first
}

// startRelay runs `demes relay --listen 0.0.0.0:4001` in ns and returns it
// with the address it printed, for the nodes' --relay.
func startRelay(t *testing.T, ns string) (*relay, string) {
	t.Helper()
	r := &relay{proc: newProc(t, "relay", ns)}
	r.stdout = filepath.Join(t.TempDir(), "relay.out")
	r.addr = r.start()
	t.Logf("relay address: %s", r.addr)
	return r, r.addr
}

// start runs the relay and returns the address it printed once the line is
// there. A restarted relay keeps its home, and so its peer id and address.
func (r *relay) start() string {
	r.t.Helper()
	r.proc.start(r.stdout, "relay", "--listen", "0.0.0.0:4001")
	var addr string
	waitFor(r.t, waitLong, "the relay to print its address", func() bool {
		if !r.running() {
			r.t.Fatal("demes relay exited")
		}
		b, _ := os.ReadFile(r.stdout)
		// Only a finished line counts: the last one may be half written.
		s := string(b)
		if !strings.HasSuffix(s, "\n") {
			return false
		}
		lines := strings.Split(strings.TrimSpace(s), "\n")
		addr = strings.TrimSpace(lines[len(lines)-1])
		return strings.Contains(addr, "/p2p/")
	})
	return addr
}
