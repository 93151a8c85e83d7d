package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/demes/demes/api"
)

var (
	alpha = api.GroupInfo{GroupID: "a1a1a1a1", Name: "alpha"}
	beta  = api.GroupInfo{GroupID: "b2b2b2b2", Name: "beta club"}
)

func TestSendCommitted(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	r := runDemes(t, nil, "send", "hello", "world", "--home", f.home)
	wantExit(t, r, 0)
	sent := f.lastSent()
	if sent.Text != "hello world" || sent.GroupID != alpha.GroupID || sent.TimeoutMS != 10000 {
		t.Errorf("sent %+v, want hello world to %s with the default 10s timeout", sent, alpha.GroupID)
	}
	var want string
	f.locked(func() { want = f.messages[alpha.GroupID][0].ID })
	if got := r.lastLine(); got != want {
		t.Errorf("last line %q, want the message id %q", got, want)
	}

	r = runDemes(t, nil, "send", "--timeout", "2s", "--home", f.home, "--json", "again")
	wantExit(t, r, 0)
	if f.lastSent().TimeoutMS != 2000 {
		t.Errorf("--timeout 2s sent timeout_ms %d", f.lastSent().TimeoutMS)
	}
	var m api.Message
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.Text != "again" || m.State != api.StateCommitted {
		t.Errorf("send --json: %+v, %v\n%s", m, err, r.stdout)
	}
}

func TestSendQueued(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	f.locked(func() { f.sendState = api.StateTentative })
	r := runDemes(t, nil, "send", "are you there?", "--home", f.home, "--timeout", "1s")
	wantExit(t, r, 3)
	if !strings.HasPrefix(r.lastLine(), "m") {
		t.Errorf("last line %q is not the message id", r.lastLine())
	}
	wantStderr(t, r, r.lastLine(), "outbox", "exactly once")
	if strings.Contains(r.stderr, "demes: error:") {
		t.Errorf("a queued message is not an error:\n%s", r.stderr)
	}
}

// When the node takes the message but the answer is lost, sending again
// could send it twice: send must say to look first.
func TestSendUnanswered(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	f.locked(func() { f.dropSend = true })
	r := runDemes(t, nil, "send", "hi", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, "demes: error: cannot reach the node", "demes: hint: the message may be in the outbox already")

	// The node stopped while the send waited (SIGTERM): it may have
	// stored the message, and says so; the hint is the same.
	f.locked(func() {
		f.dropSend, f.sendErr = false, "failed to send: send: context canceled (the message may still be sent)"
	})
	r = runDemes(t, nil, "send", "hi", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, "demes: hint: the message may be in the outbox already")
	f.locked(func() { f.sendErr = "" })

	// An answer that is an error is certain: no outbox hint.
	r = runDemes(t, nil, "send", "hi", "--group", "nope", "--home", f.home)
	wantExit(t, r, 1)
	if strings.Contains(r.stderr, "outbox") {
		t.Errorf("a refused send mentions the outbox:\n%s", r.stderr)
	}
}

func TestNoServe(t *testing.T) {
	t.Parallel()
	// A home that never had a serve, and one whose serve died, leaving
	// serve.json behind: a port nothing listens on.
	never := t.TempDir()
	dead := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	writeServeFiles(t, dead, "http://"+addr, "tok")
	for _, home := range []string{never, dead} {
		wantExit(t, runDemes(t, nil, "keygen", "--home", home), 0)
	}

	// (join checks its code before it looks for the node, and a real code
	// is signed: join.txtar has join without a serve.)
	cmds := [][]string{
		{"status"}, {"groups"}, {"send", "hi"}, {"messages"}, {"group", "create", "x"},
		{"invite", bob.String()}, {"transcript", "-o", filepath.Join(t.TempDir(), "t.json")},
	}
	for _, home := range []string{never, dead} {
		for _, args := range cmds {
			r := runDemes(t, nil, append(args, "--home", home)...)
			if r.code != 1 {
				t.Errorf("demes %q in %s: want exit 1, got %v", args, home, r)
				continue
			}
			wantStderr(t, r, "demes: error: no demes serve is running for home "+home,
				"demes: hint: start one with: demes serve --home "+home)
		}
	}
	// A home with no identity yet: serve would fail too, so the hint
	// starts with keygen.
	bare := t.TempDir()
	r := runDemes(t, nil, "status", "--home", bare)
	wantExit(t, r, 1)
	wantStderr(t, r, "demes: error: no demes serve is running for home "+bare+", which holds no identity",
		"demes: hint: create an identity with: demes keygen --home "+bare+", then start a node with: demes serve --home "+bare)
}

