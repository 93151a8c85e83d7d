package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// FailoverOptions configures [Failover].
type FailoverOptions struct {
	// Binary is the demes executable to run (`demes bench` passes its own,
	// the Benchmark functions build one). Required.
	Binary string
	// Kills is how many times the host is killed (default 20).
	Kills int
	// Progress, when set, receives a line per kill.
	Progress io.Writer
	// Transport is how the processes talk (HTTP or P2P; default HTTP).
	Transport Transport
}

// FailoverResult is what [Failover] measured.
type FailoverResult struct {
	// Failover: from SIGKILL of the host until a survivor's send was
	// committed by a new host. The survivor sends a new message every
	// few milliseconds from the moment of the kill, each waiting 20 ms for
	// its commit, so this is what a member typing during the failover sees.
	Failover Samples
	// NewHost: from SIGKILL until the other survivor's status names a new
	// host.
	NewHost Samples
	// Drained: from SIGKILL until every message the survivor sent during
	// the failover (most of them queued in its outbox) was committed.
	Drained Samples
	// Rejoin: from the restart of the killed process until it has caught
	// up and every node counts 3 voters again.
	Rejoin Samples
	// Sent counts the messages sent during the failovers, Queued those of
	// them not committed when their send returned (they wait in the
	// outbox), Lost those missing from some node's messages in the end,
	// Duplicated those listed more than once.
	Sent, Queued, Lost, Duplicated int
	// Transport is how the processes talked, Paths (on libp2p) how their
	// hosts reached each other at the end.
	Transport Transport
	Paths     map[string]int
}

// Figures returns the table lines of the result.
func (r FailoverResult) Figures() []Figure {
	f := durationFigure("failover: kill -9 host -> new host commits", "s", r.Failover, 700*time.Millisecond, 1500*time.Millisecond)
	f.Note = "3 demes serve processes on loopback"
	if r.Transport.p2p() {
		f.Note += "; " + pathsNote(r.Paths)
	}
	h := durationFigure("failover: kill -9 host -> new host known", "s", r.NewHost, 0, 0)
	d := durationFigure("failover: kill -9 host -> sent meanwhile all committed", "s", r.Drained, 0, 0)
	d.Note = "the outbox re-proposes queued messages to the new host"
	j := durationFigure("failover: restart -> caught up, 3 voters", "s", r.Rejoin, 0, 0)
	lost := Figure{
		Name: "failover: messages sent during failover lost", Unit: "msgs", N: r.Sent,
		Median: float64(r.Lost + r.Duplicated), P99: nan(), Target: "0 lost, 0 duplicated", Verdict: verdict(r.Lost+r.Duplicated == 0 && r.Sent > 0),
		Note: fmt.Sprintf("%d sent, %d queued at first, %d lost, %d duplicated", r.Sent, r.Queued, r.Lost, r.Duplicated),
	}
	return r.Transport.noted([]Figure{f, h, d, j, lost})
}

// Failover runs three `demes serve` processes of o.Binary on loopback,
// forms a group through the command line (keygen, group create, invite,
// join), and then, o.Kills times: kills the host's process with SIGKILL,
// measures how long until a new host commits a message sent by a survivor,
// restarts the killed node on the same ports, and waits until it has
// caught up and all three are voters again.
func Failover(ctx context.Context, o FailoverOptions) (FailoverResult, error) {
	r := FailoverResult{Transport: o.Transport}
	if o.Binary == "" {
		return r, errors.New("failover: no demes binary given")
	}
	if o.Kills <= 0 {
		o.Kills = 20
	}
	procs, gid, stop, err := startProcGroup(ctx, o.Binary, "failover", 3, o.Transport)
	defer stop()
	if err != nil {
		return r, err
	}
	var sent []string
	for k := 0; k < o.Kills; k++ {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		host, err := waitStable(ctx, procs, gid)
		if err != nil {
			return r, fmt.Errorf("kill %d: %w", k+1, err)
		}
		ids, err := failoverOnce(ctx, procs, gid, host, k, &r)
		sent = append(sent, ids...)
		if err != nil {
			return r, fmt.Errorf("kill %d: %w", k+1, err)
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench: failover %d/%d: %.3f s (new host known after %.3f s, outbox drained after %.2f s, rejoined in %.2f s)\n",
				k+1, o.Kills, r.Failover[k].Seconds(), r.NewHost[k].Seconds(), r.Drained[k].Seconds(), r.Rejoin[k].Seconds())
		}
	}
	r.Sent = len(sent)
	r.Lost, r.Duplicated, err = checkDelivered(ctx, procs, gid, sent)
	if err == nil && o.Transport.p2p() {
		r.Paths, err = procPaths(ctx, procs, gid)
	}
	return r, err
}

