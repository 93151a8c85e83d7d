package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScript runs the command-line contract (docs/CLI.md) as scripts:
// testdata/script/*.txtar, one per command. In them `demes` is the binary
// TestMain built (with -race when the tests run with it), found on PATH, so
// each line runs the command as a person or a script would, and asserts its
// output, its --json fields and its exit code.
//
// The package's TestMain builds that binary already, so the scripts use it
// rather than testscript.Main, which would need a second TestMain.
//
// Besides testscript's commands, the scripts have those of scriptCmds. A
// script that starts with skip ('contract gap: ...'), gap_*.txtar, states a
// contract item the binary does not honour yet: remove the skip once it
// does. Run one script with: go test ./cmd/demes -run TestScript/send
func TestScript(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                "testdata/script",
		RequireUniqueNames: true,
		Setup: func(env *testscript.Env) error {
			// testscript starts from an empty environment, so no DEMES_HOME
			// or DEMES_PASSPHRASE_FILE of the caller leaks in.
			env.Setenv("PATH", filepath.Dir(demesBin)+string(os.PathListSeparator)+env.Getenv("PATH"))
			// A script line cannot hold a newline; two${NL}lines can.
			env.Setenv("NL", "\n")
			return nil
		},
		Cmds: scriptCmds,
	})
}

// scriptCmds are the commands the scripts have besides testscript's own.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"exits":      cmdExits,
	"waitfor":    cmdWaitfor,
	"capture":    cmdCapture,
	"jsonhas":    cmdJSONHas,
	"jsoneq":     cmdJSONEq,
	"jsonlen":    cmdJSONLen,
	"perm":       cmdPerm,
	"eventually": cmdEventually,
	"freeport":   cmdFreeport,
	"sigterm":    cmdSigterm,
	"httpget":    cmdHTTPGet,
	"mkfile":     cmdMkfile,
}

// cmdMkfile is `mkfile NAME SIZE`: write SIZE bytes (a number, with an
// optional K or M suffix) to NAME, "line N" over and over.
func cmdMkfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkfile NAME SIZE")
	}
	s, mult := args[1], 1
	switch {
	case strings.HasSuffix(s, "K"):
		s, mult = strings.TrimSuffix(s, "K"), 1<<10
	case strings.HasSuffix(s, "M"):
		s, mult = strings.TrimSuffix(s, "M"), 1<<20
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		ts.Fatalf("mkfile: size %q", args[1])
	}
	var b bytes.Buffer
	for i := 0; b.Len() < n*mult; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(ts.MkAbs(args[0]), b.Bytes()[:n*mult], 0o644); err != nil {
		ts.Fatalf("mkfile: %v", err)
	}
}

// cmdExits is `exits N PROGRAM [ARGS...]`: run PROGRAM, which must exit with
// code N (or one of N|M|...); its stdout and stderr are then those the next stdout and stderr
// commands match. testscript's `! exec` checks only that the exit code is
// not 0, and the contract gives 1, 2 and 3 different meanings.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE[|CODE...] PROGRAM [ARGS...]")
	}
	// "0|3": either code, for a step whose outcome the script cannot fix
	// (a quota window that may have passed on a loaded machine).
	var want []int
	for _, c := range strings.Split(args[0], "|") {
		n, err := strconv.Atoi(c)
		if err != nil {
			ts.Fatalf("exits: bad exit code %q", args[0])
		}
		want = append(want, n)
	}
	err := ts.Exec(args[1], args[2:]...)
	got := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		got = exit.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if !slices.Contains(want, got) {
		ts.Fatalf("%s exited with %d, want %s", args[1], got, args[0])
	}
}

// waitforTimeout bounds waitfor: far above what a serve takes to start on a
// loaded machine, and a background process that dies ends the wait sooner.
const waitforTimeout = 60 * time.Second

// cmdWaitfor is `waitfor FILE [REGEXP]`: wait until FILE exists and, with
// REGEXP, until its content matches. It is how a script waits for a
// background `demes serve` (whose home/serve.json appears once its API
// listens) instead of sleeping. It fails at once when a background process
// of the script has exited, and after waitforTimeout.
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! waitfor")
	}
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfor FILE [REGEXP]")
	}
	path := ts.MkAbs(args[0])
	var re *regexp.Regexp
	if len(args) == 2 {
		re = regexp.MustCompile("(?m)" + args[1])
	}
	deadline := time.Now().Add(waitforTimeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && (re == nil || re.Match(b)) {
			return
		}
		for _, c := range ts.BackgroundCmds() {
			// Signal 0 checks that the process is still there; once it
			// has exited and testscript has reaped it, Signal fails.
			if c.Process.Signal(syscall.Signal(0)) != nil {
				ts.Fatalf("waitfor %s: %s exited first (wait for it to see its output)", args[0], strings.Join(c.Args, " "))
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfor %s: not there after %v (last read: %v, %q)", args[0], waitforTimeout, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdEventually is `eventually REGEXP PROGRAM [ARGS...]`: run PROGRAM
// until it succeeds with stdout matching REGEXP, for what another node does
// in its own time (a message arriving, a host being elected). It fails after
// waitforTimeout, showing the last run's output.
func cmdEventually(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! eventually")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: eventually REGEXP PROGRAM [ARGS...]")
	}
	re := regexp.MustCompile("(?m)" + args[0])
	deadline := time.Now().Add(waitforTimeout)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("eventually: %s did not print a match of %q in %v (last error: %v)", args[1], args[0], waitforTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdFreeport is `freeport VAR`: set VAR to a loopback address with a port
// that was free a moment ago, for a node that must come back on the same
// address after a restart (port 0 would give it another, and its group knows
// it by the old one).
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv(args[0], ln.Addr().String())
	ts.Check(ln.Close())
}

// cmdHTTPGet is `httpget URL`: GET the URL (on loopback) and make its body
// the stdout the next stdout command matches; with `!`, the status must not
// be 200.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: httpget URL")
	}
	resp, err := http.Get(args[0])
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	ts.Stdout().Write(b)
	switch {
	case neg && resp.StatusCode == http.StatusOK:
		ts.Fatalf("GET %s: 200, want another status", args[0])
	case !neg && resp.StatusCode != http.StatusOK:
		ts.Fatalf("GET %s: %s", args[0], resp.Status)
	}
}

