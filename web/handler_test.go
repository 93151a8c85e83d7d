package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// newReq builds an API request as the UI sends it: right Host, bearer
// token, JSON body. Tests then spoil one thing.
func newReq(u *testUI, method, path, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://"+u.Addr+path, rd)
	r.Header.Set("Authorization", "Bearer "+u.Token)
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func serve(u *testUI, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	u.h.ServeHTTP(rec, r)
	return rec
}

// decodeError checks that an error answer is {"error": ..., "hint"?}.
func decodeError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, rec.Body.String())
	}
	if body["error"] == "" {
		t.Fatalf("error body has no error: %q", rec.Body.String())
	}
	for k := range body {
		if k != "error" && k != "hint" {
			t.Errorf("error body has unexpected field %q", k)
		}
	}
	return body["error"]
}

func friendsUI(t *testing.T) (*fakeWorld, string, *testUI) {
	t.Helper()
	w, gid := newFriends(t)
	return w, gid, startUI(t, w.node("alice"), nil)
}

func TestErrorMapping(t *testing.T) {
	w, gid, u := friendsUI(t)
	alice := w.node("alice")
	tests := []struct {
		err  error
		want int
		say  string // what the answer says ("" for the whole error)
		not  string // what it must not say
	}{
		{fmt.Errorf("group x: %w", api.ErrNotFound), http.StatusNotFound, "", ""},
		{fmt.Errorf("%w: text too long", api.ErrInvalid), http.StatusBadRequest, "", ""},
		// As the node wraps it: the reason, without the sentinel's
		// "invalid request" at the end of the line.
		// and without the node's own "ACTION: ", which "failed to"
		// says already ("failed to invite: invite: ...").
		{fmt.Errorf("send: message is 70000 bytes, the limit is 65536: %w", api.ErrInvalid), http.StatusBadRequest, "message is 70000 bytes, the limit is 65536", "send: message"},
		{fmt.Errorf("invite: bob is already a member: %w", api.ErrInvalid), http.StatusBadRequest, "bob is already a member", "invite: bob"},
		{fmt.Errorf("message 1a2b carries no file: %w", api.ErrNotFound), http.StatusNotFound, "message 1a2b carries no file", "not found"},
		{fmt.Errorf("no file message 1a2b in the group's order: %w", api.ErrUnknownMessage), http.StatusNotFound, "no file message 1a2b in the group's order", "message not found"},
		{api.ErrStopped, http.StatusServiceUnavailable, "", ""},
		{errors.New("disk on fire"), http.StatusInternalServerError, "", ""},
	}
	calls := []struct {
		method, path, body string
	}{
		{"POST", "/api/v1/groups", `{"name":"g"}`},
		{"POST", "/api/v1/groups/" + gid + "/invites", `{"public_id":"` + w.node("dave").pub.String() + `"}`},
		{"POST", "/api/v1/join", `{"code":"c"}`},
		{"POST", "/api/v1/groups/" + gid + "/messages", `{"text":"hi"}`},
		{"GET", "/api/v1/groups/" + gid + "/messages", ""},
		{"GET", "/api/v1/groups/" + gid + "/transcript", ""},
	}
	for _, tt := range tests {
		for _, c := range calls {
			t.Run(fmt.Sprintf("%d %s %s", tt.want, c.method, c.path), func(t *testing.T) {
				alice.failNextCall(tt.err)
				rec := serve(u, newReq(u, c.method, c.path, c.body))
				if rec.Code != tt.want {
					t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
				}
				say := tt.say
				if say == "" {
					say = tt.err.Error()
				}
				if msg := decodeError(t, rec); !strings.HasSuffix(msg, ": "+say) && msg != say {
					t.Errorf("error %q does not end with %q", msg, say)
				} else if tt.not != "" && strings.Contains(msg, ": "+tt.not) {
					t.Errorf("error %q says %q", msg, tt.not)
				}
			})
		}
	}
	// Without injected errors, the fake answers 404 for groups it does not know.
	rec := serve(u, newReq(u, "GET", "/api/v1/groups/0000/messages", ""))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown group: status %d, want 404", rec.Code)
	}
	if !strings.Contains(u.logs.String(), "disk on fire") {
		t.Errorf("a 500 was not logged:\n%s", u.logs.String())
	}
}

