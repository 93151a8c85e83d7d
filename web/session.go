package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/demes/demes/api"
)

// The browser page never sends the API token. It proves that it knows the
// token, and asks the node to prove the same, before it sends anything
// secret, and then uses a session that lives as long as this process:
//
//	page -> node  POST /api/v1/session/challenge {"page_nonce": P}
//	node -> page  {"node_nonce": N, "node_proof": HMAC(token, "demes-ui-session-v1 node\n" H "\n" P "\n" N)}
//	page -> node  POST /api/v1/session {"page_nonce": P, "node_nonce": N,
//	                                    "page_proof": HMAC(token, "demes-ui-session-v1 page\n" H "\n" P "\n" N)}
//	node -> page  {"session": S}
//
// where H is the host and port the page is at (location.host; the node
// takes the Host header, which ServeHTTP checked is one of its own).
//
// Why: while the node is down (a crash, an upgrade, systemd's restart
// delay) any user of the machine may listen on the UI's fixed port, and an
// open page goes on calling it. With the token in its requests, the page
// handed that user the token, which the next serve of the home takes up
// again. Now whatever listens there gets a page nonce, which it cannot
// answer without the token, and at most a session id of a process that is
// gone: sessions live in this process's memory only. The page checks the
// node's proof before it sends its own, so a squatter cannot have the page
// answer a challenge it forwards to the real node either: a node that
// answers elsewhere (the squatter took its port, so it runs on another)
// proves and expects proofs for its own address, not the page's (and the
// labels differ, so neither proof can be reflected as the other). What
// H cannot tell apart is two listeners on one port at different loopback
// addresses: a page at localhost:PORT may reach [::1]:PORT, which anyone
// may bind while the node has 127.0.0.1:PORT alone; so demes serve holds
// both (cmd/demes listenUI).
//
// The CLI and scripts still send the token itself: the CLI checks first
// that serve.json's process is alive (cmd/demes), and a script's user
// chose its address.

const (
	sessionNodeLabel = "demes-ui-session-v1 node\n"
	sessionPageLabel = "demes-ui-session-v1 page\n"

	// maxChallenges bounds the challenges waiting for their answer, and
	// challengeTTL how long one waits: anyone local may ask for one, and a
	// page answers within a round trip and an HMAC.
	maxChallenges = 64
	challengeTTL  = 30 * time.Second
	// maxSessions bounds the sessions a process keeps: a page opens one
	// per load and per node restart, so 256 is many tabs. The oldest goes
	// first; its page opens another on its next request.
	maxSessions = 256
)

// nonceRE is what a nonce and a proof look like: base64url without
// padding of 16 to 64 bytes.
var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22,86}$`)

// sessions holds the challenges waiting for an answer and the sessions
// opened, both in memory only.
type sessions struct {
	key []byte // the token: the HMAC key both sides know

	mu         sync.Mutex
	challenges map[string]challenge // by node nonce
	live       map[[sha256.Size]byte]uint64
	next       uint64 // age of the next session, for evicting the oldest
	now        func() time.Time
}

type challenge struct {
	host string // the Host it was asked at
	page string
	at   time.Time
}

func newSessions(token string) *sessions {
	return &sessions{
		key:        []byte(token),
		challenges: map[string]challenge{},
		live:       map[[sha256.Size]byte]uint64{},
		now:        time.Now,
	}
}

// proof is HMAC-SHA256(token, label || host || "\n" || page || "\n" ||
// node), base64url.
func (s *sessions) proof(label, host, page, node string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label + host + "\n" + page + "\n" + node))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// valid reports whether id is a session this process opened.
func (s *sessions) valid(id string) bool {
	sum := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live[sum]
	return ok
}

// challenge answers a page's nonce, asked at host, with the node's nonce
// and proof.
func (s *sessions) challenge(host, page string) (node, proof string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	node = base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, c := range s.challenges {
		if now.Sub(c.at) > challengeTTL {
			delete(s.challenges, n)
		}
	}
	if len(s.challenges) >= maxChallenges {
		// Full of fresh ones: someone local is asking many times. Drop
		// the oldest; its page asks again (it cannot tell this from a
		// lost answer).
		var oldest string
		for n, c := range s.challenges {
			if oldest == "" || c.at.Before(s.challenges[oldest].at) {
				oldest = n
			}
		}
		delete(s.challenges, oldest)
	}
	s.challenges[node] = challenge{host: host, page: page, at: now}
	return node, s.proof(sessionNodeLabel, host, page, node), nil
}

// open checks a page's answer to a challenge and returns a new session, or
// the reason (for the log) it opened none. A challenge is answered once,
// rightly or not.
func (s *sessions) open(host, page, node, proof string) (string, string) {
	s.mu.Lock()
	c, ok := s.challenges[node]
	delete(s.challenges, node)
	s.mu.Unlock()
	switch {
	case !ok:
		return "", "session answer to no open challenge (expired, answered or never asked)"
	case s.now().Sub(c.at) > challengeTTL:
		return "", "session answer after the challenge expired"
	case subtle.ConstantTimeCompare([]byte(c.page), []byte(page)) != 1:
		return "", "session answer for another page nonce"
	case c.host != host:
		return "", "session answer at another host than its challenge"
	case !hmac.Equal([]byte(proof), []byte(s.proof(sessionPageLabel, host, page, node))):
		return "", "wrong session proof (the page does not know the token)"
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "no randomness for a session id: " + err.Error()
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) >= maxSessions {
		var oldest [sha256.Size]byte
		first := true
		for k, age := range s.live {
			if first || age < s.live[oldest] {
				oldest, first = k, false
			}
		}
		delete(s.live, oldest)
	}
	s.live[sha256.Sum256([]byte(id))] = s.next
	s.next++
	return id, ""
}

// sessionRequest is the body of both session routes.
type sessionRequest struct {
	PageNonce string `json:"page_nonce"`
	NodeNonce string `json:"node_nonce,omitempty"`
	PageProof string `json:"page_proof,omitempty"`
}

// serveSession answers the two session routes, which need no token (they
// are how a page shows it has one). ServeHTTP has checked Host, Origin and
// Sec-Fetch-Site already.
func (h *handler) serveSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed on this route", "")
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		h.reject(w, r, http.StatusUnsupportedMediaType, "request body must be JSON",
			"send Content-Type: application/json", "session request without a JSON content type")
		return
	}
	var req sessionRequest
	if !h.decode(w, r, &req) {
		return
	}
	if !nonceRE.MatchString(req.PageNonce) {
		h.reject(w, r, http.StatusBadRequest, "page_nonce must be 16 to 64 random bytes in base64url",
			"", "malformed session page nonce")
		return
	}
	if r.URL.Path == api.RouteSessionChallenge {
		node, proof, err := h.sessions.challenge(strings.ToLower(r.Host), req.PageNonce)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "could not make a challenge: "+err.Error(), "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"node_nonce": node, "node_proof": proof})
		return
	}
	if !nonceRE.MatchString(req.NodeNonce) || !nonceRE.MatchString(req.PageProof) {
		h.reject(w, r, http.StatusBadRequest, "node_nonce and page_proof must be base64url",
			"", "malformed session answer")
		return
	}
	id, reason := h.sessions.open(strings.ToLower(r.Host), req.PageNonce, req.NodeNonce, req.PageProof)
	if id == "" {
		h.reject(w, r, http.StatusUnauthorized, "the page's proof of the access token is wrong",
			"open the address that demes ui prints", reason)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"session": id})
}