func TestGroupResolution(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha, beta)

	r := runDemes(t, nil, "send", "hi", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, "2 groups", `"alpha" (a1a1a1a1)`, `"beta club" (b2b2b2b2)`, "demes: hint: ", "--group")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "hi", "--group", "beta club"}, beta.GroupID},              // by name, flag after
		{[]string{"send", "--group", "beta club", "hi"}, beta.GroupID},              // flag before
		{[]string{"send", "--group=" + alpha.GroupID, "hi"}, alpha.GroupID},         // by id
		{[]string{"--group", "alpha", "send"}, ""},                                  // not a command: usage
		{[]string{"send", "--group", "alpha", "--", "--not-a-flag"}, alpha.GroupID}, // "--" ends flags
	} {
		// --home first: after "--" it would be text.
		r := runDemes(t, nil, append([]string{tc.args[0], "--home", f.home}, tc.args[1:]...)...)
		if tc.want == "" {
			wantExit(t, r, 2)
			continue
		}
		wantExit(t, r, 0)
		if got := f.lastSent().GroupID; got != tc.want {
			t.Errorf("demes %q sent to %s, want %s", tc.args, got, tc.want)
		}
	}
	if got := f.lastSent().Text; got != "--not-a-flag" {
		t.Errorf(`text after "--" = %q`, got)
	}

	r = runDemes(t, nil, "messages", "--group", "gamma", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, `no group "gamma"`, "alpha", "demes groups")
}

// Every command that acts on one group resolves --group alike (they share
// connect): with two groups and no --group each fails with the same error and
// hint, and with --group NAME each reaches that group, not the other.
func TestGroupCommandsResolveAlike(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha, beta)
	f.locked(func() {
		f.messages[beta.GroupID] = []api.Message{{ID: "m1", Index: 1, Text: "in beta", GroupID: beta.GroupID, State: api.StateCommitted}}
	})
	for _, tc := range []struct {
		args       []string
		wantStdout string // shows that the command reached beta
	}{
		{[]string{"send", "hi"}, ""}, // checked through lastSent
		{[]string{"messages"}, "in beta"},
		{[]string{"invite", bob.String()}, "INVITE-" + beta.GroupID},
		{[]string{"transcript", "-o", "-"}, `{"transcript":"` + beta.GroupID + `"}`},
	} {
		r := runDemes(t, nil, append(tc.args, "--home", f.home)...)
		wantExit(t, r, 1)
		wantStderr(t, r, "demes: error: this node is in 2 groups: "+`"alpha" (a1a1a1a1), "beta club" (b2b2b2b2)`,
			"demes: hint: choose one with --group NAME_OR_ID")

		r = runDemes(t, nil, append(tc.args, "--home", f.home, "--group", "beta club")...)
		wantExit(t, r, 0)
		if tc.wantStdout != "" && !strings.Contains(r.stdout, tc.wantStdout) {
			t.Errorf("demes %q --group 'beta club': stdout %q lacks %q", tc.args, r.stdout, tc.wantStdout)
		}
	}
	if got := f.lastSent().GroupID; got != beta.GroupID {
		t.Errorf("send --group 'beta club' sent to %s, want %s", got, beta.GroupID)
	}
}

func TestNoGroup(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	r := runDemes(t, nil, "messages", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, "this node is in no group", "demes group create")
}

func TestGroupsAndCreate(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	r := runDemes(t, nil, "groups", "--json", "--home", f.home)
	wantExit(t, r, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("groups --json with no groups = %q, want []", r.stdout)
	}

	r = runDemes(t, nil, "group", "create", "book club", "--home", f.home)
	wantExit(t, r, 0)
	if r.lastLine() != "gbook-club" {
		t.Errorf("group create printed %q", r.lastLine())
	}
	r = runDemes(t, nil, "group", "--json", "create", "--home", f.home, "chess")
	wantExit(t, r, 0)
	var g map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil || g["group_id"] != "gchess" || g["name"] != "chess" {
		t.Errorf("group create --json: %v, %v\n%s", g, err, r.stdout)
	}

	r = runDemes(t, nil, "groups", "--json", "--home", f.home)
	wantExit(t, r, 0)
	var gs []map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &gs); err != nil || len(gs) != 2 || gs[0]["group_id"] != "gbook-club" || gs[1]["name"] != "chess" {
		t.Errorf("groups --json: %v, %v\n%s", gs, err, r.stdout)
	}
	r = runDemes(t, nil, "groups", "--home", f.home)
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, "gbook-club  book club") {
		t.Errorf("groups:\n%s", r.stdout)
	}
}

