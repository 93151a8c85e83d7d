package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// fakeAPI is a stand-in for the local API of `demes serve`, enough to test
// the client side of the node commands: it answers like package web does
// (see web/doc.go) and records what it was asked.
type fakeAPI struct {
	t     *testing.T
	home  string
	token string
	srv   *httptest.Server

	mu        sync.Mutex
	groups    []api.GroupInfo
	messages  map[string][]api.Message
	sendState string // the state POST .../messages answers
	dropSend  bool   // POST .../messages closes the connection unanswered
	sendErr   string // POST .../messages answers 500 with this error
	sent      []sentMessage
	invites   []string
	pages     int // page queries answered
}

type sentMessage struct {
	GroupID   string
	Text      string `json:"text"`
	TimeoutMS int64  `json:"timeout_ms"`
}

var (
	alice = mustID(1)
	bob   = mustID(2)
)

func mustID(b byte) identity.PublicID {
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		panic(err)
	}
	return id.Public()
}

// newFakeAPI starts the fake and writes serve.json and token into a new home,
// as serve does.
func newFakeAPI(t *testing.T, groups ...api.GroupInfo) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		t:         t,
		home:      t.TempDir(),
		token:     "test-token-0123456789",
		groups:    groups,
		messages:  map[string][]api.Message{},
		sendState: api.StateCommitted,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", f.status)
	mux.HandleFunc("GET /api/v1/groups", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		reply(w, http.StatusOK, f.groups)
	})
	mux.HandleFunc("POST /api/v1/groups", f.createGroup)
	mux.HandleFunc("POST /api/v1/groups/{group}/invites", f.invite)
	mux.HandleFunc("POST /api/v1/join", f.join)
	mux.HandleFunc("POST /api/v1/groups/{group}/messages", f.send)
	mux.HandleFunc("GET /api/v1/groups/{group}/messages", f.listMessages)
	mux.HandleFunc("GET /api/v1/groups/{group}/transcript", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.group(w, r); ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"transcript":"` + r.PathValue("group") + `"}` + "\n"))
		}
	})
	f.srv = httptest.NewServer(f.auth(mux))
	t.Cleanup(f.srv.Close)
	writeServeFiles(t, f.home, f.srv.URL, f.token)
	return f
}

func writeServeFiles(t *testing.T, home, url, token string) {
	t.Helper()
	info, _ := json.Marshal(serveInfo{UIURL: url, PID: os.Getpid()})
	if err := os.WriteFile(filepath.Join(home, "serve.json"), info, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func replyError(w http.ResponseWriter, code int, msg, hint string) {
	reply(w, code, map[string]string{"error": msg, "hint": hint})
}

// auth checks what package web checks: the token, and JSON on POST.
func (f *fakeAPI) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			replyError(w, http.StatusUnauthorized, "missing or wrong token", "")
			return
		}
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
			replyError(w, http.StatusUnsupportedMediaType, "want application/json", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeAPI) group(w http.ResponseWriter, r *http.Request) (api.GroupInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.groups {
		if g.GroupID == r.PathValue("group") {
			return g, true
		}
	}
	replyError(w, http.StatusNotFound, "no group "+r.PathValue("group"), "list the groups with: demes groups")
	return api.GroupInfo{}, false
}

func (f *fakeAPI) status(w http.ResponseWriter, r *http.Request) {
	st := api.Status{
		PublicID:    alice.String(),
		Name:        "Alice",
		Fingerprint: alice.Fingerprint(),
		PeerURL:     "http://127.0.0.1:7000",
		Running:     true,
	}
	f.mu.Lock()
	for _, g := range f.groups {
		st.Groups = append(st.Groups, api.GroupStatus{
			GroupID:    g.GroupID,
			Name:       g.Name,
			Host:       bob.String(),
			Term:       7,
			Preference: []string{bob.String(), alice.String()},
			Members: []api.Member{
				{PublicID: alice.String(), Name: "Alice", Fingerprint: alice.Fingerprint(), Voter: true, Online: true, Self: true},
				{PublicID: bob.String(), Fingerprint: bob.Fingerprint(), Voter: true, Online: true, RTTMillis: 12.5, Host: true},
			},
			Committed: 3,
			HasQuorum: true,
			Role:      "follower",
		})
	}
	f.mu.Unlock()
	reply(w, http.StatusOK, st)
}

func (f *fakeAPI) createGroup(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name string }
	json.NewDecoder(r.Body).Decode(&req)
	g := api.GroupInfo{GroupID: "g" + strings.ReplaceAll(req.Name, " ", "-"), Name: req.Name}
	f.mu.Lock()
	f.groups = append(f.groups, g)
	f.mu.Unlock()
	reply(w, http.StatusOK, g)
}

func (f *fakeAPI) invite(w http.ResponseWriter, r *http.Request) {
	g, ok := f.group(w, r)
	if !ok {
		return
	}
	var req struct {
		PublicID string `json:"public_id"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	f.invites = append(f.invites, req.PublicID)
	f.mu.Unlock()
	reply(w, http.StatusOK, map[string]string{"code": "INVITE-" + g.GroupID})
}