// startProcGroup starts n `demes serve` processes of bin on loopback, each
// with its own home in a new temporary directory, talking over t (with
// P2P, each listens for libp2p peers on a free loopback port too), and
// forms a group of them through the command line (keygen, group create,
// invite, join). stop ends
// the processes and removes the directory; call it even on an error.
func startProcGroup(ctx context.Context, bin, name string, n int, t Transport) (procs []*serveProc, gid string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "demes-bench-"+name+"-")
	if err != nil {
		return nil, "", func() {}, err
	}
	procs = make([]*serveProc, n)
	stop = func() {
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
		os.RemoveAll(dir)
	}
	for i := range procs {
		p := &serveProc{bin: bin, home: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		procs[i] = p
		if p.listen, err = freeAddr(); err != nil {
			return procs, "", stop, err
		}
		if p.ui, err = freeAddr(); err != nil {
			return procs, "", stop, err
		}
		if t.p2p() {
			if p.p2p, err = freeAddr(); err != nil {
				return procs, "", stop, err
			}
		}
		out, err := p.cli(ctx, "keygen", "--name", fmt.Sprintf("node%d", i))
		if err != nil {
			return procs, "", stop, err
		}
		p.pub = out
		if err := p.start(ctx); err != nil {
			return procs, "", stop, err
		}
	}
	gid, err = procs[0].cli(ctx, "group", "create", "bench")
	if err != nil {
		return procs, "", stop, err
	}
	for _, p := range procs[1:] {
		code, err := procs[0].cli(ctx, "invite", p.pub, "--group", gid)
		if err != nil {
			return procs, "", stop, err
		}
		if _, err := p.cli(ctx, "join", code); err != nil {
			return procs, "", stop, err
		}
	}
	// Lift the quotas (see unlimited) through the settings route of the
	// local API.
	if _, err := procs[0].api.do(ctx, http.MethodPut, "/api/v1/groups/"+gid+"/settings", unlimited, nil); err != nil {
		return procs, "", stop, fmt.Errorf("lift the quotas: %w", err)
	}
	return procs, gid, stop, nil
}

// failoverOnce kills the host, times the failover, restarts the killed node
// and waits for it to catch up. It returns the ids of the messages sent.
func failoverOnce(ctx context.Context, procs []*serveProc, gid string, host, k int, r *FailoverResult) ([]string, error) {
	var survivors []*serveProc
	for i, p := range procs {
		if i != host {
			survivors = append(survivors, p)
		}
	}
	oldHost := procs[host].pub
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		wg      sync.WaitGroup
		newHost time.Duration
		hostErr error
	)
	start := time.Now()
	if err := procs[host].kill(); err != nil {
		return nil, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		hostErr = testutil.Poll(fctx, 5*time.Millisecond, "a new host", func() bool {
			st, err := survivors[1].api.status(fctx)
			if err != nil {
				return false
			}
			for _, g := range st.Groups {
				if g.GroupID == gid && g.Host != "" && g.Host != oldHost {
					newHost = time.Since(start)
					return true
				}
			}
			return false
		})
	}()
	var ids []string
	var failover time.Duration
	for j := 0; failover == 0; j++ {
		m, code, err := survivors[0].api.send(fctx, gid, fmt.Sprintf("failover %d/%d", k, j), 20*time.Millisecond)
		if err != nil {
			if fctx.Err() != nil {
				wg.Wait()
				return ids, fmt.Errorf("no commit within 30 s of the kill: %w", err)
			}
			continue
		}
		ids = append(ids, m.ID)
		if code == http.StatusOK && m.State == node.StateCommitted {
			failover = time.Since(start)
		} else {
			r.Queued++
		}
	}
	wg.Wait()
	if hostErr != nil {
		return ids, hostErr
	}
	r.Failover = append(r.Failover, failover)
	r.NewHost = append(r.NewHost, newHost)
	if err := testutil.Poll(fctx, 5*time.Millisecond, "the survivor's outbox to drain", func() bool {
		st, err := survivors[0].api.status(fctx)
		if err != nil {
			return false
		}
		for _, g := range st.Groups {
			if g.GroupID == gid {
				return g.Queued == 0
			}
		}
		return false
	}); err != nil {
		return ids, err
	}
	r.Drained = append(r.Drained, time.Since(start))

	restart := time.Now()
	if err := procs[host].start(ctx); err != nil {
		return ids, err
	}
	if _, err := waitStable(ctx, procs, gid); err != nil {
		return ids, fmt.Errorf("after the restart: %w", err)
	}
	r.Rejoin = append(r.Rejoin, time.Since(restart))
	return ids, nil
}

// waitStable waits until all nodes name the same host, count as many
// voters as the group can have (all of them, at most 5) and have applied the
// same index, and returns the host's index.
func waitStable(ctx context.Context, procs []*serveProc, gid string) (int, error) {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	host := -1
	want := min(len(procs), state.DefaultMaxVoters)
	err := testutil.Poll(wctx, 10*time.Millisecond, fmt.Sprintf("%d voters agreeing on a host", want), func() bool {
		hostID, commit := "", uint64(0)
		for i, p := range procs {
			st, err := p.api.status(wctx)
			if err != nil {
				return false
			}
			var g *node.GroupStatus
			for k := range st.Groups {
				if st.Groups[k].GroupID == gid {
					g = &st.Groups[k]
				}
			}
			if g == nil || g.Host == "" || g.Queued > 0 {
				return false
			}
			voters := 0
			for _, m := range g.Members {
				if m.Voter {
					voters++
				}
			}
			if voters != want {
				return false
			}
			if i == 0 {
				hostID, commit = g.Host, g.Committed
			} else if g.Host != hostID || g.Committed != commit {
				return false
			}
		}
		host = -1
		for i, p := range procs {
			if p.pub == hostID {
				host = i
			}
		}
		return host >= 0
	})
	return host, err
}

