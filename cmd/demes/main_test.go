package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// demesBin is the binary under test, built once by TestMain: the CLI is
// tested as people and scripts use it, through exit codes and output.
var demesBin string

// raceBuild is set by race_test.go when the tests run with -race, so the
// binary is built with the race detector too.
var raceBuild bool

func TestMain(m *testing.M) {
	// The tests mostly wait on the processes they start (serve, join,
	// send), not on the CPU: four run at once unless -test.parallel says
	// otherwise. This package was the suite's longest by far with two.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if f := flag.Lookup("test.parallel"); f != nil && !set {
		_ = f.Value.Set("4")
	}
	dir, err := os.MkdirTemp("", "demes-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demesBin = filepath.Join(dir, "demes")
	args := []string{"build", "-o", demesBin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building demes:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// lastLine is the last line of stdout: where a command prints its one value.
func (r result) lastLine() string {
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	return lines[len(lines)-1]
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runDemes runs the binary with args in a clean environment: no DEMES_*
// variables from the caller, HOME in a temporary directory (so ~/.demes is
// never the real one), the fast scrypt work factor, and env on top.
func runDemes(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(demesBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEMES_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+t.TempDir(), envWorkFactor+"=10")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run demes %v: %v", args, err)
	}
	return r
}

// wantExit fails the test unless r exited with code.
func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %v", code, r)
	}
}

// wantStderr fails the test unless stderr holds each of subs.
func wantStderr(t *testing.T, r result, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := runDemes(t, nil, args...)
		wantExit(t, r, 0)
		for _, c := range commands {
			if !strings.Contains(r.stdout, "  "+c.name+" ") {
				t.Errorf("demes %v does not list %q:\n%s", args, c.name, r.stdout)
			}
		}
	}
	r := runDemes(t, nil, "help", "send")
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, "usage: demes send TEXT") || !strings.Contains(r.stdout, "-timeout") {
		t.Errorf("help send:\n%s", r.stdout)
	}
	r = runDemes(t, nil, "keygen", "-h")
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, "-passphrase-file") {
		t.Errorf("keygen -h:\n%s", r.stdout)
	}
}

func TestBadUsage(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: demes COMMAND"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"keygen", "--bogus"}, "unknown flag --bogus"},
		{[]string{"keygen", "extra"}, `unexpected argument "extra"`},
		{[]string{"id", "--json=maybe"}, `--json: "maybe" is not true or false`},
		{[]string{"send", "--home", home}, "missing the message TEXT"},
		{[]string{"send", "hi", "--timeout", "soon", "--home", home}, `--timeout: "soon" is not a duration`},
		{[]string{"send", "hi", "--timeout", "-1s", "--home", home}, "--timeout must be positive"},
		{[]string{"invite", "--home", home}, "missing the PUBLIC_ID"},
		{[]string{"join", "a", "b", "--home", home}, `unexpected argument "b"`},
		{[]string{"group", "--home", home}, "missing the subcommand"},
		{[]string{"group", "delete", "x", "--home", home}, `unknown subcommand "delete"`},
		{[]string{"group", "create", "--home", home}, "missing the group's NAME"},
		{[]string{"transcript", "--home", home}, "missing -o FILE"},
		{[]string{"keygen", "--home"}, "--home needs a value"},
		{[]string{"bench", "throughput", "--senders", "64,lots"}, `--senders "64,lots": want numbers of senders from 1 to 4096`},
		{[]string{"bench", "scale", "--sizes", "1"}, `--sizes "1": want group sizes from 2 to 200`},
		{[]string{"bench", "latency", "--transport", "quic"}, `--transport "quic": want http, p2p or p2p-relay`},
		{[]string{"bench", "failover", "--transport", "p2p-relay"}, "only latency runs through a relay"},
		{[]string{"bench", "scale", "--transport", "p2p"}, "only latency, failover and throughput run over another transport"},
	} {
		r := runDemes(t, nil, tc.args...)
		if r.code != 2 {
			t.Errorf("demes %q: want exit 2, got %v", tc.args, r)
			continue
		}
		wantStderr(t, r, tc.want)
		if len(tc.args) > 0 && !strings.Contains(r.stderr, "demes: hint: ") {
			t.Errorf("demes %q: no hint:\n%s", tc.args, r.stderr)
		}
	}
}
