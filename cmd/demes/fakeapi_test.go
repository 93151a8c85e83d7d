package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	pages     int    // page queries answered
	joins     int    // join requests answered
	authHint  string // the hint of the refusal of a wrong token
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
			f.mu.Lock()
			hint := f.authHint
			f.mu.Unlock()
			replyError(w, http.StatusUnauthorized, "missing or wrong token", hint)
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

// join counts the requests and refuses each: demes join checks its code
// before it asks, and a real code is signed, which the fake's are not
// (join.txtar joins with real nodes).
func (f *fakeAPI) join(w http.ResponseWriter, r *http.Request) {
	f.locked(func() { f.joins++ })
	replyError(w, http.StatusBadRequest, "invalid invite code", "ask for a new invite")
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