func TestBadBodies(t *testing.T) {
	_, gid, u := friendsUI(t)
	msgs := "/api/v1/groups/" + gid + "/messages"
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"unknown field", msgs, `{"text":"hi","colour":"red"}`, 400},
		{"not JSON", msgs, `text=hi`, 400},
		{"two values", msgs, `{"text":"hi"}{"text":"again"}`, 400},
		{"wrong type", msgs, `{"text":5}`, 400},
		{"empty body", msgs, ``, 400},
		{"empty text", msgs, `{"text":"  \n"}`, 400},
		{"negative timeout", msgs, `{"text":"hi","timeout_ms":-1}`, 400},
		{"too large", msgs, `{"text":"` + strings.Repeat("x", 200<<10) + `"}`, 413},
		{"empty group name", "/api/v1/groups", `{"name":" "}`, 400},
		{"bad public id", "/api/v1/groups/" + gid + "/invites", `{"public_id":"demes1nope"}`, 400},
		{"age recipient is not a public id", "/api/v1/groups/" + gid + "/invites", `{"public_id":"age1qqqq"}`, 400},
		{"empty invite code", "/api/v1/join", `{"code":""}`, 400},
		{"wrong method", "/api/v1/status", `{}`, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(u, newReq(u, "POST", tt.path, tt.body))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
			decodeError(t, rec)
		})
	}
}

