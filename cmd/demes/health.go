package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// healthTimeout bounds `demes health`: a container runtime's health check
// has its own timeout, and a node that cannot answer in this long is not
// healthy anyway.
const healthTimeout = 5 * time.Second

// runHealth asks the metrics listener of a running serve whether the node
// is healthy (/healthz) or, with --ready, ready (/readyz), for health
// checks in images that have no curl (the container image is distroless).
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("health --metrics ADDR [--ready]", stdout)
	addr := f.String("metrics", "", "the `ADDR` that demes serve --metrics listens on (loopback)")
	ready := f.Bool("ready", false, "ask whether the node is ready (/readyz), not only alive (/healthz)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	if *addr == "" {
		return f.usagef("missing --metrics ADDR")
	}
	// serve prints the listener as http://ADDR/metrics: take that too.
	*addr = strings.TrimPrefix(*addr, "http://")
	*addr, _, _ = strings.Cut(*addr, "/")
	if err := checkListenAddr("--metrics", *addr, "127.0.0.1:9464", false); err != nil {
		return f.usageErr(err)
	}
	if !loopbackAddr(*addr) {
		return f.usagef("--metrics %s: the metrics listener is on loopback (127.0.0.1:PORT or [::1]:PORT)", *addr)
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*addr+path, nil)
	if err != nil {
		return f.usageErr(err)
	}
	// Loopback, whatever the environment says about proxies.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		why := errors.Unwrap(err)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			// Not Go's "dial tcp ...: connect: connection refused".
			why = errors.New("connection refused: nothing listens there")
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			why = fmt.Errorf("it did not answer within %v", healthTimeout)
		}
		return withHint(fmt.Errorf("no answer from the metrics listener at %s: %w", *addr, why),
			"is demes serve running with --metrics "+*addr+"?")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		// The metrics listener answers /healthz and /readyz with 200
		// or 503: this is another program (or the node's UI), whose
		// "404 page not found" would read as a sick node.
		return withHint(fmt.Errorf("%s is not the metrics listener of a demes serve: it answered %s with %s",
			*addr, path, resp.Status),
			"give the address that demes serve --metrics printed (demes: metrics on http://ADDR/metrics)")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", path, err)
	}
	fmt.Fprint(stdout, string(body))
	if resp.StatusCode != http.StatusOK {
		// The first line is the verdict; the lines after it, if any,
		// the reasons (/readyz: one per group).
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		if len(lines) > 1 {
			lines = lines[1:]
		}
		what := "healthy"
		if *ready {
			what = "ready"
		}
		return fmt.Errorf("the node is not %s: %s", what, clean(strings.Join(lines, "; "), ""))
	}
	return nil
}