func (f *fakeAPI) join(w http.ResponseWriter, r *http.Request) {
	var req struct{ Code string }
	json.NewDecoder(r.Body).Decode(&req)
	id, ok := strings.CutPrefix(req.Code, "INVITE-")
	if !ok {
		replyError(w, http.StatusBadRequest, "invalid invite code", "ask for a new invite")
		return
	}
	g := api.GroupInfo{GroupID: id, Name: "joined"}
	f.mu.Lock()
	f.groups = append(f.groups, g)
	f.mu.Unlock()
	reply(w, http.StatusOK, g)
}

func (f *fakeAPI) send(w http.ResponseWriter, r *http.Request) {
	g, ok := f.group(w, r)
	if !ok {
		return
	}
	var req sentMessage
	json.NewDecoder(r.Body).Decode(&req)
	req.GroupID = g.GroupID
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dropSend {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if f.sendErr != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(api.ErrorResponse{Error: f.sendErr})
		return
	}
	f.sent = append(f.sent, req)
	m := api.Message{
		ID:      "m" + strings.Repeat("0", 30) + string(rune('0'+len(f.sent))),
		Author:  alice.String(),
		Name:    "Alice",
		Text:    req.Text,
		SentAt:  time.Now(),
		State:   f.sendState,
		GroupID: g.GroupID,
	}
	code := http.StatusOK
	if f.sendState == api.StateCommitted {
		m.Index = uint64(len(f.messages[g.GroupID]) + 1)
		f.messages[g.GroupID] = append(f.messages[g.GroupID], m)
	} else {
		code = http.StatusAccepted
	}
	reply(w, code, m)
}

func (f *fakeAPI) listMessages(w http.ResponseWriter, r *http.Request) {
	g, ok := f.group(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	if !q.Has("limit") && !q.Has("before") {
		reply(w, http.StatusOK, f.messages[g.GroupID])
		return
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	p, err := api.Page(f.messages[g.GroupID], limit, q.Get("before"))
	if err != nil {
		reply(w, http.StatusNotFound, api.ErrorResponse{Error: err.Error(), Hint: "see the ids"})
		return
	}
	f.pages++
	reply(w, http.StatusOK, p)
}

// locked runs fn with the fake's state locked: the binary's requests are
// served on other goroutines.
func (f *fakeAPI) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeAPI) lastSent() sentMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		f.t.Fatal("nothing was sent")
	}
	return f.sent[len(f.sent)-1]
}

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

	cmds := [][]string{
		{"status"}, {"groups"}, {"send", "hi"}, {"messages"}, {"group", "create", "x"},
		{"invite", bob.String()}, {"join", "CODE"}, {"transcript", "-o", filepath.Join(t.TempDir(), "t.json")},
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

	j := newFakeAPI(t)
	r = runDemes(t, nil, "join", "INVITE-"+alpha.GroupID, "--home", j.home)
	wantExit(t, r, 0)
	if r.lastLine() != alpha.GroupID {
		t.Errorf("join printed %q", r.lastLine())
	}
	r = runDemes(t, nil, "join", "--json", "INVITE-x", "--home", j.home)
	wantExit(t, r, 0)
	var g map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil || g["group_id"] != "x" {
		t.Errorf("join --json: %v, %v\n%s", g, err, r.stdout)
	}
	r = runDemes(t, nil, "join", "garbage", "--home", j.home)
	wantExit(t, r, 1)
	wantStderr(t, r, "demes: error: invalid invite code", "demes: hint: ask for a new invite")
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
}