func TestInviteAndJoin(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	r := runDemes(t, nil, "invite", bob.String(), "--home", f.home)
	wantExit(t, r, 0)
	if r.lastLine() != "INVITE-"+alpha.GroupID {
		t.Errorf("invite printed %q", r.lastLine())
	}
	f.locked(func() {
		if f.invites[0] != bob.String() {
			t.Errorf("invited %q, want %q", f.invites[0], bob)
		}
	})

	// A mistyped id is caught before the node is asked: bad usage.
	typo := bob.String()[:20] + "q" + bob.String()[21:]
	if typo == bob.String() {
		typo = bob.String()[:20] + "p" + bob.String()[21:]
	}
	r = runDemes(t, nil, "invite", typo, "--home", f.home)
	wantExit(t, r, 2)
	wantStderr(t, r, "checksum", "demes: hint: ")

	// An API error arrives with its hint.
	r = runDemes(t, nil, "invite", bob.String(), "--group", "nope", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, `no group "nope"`)

	// join checks the code itself before it asks the node (a real code
	// is signed: join.txtar joins with real nodes), so what is no code
	// is bad usage, and the node is never asked.
	j := newFakeAPI(t)
	r = runDemes(t, nil, "join", "garbage", "--home", j.home)
	wantExit(t, r, 2)
	wantStderr(t, r, `demes: error: "garbage" is not an invite code`, "demes: hint: paste the whole code")
	j.locked(func() {
		if j.joins > 0 {
			t.Errorf("the node was asked to join with %d codes that are none", j.joins)
		}
	})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	r := runDemes(t, nil, "status", "--json", "--home", f.home)
	wantExit(t, r, 0)
	var st struct {
		PublicID string `json:"public_id"`
		Groups   []struct {
			GroupID    string   `json:"group_id"`
			Name       string   `json:"name"`
			Host       string   `json:"host"`
			Term       uint64   `json:"term"`
			Preference []string `json:"preference"`
			Members    []struct {
				PublicID string  `json:"public_id"`
				Name     string  `json:"name"`
				Voter    bool    `json:"voter"`
				Online   bool    `json:"online"`
				RTT      float64 `json:"rtt_ms"`
			} `json:"members"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.PublicID != alice.String() || len(st.Groups) != 1 || st.Groups[0].Host != bob.String() ||
		st.Groups[0].Term != 7 || len(st.Groups[0].Members) != 2 || st.Groups[0].Members[1].RTT != 12.5 {
		t.Errorf("status --json: %+v", st)
	}

	r = runDemes(t, nil, "status", "--home", f.home)
	wantExit(t, r, 0)
	for _, want := range []string{"Alice", "alpha", bob.Fingerprint(), "term", "7", "voter", "online", "12.5 ms", "host", "you", "follower"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestTranscript(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	out := filepath.Join(t.TempDir(), "t.json")
	r := runDemes(t, nil, "transcript", "-o", out, "--home", f.home)
	wantExit(t, r, 0)
	b, err := os.ReadFile(out)
	if err != nil || string(b) != `{"transcript":"a1a1a1a1"}`+"\n" {
		t.Errorf("transcript file: %q, %v", b, err)
	}
	if st, _ := os.Stat(out); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("transcript mode %04o, want 0600 (it holds the messages in the clear)", st.Mode().Perm())
	}
	r = runDemes(t, nil, "transcript", "--home", f.home, "-o", "-")
	wantExit(t, r, 0)
	if r.stdout != `{"transcript":"a1a1a1a1"}`+"\n" {
		t.Errorf("transcript -o -: %q", r.stdout)
	}
}

func TestWrongToken(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, alpha)
	os.WriteFile(filepath.Join(f.home, "token"), []byte("stale"), 0o600)
	r := runDemes(t, nil, "status", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, "missing or wrong token", "demes: hint: ", "demes serve --home "+f.home)
	if strings.Contains(r.stderr, "stale") {
		t.Error("the token appears in the error")
	}
	// The hint of the real API's refusal is for an HTTP client; the CLI
	// sends the token itself, so a person gets the CLI's hint.
	f.locked(func() { f.authHint = "send Authorization: Bearer TOKEN with the token that demes serve printed" })
	r = runDemes(t, nil, "status", "--home", f.home)
	wantExit(t, r, 1)
	wantStderr(t, r, "demes: hint: the token in "+filepath.Join(f.home, "token")+" is not the running node's")
	if strings.Contains(r.stderr, "Authorization") {
		t.Errorf("the CLI passes on the API's hint for HTTP clients:\n%s", r.stderr)
	}
}

// TestStaleServeFileOtherNode: a serve killed without its cleanup leaves
// serve.json naming its UI port, which another node (of another home) may
// listen on since. That node refuses the home's token; the CLI must say that
// no serve runs for the home, not that the token is wrong.
func TestStaleServeFileOtherNode(t *testing.T) {
	t.Parallel()
	other := newFakeAPI(t, alpha)
	// A pid no process has any more.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip("no true to run:", err)
	}
	home := t.TempDir()
	wantExit(t, runDemes(t, nil, "keygen", "--home", home), 0)
	info, _ := json.Marshal(serveInfo{UIURL: other.srv.URL, PID: gone.Process.Pid})
	if err := os.WriteFile(filepath.Join(home, "serve.json"), info, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "token"), []byte("old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"send", "hi"}, {"messages"}} {
		r := runDemes(t, nil, append(args, "--home", home)...)
		wantExit(t, r, 1)
		wantStderr(t, r, "demes: error: no demes serve is running for home "+home,
			"demes: hint: start one with: demes serve --home "+home)
		if strings.Contains(r.stderr, "token") {
			t.Errorf("demes %q: a stale serve.json reads as a wrong token:\n%s", args, r.stderr)
		}
	}
}