// getJSON GETs path and decodes the answer into a generic value, to check
// field names as a script sees them.
func getJSON(t *testing.T, u *testUI, path string) any {
	t.Helper()
	rec := serve(u, newReq(u, "GET", path, ""))
	if rec.Code != 200 {
		t.Fatalf("GET %s: status %d: %s", path, rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

func keys(t *testing.T, v any) string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %v", v)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

func TestJSONShapes(t *testing.T) {
	w, gid, u := friendsUI(t)

	// A node in no group lists [] (not null), and its status has [] and {}.
	dave := startUI(t, w.node("dave"), nil)
	if rec := serve(dave, newReq(dave, "GET", "/api/v1/groups", "")); strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("groups of a node in no group = %q, want []", rec.Body.String())
	}
	st := getJSON(t, dave, "/api/v1/status").(map[string]any)
	if g, ok := st["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("status groups = %v, want []", st["groups"])
	}
	if got, want := keys(t, st), "fingerprint,groups,name,peer_url,public_id,read_receipts,rejected,running,version"; got != want {
		t.Errorf("status fields %s, want %s", got, want)
	}

	st = getJSON(t, u, "/api/v1/status").(map[string]any)
	g := st["groups"].([]any)[0].(map[string]any)
	if got, want := keys(t, g), "admin,can_invite,committed,edges,forward_secrecy,group_id,has_quorum,host,joined_at,members,name,preference,queued,role,settings,term"; got != want {
		t.Errorf("group status fields %s, want %s", got, want)
	}
	bob := g["members"].([]any)[1].(map[string]any)
	if got, want := keys(t, bob), "admin,fingerprint,host,name,online,peer_url,public_id,rtt_ms,safety_number,self,voter"; got != want {
		t.Errorf("member fields %s, want %s", got, want)
	}
	if got, want := keys(t, g["edges"].([]any)[0]), "a,b,rtt_ms"; got != want {
		t.Errorf("edge fields %s, want %s", got, want)
	}

	groups := getJSON(t, u, "/api/v1/groups").([]any)
	if len(groups) != 1 || keys(t, groups[0]) != "group_id,name" {
		t.Errorf("groups = %v", groups)
	}
	if m := getJSON(t, u, "/api/v1/groups/"+gid+"/messages").([]any); len(m) != 0 {
		t.Errorf("messages of a new group = %v, want []", m)
	}

	// Sending: 200 and committed with a quorum; the default wait is 10 s.
	rec := serve(u, newReq(u, "POST", "/api/v1/groups/"+gid+"/messages", `{"text":"hello"}`))
	if rec.Code != 200 {
		t.Fatalf("send: %d %s", rec.Code, rec.Body.String())
	}
	var sent map[string]any
	json.Unmarshal(rec.Body.Bytes(), &sent)
	if got, want := keys(t, sent), "author,group_id,id,index,name,sent_at,state,text"; got != want {
		t.Errorf("message fields %s, want %s", got, want)
	}
	if sent["state"] != "committed" || sent["index"] != 1.0 || sent["text"] != "hello" || sent["author"] != w.node("alice").pub.String() {
		t.Errorf("sent message = %v", sent)
	}
	if _, err := time.Parse(time.RFC3339, sent["sent_at"].(string)); err != nil {
		t.Errorf("sent_at is not RFC 3339: %v", err)
	}
	alice := w.node("alice")
	w.mu.Lock()
	wait := alice.lastWait
	w.mu.Unlock()
	if wait != 10 {
		t.Errorf("default wait = %vs, want 10s", wait)
	}

	// Without a quorum: 202 and tentative once timeout_ms runs out.
	w.setQuorum(gid, false)
	rec = serve(u, newReq(u, "POST", "/api/v1/groups/"+gid+"/messages", `{"text":"later","timeout_ms":20}`))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("send without quorum: status %d, want 202: %s", rec.Code, rec.Body.String())
	}
	json.Unmarshal(rec.Body.Bytes(), &sent)
	if sent["state"] != "tentative" || sent["index"] != 0.0 {
		t.Errorf("tentative message = %v", sent)
	}
	list := getJSON(t, u, "/api/v1/groups/"+gid+"/messages").([]any)
	if len(list) != 2 || list[0].(map[string]any)["state"] != "committed" || list[1].(map[string]any)["state"] != "tentative" {
		t.Errorf("messages = %v, want the committed one, then the tentative one", list)
	}

	// Invites answer {"code", "state"} (a queued one: TestInviteQueued).
	rec = serve(u, newReq(u, "POST", "/api/v1/groups/"+gid+"/invites", `{"public_id":" `+w.node("dave").pub.String()+` "}`))
	var inv map[string]any
	json.Unmarshal(rec.Body.Bytes(), &inv)
	if rec.Code != 200 || keys(t, inv) != "code,state" || inv["code"] == "" || inv["state"] != "open" {
		t.Fatalf("invite: %d %s", rec.Code, rec.Body.String())
	}

	// Joining through it answers the group.
	rec = serve(dave, newReq(dave, "POST", "/api/v1/join", fmt.Sprintf(`{"code":%q}`, inv["code"])))
	var joined api.GroupInfo
	json.Unmarshal(rec.Body.Bytes(), &joined)
	if rec.Code != 200 || joined.GroupID != gid || joined.Name != "friends" {
		t.Fatalf("join: %d %s", rec.Code, rec.Body.String())
	}
}

func TestTranscript(t *testing.T) {
	w, gid, u := friendsUI(t)
	w.node("bob").Send(context.Background(), gid, "for the record", time.Second)
	rec := serve(u, newReq(u, "GET", "/api/v1/groups/"+gid+"/transcript", ""))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	if cd := rec.Header().Get("Content-Disposition"); cd != `attachment; filename="demes-transcript-`+gid+`.json"` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !json.Valid(rec.Body.Bytes()) || !strings.Contains(rec.Body.String(), "for the record") {
		t.Errorf("transcript = %s", rec.Body.String())
	}

	// A range goes to the node as the query names it (a time's "+"
	// escaped); the node's refusal of a range is a bad request, with how
	// to name one.
	rec = serve(u, newReq(u, "GET", "/api/v1/groups/"+gid+"/transcript?from=5&to=2026-12-04T15:04:05%2B01:00", ""))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"From": "5"`) || !strings.Contains(rec.Body.String(), `"To": "2026-12-04T15:04:05+01:00"`) {
		t.Errorf("range: %d %s", rec.Code, rec.Body.String())
	}
	rec = serve(u, newReq(u, "GET", "/api/v1/groups/"+gid+"/transcript?from=bad", ""))
	var e api.ErrorResponse
	json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != 400 || !strings.Contains(e.Error, `"bad" is no bound`) || strings.Contains(e.Error, "invalid request") || !strings.Contains(e.Hint, "message id") {
		t.Errorf("bad range: %d %s", rec.Code, rec.Body.String())
	}
}

func TestQR(t *testing.T) {
	_, _, u := friendsUI(t)
	r := newReq(u, "GET", "/api/v1/qr?text=demes1hello&token="+u.Token, "")
	r.Header.Del("Authorization") // as an <img> asks
	rec := serve(u, r)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("status %d, type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	img, err := png.Decode(rec.Body)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dx() != b.Dy() {
		t.Errorf("QR image is %v", b)
	}
	for _, text := range []string{"", strings.Repeat("x", maxQRText+1)} {
		rec := serve(u, newReq(u, "GET", "/api/v1/qr?text="+text, ""))
		if rec.Code != 400 {
			t.Errorf("QR of %d bytes: status %d, want 400", len(text), rec.Code)
		}
	}
}

func TestDemoRoutes(t *testing.T) {
	w, _, u := friendsUI(t)
	if got := getJSON(t, u, "/api/v1/demo").(map[string]any); got["enabled"] != false {
		t.Errorf("demo outside demo mode = %v", got)
	}
	for _, p := range []string{"/api/v1/node/stop", "/api/v1/node/start"} {
		if rec := serve(u, newReq(u, "POST", p, `{}`)); rec.Code != 404 {
			t.Errorf("%s outside demo mode: status %d, want 404", p, rec.Code)
		}
	}

	bob := w.node("bob")
	d := startUI(t, bob, bob)
	if got := getJSON(t, d, "/api/v1/demo").(map[string]any); got["enabled"] != true || got["running"] != true {
		t.Errorf("demo = %v", got)
	}
	rec := serve(d, newReq(d, "POST", "/api/v1/node/stop", `{}`))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"running":false`) {
		t.Fatalf("stop: %d %s", rec.Code, rec.Body.String())
	}
	if st := getJSON(t, d, "/api/v1/status").(map[string]any); st["running"] != false {
		t.Errorf("status after stop: running = %v", st["running"])
	}
	if rec := serve(d, newReq(d, "GET", "/api/v1/groups/x/messages", "")); rec.Code != 503 {
		t.Errorf("messages of a stopped node: status %d, want 503", rec.Code)
	}
	rec = serve(d, newReq(d, "POST", "/api/v1/node/start", `{}`))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"running":true`) {
		t.Fatalf("start: %d %s", rec.Code, rec.Body.String())
	}
}

func TestNewToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b {
		t.Fatal("two tokens are equal")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q: %d bytes, %v", a, len(raw), err)
	}
}

func TestNewHandlerRefusesBadConfig(t *testing.T) {
	w, _ := newFriends(t)
	good := Config{Backend: w.node("alice"), Token: "t", Addr: "127.0.0.1:8080"}
	for name, mutate := range map[string]func(*Config){
		"no backend": func(c *Config) { c.Backend = nil },
		"no token":   func(c *Config) { c.Token = "" },
		"no addr":    func(c *Config) { c.Addr = "" },
		"port 0":     func(c *Config) { c.Addr = "127.0.0.1:0" },
		"no port":    func(c *Config) { c.Addr = "127.0.0.1" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			mutate(&cfg)
			defer func() {
				if recover() == nil {
					t.Error("NewHandler accepted the config")
				}
			}()
			NewHandler(cfg)
		})
	}
	NewHandler(good) // and the good one works
}

func TestInviteChecksPublicIDFirst(t *testing.T) {
	w, gid, u := friendsUI(t)
	id, _ := identity.FromSeed(bytes.Repeat([]byte{9}, 32))
	// An injected failure that a valid id would hit: a bad id must not reach the backend.
	w.node("alice").failNextCall(errors.New("backend reached"))
	rec := serve(u, newReq(u, "POST", "/api/v1/groups/"+gid+"/invites", `{"public_id":"`+id.Public().String()[:20]+`"}`))
	if rec.Code != 400 || strings.Contains(rec.Body.String(), "backend reached") {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
}