// checkDelivered waits until every node lists every sent message as
// committed, and counts those missing or listed twice.
func checkDelivered(ctx context.Context, procs []*serveProc, gid string, sent []string) (lost, dup int, err error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	count := func() (int, int, error) {
		var seen []map[string]int
		for _, p := range procs {
			msgs, err := p.api.messages(wctx, gid)
			if err != nil {
				return 0, 0, err
			}
			s := map[string]int{}
			for _, m := range msgs {
				if m.State == node.StateCommitted {
					s[m.ID]++
				}
			}
			seen = append(seen, s)
		}
		lost, dup := 0, 0
		for _, id := range sent {
			missing, twice := false, false
			for _, s := range seen {
				missing = missing || s[id] == 0
				twice = twice || s[id] > 1
			}
			if missing {
				lost++
			}
			if twice {
				dup++
			}
		}
		return lost, dup, nil
	}
	for {
		lost, dup, err = count()
		if err == nil && lost == 0 {
			return 0, dup, nil
		}
		select {
		case <-wctx.Done():
			return lost, dup, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serveProc is one `demes serve` process and its home; p2p is its libp2p
// listen address, empty when it runs on HTTP only.
type serveProc struct {
	bin, home, listen, ui, p2p, pub string
	cmd                             *exec.Cmd
	done                            chan struct{}
	api                             *apiClient
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// env is the environment of the processes: the caller's, without DEMES_
// variables, so that a DEMES_HOME of the person running the benchmark is
// never touched.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEMES_") {
			out = append(out, kv)
		}
	}
	return out
}

// cli runs a demes command with this home and returns the last line of its
// stdout (where the command prints its one value).
func (p *serveProc) cli(ctx context.Context, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, p.bin, append(args, "--home", p.home)...)
	cmd.Env = env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("demes %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// start runs `demes serve` and waits until its local API answers.
func (p *serveProc) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(p.home, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	args := []string{"serve", "--home", p.home, "--listen", p.listen, "--ui", p.ui, "--log-level", "warn"}
	if p.p2p != "" {
		args = append(args, "--p2p", p.p2p, "--port-map=false")
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Env = env()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start demes serve: %w", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = testutil.Poll(wctx, 10*time.Millisecond, "demes serve to start", func() bool {
		select {
		case <-p.done:
			return true
		default:
		}
		a, err := newAPIClient(p.home, cmd.Process.Pid)
		if err != nil {
			return false
		}
		if _, err := a.status(wctx); err != nil {
			return false
		}
		p.api = a
		return true
	})
	select {
	case <-p.done:
		return fmt.Errorf("demes serve exited at start; see %s", filepath.Join(p.home, "serve.log"))
	default:
	}
	return err
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *serveProc) kill() error {
	if p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill demes serve: %w", err)
	}
	<-p.done
	p.cmd = nil
	return nil
}

// stop ends the process with SIGTERM (SIGKILL after 10 s).
func (p *serveProc) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// apiClient calls a serve's local API with its token.
type apiClient struct {
	base, token string
	hc          *http.Client
}

// newAPIClient reads serve.json and the token of home; serve.json must be
// the one written by the process pid (a killed one leaves its own behind).
func newAPIClient(home string, pid int) (*apiClient, error) {
	b, err := os.ReadFile(filepath.Join(home, "serve.json"))
	if err != nil {
		return nil, err
	}
	var info struct {
		UIURL string `json:"ui_url"`
		PID   int    `json:"pid"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	if info.PID != pid {
		return nil, errors.New("serve.json of another process")
	}
	tok, err := os.ReadFile(filepath.Join(home, "token"))
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 128 // the throughput benchmark's senders
	return &apiClient{base: info.UIURL, token: strings.TrimSpace(string(tok)), hc: &http.Client{Transport: tr}}, nil
}

func (a *apiClient) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, a.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out != nil {
		if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func (a *apiClient) status(ctx context.Context) (node.Status, error) {
	var st node.Status
	_, err := a.do(ctx, http.MethodGet, "/api/v1/status", nil, &st)
	return st, err
}

func (a *apiClient) send(ctx context.Context, gid, text string, wait time.Duration) (node.Message, int, error) {
	var m node.Message
	code, err := a.do(ctx, http.MethodPost, "/api/v1/groups/"+gid+"/messages",
		map[string]any{"text": text, "timeout_ms": wait.Milliseconds()}, &m)
	return m, code, err
}

func (a *apiClient) messages(ctx context.Context, gid string) ([]node.Message, error) {
	var ms []node.Message
	_, err := a.do(ctx, http.MethodGet, "/api/v1/groups/"+gid+"/messages", nil, &ms)
	return ms, err
}