// cmdSigterm is `sigterm HOME`: send SIGTERM to the demes serve of HOME, as
// a service manager stops it (testscript's kill sends only SIGINT and
// SIGKILL). It finds the process by the pid in HOME/serve.json.
func cmdSigterm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sigterm HOME")
	}
	// Decoded here rather than with serve.go's type, so that the script
	// reads serve.json as any other program would (docs/CLI.md names it).
	b, err := os.ReadFile(filepath.Join(ts.MkAbs(args[0]), "serve.json"))
	ts.Check(err)
	var info struct {
		PID int `json:"pid"`
	}
	ts.Check(json.Unmarshal(b, &info))
	if info.PID <= 0 {
		ts.Fatalf("sigterm: no pid in %s/serve.json", args[0])
	}
	ts.Check(syscall.Kill(info.PID, syscall.SIGTERM))
}

// cmdCapture is `capture VAR [REGEXP]`: set VAR to the last line of the
// last command's stdout, where the contract puts a command's one value (a
// public id, a group id, an invite code, a message id); with REGEXP, to its
// first submatch in stdout.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! capture")
	}
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: capture VAR [REGEXP]")
	}
	out := ts.ReadFile("stdout")
	if len(args) == 2 {
		m := regexp.MustCompile("(?m)" + args[1]).FindStringSubmatch(out)
		if len(m) < 2 {
			ts.Fatalf("capture %s: no submatch of %q in stdout", args[0], args[1])
		}
		ts.Setenv(args[0], m[1])
		return
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	if last == "" {
		ts.Fatalf("capture %s: stdout is empty", args[0])
	}
	ts.Setenv(args[0], last)
}

// stdoutJSON decodes stdout, which must be exactly one JSON document, as
// --json promises.
func stdoutJSON(ts *testscript.TestScript) any {
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile("stdout")))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("stdout is not a JSON document: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		ts.Fatalf("stdout holds more than one JSON document")
	}
	return v
}

// jsonAt finds the value at path in v: keys and array indexes separated by
// dots ("groups.0.members"); "." is v itself.
func jsonAt(ts *testscript.TestScript, v any, path string) any {
	if path == "." {
		return v
	}
	for _, step := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[step]; !ok {
				ts.Fatalf("JSON at %s: no key %q (keys: %s)", path, step, keysOf(x))
			}
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(x) {
				ts.Fatalf("JSON at %s: no element %q in an array of %d", path, step, len(x))
			}
			v = x[i]
		default:
			ts.Fatalf("JSON at %s: %q steps into %T", path, step, v)
		}
	}
	return v
}

func keysOf(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return strings.Join(ks, ", ")
}

// cmdJSONHas is `[!] jsonhas PATH KEY...`: the object at PATH in stdout's
// JSON has (or, negated, has none of) the keys.
func cmdJSONHas(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: jsonhas PATH KEY...")
	}
	obj, ok := jsonAt(ts, stdoutJSON(ts), args[0]).(map[string]any)
	if !ok {
		ts.Fatalf("JSON at %s is not an object", args[0])
	}
	for _, k := range args[1:] {
		if _, has := obj[k]; has == neg {
			if neg {
				ts.Fatalf("JSON at %s has the key %q", args[0], k)
			}
			ts.Fatalf("JSON at %s lacks the key %q (keys: %s)", args[0], k, keysOf(obj))
		}
	}
}

// cmdJSONEq is `[!] jsoneq PATH VALUE`: the value at PATH in stdout's JSON,
// written as a string, number, true, false or null, is VALUE.
func cmdJSONEq(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: jsoneq PATH VALUE")
	}
	var got string
	switch x := jsonAt(ts, stdoutJSON(ts), args[0]).(type) {
	case string:
		got = x
	case json.Number:
		got = x.String()
	case bool:
		got = strconv.FormatBool(x)
	case nil:
		got = "null"
	default:
		b, _ := json.Marshal(x)
		got = string(b)
	}
	if (got == args[1]) == neg {
		if neg {
			ts.Fatalf("JSON at %s is %q", args[0], got)
		}
		ts.Fatalf("JSON at %s is %q, want %q", args[0], got, args[1])
	}
}

// cmdJSONLen is `jsonlen PATH N`: the array at PATH in stdout's JSON has N
// elements.
func cmdJSONLen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonlen PATH N")
	}
	arr, ok := jsonAt(ts, stdoutJSON(ts), args[0]).([]any)
	if !ok {
		ts.Fatalf("JSON at %s is not an array", args[0])
	}
	if fmt.Sprint(len(arr)) != args[1] {
		ts.Fatalf("JSON at %s has %d elements, want %s", args[0], len(arr), args[1])
	}
}

// cmdPerm is `perm MODE FILE`: FILE's permission bits are MODE (octal), as
// the contract wants for the identity and the token (0600).
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: perm MODE FILE")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	if err != nil {
		ts.Fatalf("perm: bad mode %q", args[0])
	}
	st, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if got := st.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("%s has mode %04o, want %04o", args[1], got, want)
	}
}
