package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The browser page's session (session.go): the node proves it knows the
// token before the page does, a proof is good once and for one challenge,
// and a session stands for the token only in the process that opened it.

// pageMAC is the page's side of the HMAC (api.js mac).
func pageMAC(token, label, host, page, node string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label + host + "\n" + page + "\n" + node))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionPost posts body to a session route as the page does: no token.
func sessionPost(t *testing.T, u *testUI, path string, body any) (int, map[string]string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r := newReq(u, http.MethodPost, path, string(b))
	r.Header.Del("Authorization")
	rec := serve(u, r)
	var out map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s answered %d, not JSON: %q", path, rec.Code, rec.Body.String())
	}
	return rec.Code, out
}

// challengeNode asks u for a challenge for page and checks the node's proof.
func challengeNode(t *testing.T, u *testUI, token, page string) string {
	t.Helper()
	code, c := sessionPost(t, u, "/api/v1/session/challenge", map[string]string{"page_nonce": page})
	if code != http.StatusOK {
		t.Fatalf("challenge: %d %v", code, c)
	}
	if want := pageMAC(token, sessionNodeLabel, u.Addr, page, c["node_nonce"]); c["node_proof"] != want {
		t.Fatalf("the node's proof %q is not the HMAC of the token (%q)", c["node_proof"], want)
	}
	return c["node_nonce"]
}

// get asks path with auth in the Authorization header ("" for none).
func get(u *testUI, path, auth string) int {
	r := newReq(u, http.MethodGet, path, "")
	r.Header.Del("Authorization")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return serve(u, r).Code
}

func TestSession(t *testing.T) {
	w, _, u := friendsUI(t)
	page := strings.Repeat("p", 43)

	// A proof made with another token, for another page nonce, or with the
	// node's label (a reflection of the node's own proof) opens nothing,
	// and spends the challenge.
	wrong := strings.Repeat("A", len(u.Token))
	other := strings.Repeat("q", 43)
	never := strings.Repeat("n", 43)
	for name, answer := range map[string]func(node string) map[string]string{
		"another token": func(node string) map[string]string {
			return map[string]string{"page_nonce": page, "node_nonce": node, "page_proof": pageMAC(wrong, sessionPageLabel, u.Addr, page, node)}
		},
		"the node's label": func(node string) map[string]string {
			return map[string]string{"page_nonce": page, "node_nonce": node, "page_proof": pageMAC(u.Token, sessionNodeLabel, u.Addr, page, node)}
		},
		"another page nonce": func(node string) map[string]string {
			return map[string]string{"page_nonce": other, "node_nonce": node, "page_proof": pageMAC(u.Token, sessionPageLabel, u.Addr, other, node)}
		},
		"another address": func(node string) map[string]string {
			// As the page answers at a squatter's port what the squatter
			// hands on from the node at another.
			return map[string]string{"page_nonce": page, "node_nonce": node, "page_proof": pageMAC(u.Token, sessionPageLabel, "127.0.0.1:1", page, node)}
		},
		"a challenge never made": func(string) map[string]string {
			return map[string]string{"page_nonce": page, "node_nonce": never, "page_proof": pageMAC(u.Token, sessionPageLabel, u.Addr, page, never)}
		},
		"a malformed proof": func(node string) map[string]string {
			return map[string]string{"page_nonce": page, "node_nonce": node, "page_proof": "not base64url!"}
		},
		"no answer": func(string) map[string]string { return map[string]string{"page_nonce": page} },
	} {
		node := challengeNode(t, u, u.Token, page)
		code, out := sessionPost(t, u, "/api/v1/session", answer(node))
		if code == http.StatusOK || out["session"] != "" {
			t.Errorf("%s: a session opened: %v", name, out)
		}
		if name == "another token" || name == "the node's label" || name == "another address" {
			// The challenge is spent: the right answer no longer opens one.
			right := map[string]string{"page_nonce": page, "node_nonce": node, "page_proof": pageMAC(u.Token, sessionPageLabel, u.Addr, page, node)}
			if code, out := sessionPost(t, u, "/api/v1/session", right); code == http.StatusOK {
				t.Errorf("%s: the challenge was still open after a wrong answer: %v", name, out)
			}
		}
	}

	// The right answer opens a session, once.
	node := challengeNode(t, u, u.Token, page)
	ans := map[string]string{"page_nonce": page, "node_nonce": node, "page_proof": pageMAC(u.Token, sessionPageLabel, u.Addr, page, node)}
	code, out := sessionPost(t, u, "/api/v1/session", ans)
	if code != http.StatusOK || out["session"] == "" {
		t.Fatalf("the right answer: %d %v", code, out)
	}
	id := out["session"]
	if code, again := sessionPost(t, u, "/api/v1/session", ans); code != http.StatusUnauthorized || again["session"] != "" {
		t.Errorf("the same answer again: %d %v, want 401 (a challenge is answered once)", code, again)
	}

	// The session stands for the token: in the header, and in the query
	// of a GET (the event stream, images), not of a POST.
	if c := get(u, "/api/v1/status", "Bearer "+id); c != http.StatusOK {
		t.Errorf("status with the session: %d", c)
	}
	if c := get(u, "/api/v1/status?session="+id, ""); c != http.StatusOK {
		t.Errorf("status with the session in the query: %d", c)
	}
	r := newReq(u, http.MethodPost, "/api/v1/groups?session="+id, `{"name":"x"}`)
	r.Header.Del("Authorization")
	if c := serve(u, r).Code; c != http.StatusUnauthorized {
		t.Errorf("a POST with the session in the query: %d, want 401", c)
	}
	// The token still works (the CLI sends it).
	if c := get(u, "/api/v1/status", "Bearer "+u.Token); c != http.StatusOK {
		t.Errorf("status with the token: %d", c)
	}

	// Another process of the same home (the same token) knows none of
	// this one's sessions.
	next := &testUI{Addr: u.Addr, Token: u.Token,
		h: newHandler(Config{Backend: w.node("alice"), Token: u.Token, Addr: u.Addr, Logger: u.h.log})}
	if c := get(next, "/api/v1/status", "Bearer "+id); c != http.StatusUnauthorized {
		t.Errorf("the session at the next process: %d, want 401", c)
	}
	if c := get(next, "/api/v1/events?session="+id, ""); c != http.StatusUnauthorized {
		t.Errorf("the event stream with the session at the next process: %d, want 401", c)
	}
	if strings.Contains(u.logs.String(), u.Token) || strings.Contains(u.logs.String(), id) {
		t.Errorf("the token or a session reached the log:\n%s", u.logs.String())
	}
}

