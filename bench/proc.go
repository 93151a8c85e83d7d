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
	"time"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
)

// serveProc is one `demes serve` process and its home; p2p is its libp2p
// listen address, empty when it runs on HTTP only.
type serveProc struct {
	bin, home, listen, ui, p2p, pub string
	// metrics, if set, is the loopback address of the process's metrics
	// listener (serve --metrics).
	metrics string
	cmd     *exec.Cmd
	done    chan struct{}
	api     *apiClient
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
	if p.metrics != "" {
		args = append(args, "--metrics", p.metrics)
	}
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