// TestSessionBounds: anyone local may ask for challenges; they are kept
// for challengeTTL and at most maxChallenges, and at most maxSessions
// sessions are kept, the oldest going first.
func TestSessionBounds(t *testing.T) {
	s := newSessions("tok")
	const host = "127.0.0.1:7947"
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	page := strings.Repeat("p", 43)
	first, _, err := s.challenge(host, page)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3*maxChallenges; i++ {
		now = now.Add(time.Millisecond)
		if _, _, err := s.challenge(host, page); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.challenges); n > maxChallenges {
		t.Errorf("%d challenges kept, want at most %d", n, maxChallenges)
	}
	if id, _ := s.open(host, page, first, s.proof(sessionPageLabel, host, page, first)); id != "" {
		t.Error("the oldest challenge was still answerable after the table filled")
	}

	late, _, _ := s.challenge(host, page)
	now = now.Add(challengeTTL + time.Second)
	if id, reason := s.open(host, page, late, s.proof(sessionPageLabel, host, page, late)); id != "" {
		t.Error("an expired challenge opened a session")
	} else if !strings.Contains(reason, "expired") {
		t.Errorf("expired challenge: reason %q", reason)
	}

	var ids []string
	for i := 0; i < maxSessions+1; i++ {
		node, _, _ := s.challenge(host, page)
		id, reason := s.open(host, page, node, s.proof(sessionPageLabel, host, page, node))
		if id == "" {
			t.Fatal(reason)
		}
		ids = append(ids, id)
	}
	if len(s.live) != maxSessions {
		t.Errorf("%d sessions kept, want %d", len(s.live), maxSessions)
	}
	if s.valid(ids[0]) || !s.valid(ids[1]) || !s.valid(ids[maxSessions]) {
		t.Error("not the oldest session went when the table was full")
	}
}

// TestSessionRoutesRefuseOtherSites: the session routes need no token,
// but the checks before it still apply: a page of another site (an
// Origin or a Sec-Fetch-Site of its own, a rebound name in Host) or an
// HTML form (no JSON) neither gets a challenge nor fills the node's table
// of them, which would drop the challenges of the node's own page.
func TestSessionRoutesRefuseOtherSites(t *testing.T) {
	_, _, u := friendsUI(t)
	body := `{"page_nonce":"` + strings.Repeat("p", 43) + `"}`
	for name, edit := range map[string]func(r *http.Request){
		"another origin":     func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") },
		"a null origin":      func(r *http.Request) { r.Header.Set("Origin", "null") },
		"cross-site":         func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"a rebound name":     func(r *http.Request) { r.Host = "evil.example:" + strings.Split(u.Addr, ":")[1] },
		"a form":             func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") },
		"a GET":              func(r *http.Request) { r.Method = http.MethodGet },
		"an urlencoded form": func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
	} {
		for _, path := range []string{"/api/v1/session/challenge", "/api/v1/session"} {
			r := newReq(u, http.MethodPost, path, body)
			r.Header.Del("Authorization")
			edit(r)
			if rec := serve(u, r); rec.Code == http.StatusOK || strings.Contains(rec.Body.String(), "node_nonce") {
				t.Errorf("%s at %s: %d %s", name, path, rec.Code, rec.Body.String())
			}
		}
	}
	u.h.sessions.mu.Lock()
	defer u.h.sessions.mu.Unlock()
	if n := len(u.h.sessions.challenges); n != 0 {
		t.Errorf("%d challenges made for other sites", n)
	}
}
