package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
	"github.com/skip2/go-qrcode"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
)

// Backend is what the web layer needs from a node, declared here where it is
// used so that web does not depend on package node (node.Service satisfies
// it; cmd/demes checks that at compile time). Methods that take a context
// return when it ends; errors wrap [api.ErrNotFound], [api.ErrInvalid],
// [api.ErrForbidden] or [api.ErrStopped] where one applies, so the API can
// answer with the right status. A refusal (api.ErrForbidden) reads
// "ACTION: RULE[; FIX]: not allowed", RULE and FIX in plain words: the API
// shows them to the person as the error and its hint.
type Backend interface {
	// Status returns the node and all its groups.
	Status() api.Status
	// Groups lists the groups this node belongs to.
	Groups() []api.GroupInfo
	// CreateGroup creates a group with this node as its only member and host.
	CreateGroup(ctx context.Context, name string) (api.GroupInfo, error)
	// InviteFor authorizes publicID to join groupID for ttl (0: the
	// default, 7 days) and returns the invite code to give that person.
	InviteFor(ctx context.Context, groupID, publicID string, ttl time.Duration) (code string, err error)
	// Invites lists the group's open invites, oldest first.
	Invites(groupID string) ([]api.PendingInvite, error)
	// RevokeInvite revokes the open invite named by its code or its
	// invitee's public id; its inviter and the admins may.
	RevokeInvite(ctx context.Context, groupID, codeOrID string) error
	// SetAdmin grants or withdraws a member's admin role; admins may.
	SetAdmin(ctx context.Context, groupID, publicID string, admin bool) error
	// SetSettings changes the group's settings; admins may.
	SetSettings(ctx context.Context, groupID string, s api.GroupSettings) error
	// Rename renames the group; admins may.
	Rename(ctx context.Context, groupID, name string) error
	// Rekey asks the group for new sender keys (a suspected compromise).
	Rekey(ctx context.Context, groupID string) error
	// Reform continues a group halted after a fork in a successor group
	// without one member: it joins the successor another member offered
	// this node when its history matches, and otherwise starts one and
	// invites the other members. A group that is not halted is an
	// api.ErrInvalid.
	Reform(ctx context.Context, groupID string, req api.ReformRequest) (api.ReformResult, error)
	// Remove removes a member from the group; admins may.
	Remove(ctx context.Context, groupID, publicID string) error
	// Leave removes this node from the group. It keeps the history it has.
	Leave(ctx context.Context, groupID string) error
	// Reconnect points this node at a current member of the group (its
	// peer URL, or an invite code of the group) and returns once this node
	// has caught up from it: for a member that was away and knows no live
	// member's address.
	Reconnect(ctx context.Context, groupID, target string) (api.ReconnectResponse, error)
	// AddKeeper adds a keeper (its public id or peer URL) to the group: it
	// commits a keeper invite and, given a URL, hands the keeper its code.
	AddKeeper(ctx context.Context, groupID, target, id string) (api.KeeperResponse, error)
	// Join joins a group through an invite code. It returns once this node
	// is a member and has caught up with the group's log.
	Join(ctx context.Context, code string) (api.GroupInfo, error)
	// Send sends a chat message and waits up to wait for it to commit. The
	// returned message has State "committed", or "tentative" when the wait
	// ran out or the group cannot commit now, and the message waits in the
	// outbox (and went directly to the members online).
	Send(ctx context.Context, groupID, text string, wait time.Duration) (api.Message, error)
	// Post sends content as Send sends text: a reply, or a change (a
	// reaction, an edit or a delete) of a message in the group's order;
	// only a message's author may edit or delete it. A change answers
	// with its Kind and Target set.
	Post(ctx context.Context, groupID string, c content.Content, wait time.Duration) (api.Message, error)
	// SendFile encrypts the file r (size bytes, -1 if unknown) and sends
	// it as a file message; a file over the node's limit is an
	// api.ErrTooLarge (web/files.go).
	SendFile(ctx context.Context, groupID, name, mediaType string, size int64, r io.Reader, wait time.Duration) (api.Message, error)
	// OpenFile returns the attachment of a file message and its
	// plaintext, or an *api.NotReadyError while the node fetches it.
	OpenFile(ctx context.Context, groupID, messageID string) (api.Attachment, io.ReadCloser, error)
	// MessagePage returns a page of the group's messages (see
	// [api.MessagePage]): the committed ones in order, then the tentative
	// ones, at most limit of them (0: every one) right before the
	// message whose id is before (the newest when before is empty). An
	// unknown id before wraps [api.ErrNotFound]; the id of a change (a
	// reaction, an edit, a delete), [api.ErrInvalid].
	MessagePage(groupID string, limit int, before string) (api.MessagePage, error)
	// Search returns the group's messages whose text holds query, case
	// aside, the newest first, at most limit.
	Search(ctx context.Context, groupID, query string, limit int) ([]api.Message, error)
	// MarkRead marks the group read through the message messageID (in the
	// group's order) and returns the mark, which never goes back.
	MarkRead(ctx context.Context, groupID, messageID string) (uint64, error)
	// ReadReceipts reports whether the person shares read receipts;
	// SetReadReceipts turns them on or off.
	ReadReceipts() bool
	SetReadReceipts(on bool) error
	// Transcript returns the group's signed transcript as a JSON document:
	// with the messages of the range r only, when r names one (see
	// [api.TranscriptRange]).
	Transcript(ctx context.Context, groupID string, r api.TranscriptRange) ([]byte, error)
	// Subscribe returns a channel of events for the UI and a func that ends
	// the subscription. The backend may close the channel (for example when
	// the node stops); it must not block on a slow reader.
	Subscribe() (events <-chan api.Event, cancel func())
}

// Control stops and starts the node behind a [Backend], so that the demo can
// show failover from the node's own UI. It is nil outside demo mode.
type Control interface {
	// StopNode stops the node as if its process had died.
	StopNode() error
	// StartNode starts it again from its store.
	StartNode() error
	// Running reports whether the node runs.
	Running() bool
}

// Config configures [NewHandler].
type Config struct {
	// Backend is the node the API serves. Required.
	Backend Backend
	// Control, when set, enables the demo's stop and start buttons.
	Control Control
	// Backup, when set, serves copies of the node's store for `demes
	// backup`; without it the backup route answers 404.
	Backup StoreBackup
	// Token is the secret every API request must present, as made by
	// [NewToken]. Required.
	Token string
	// Addr is the UI listener's real address, host and port (after
	// listening, so not ":0"). Requests must name it, or a loopback name with
	// the same port, in their Host header. Required.
	Addr string
	// Logger receives rejected requests and backend failures.
	Logger zerolog.Logger
}

// Limits of the API.
const (
	maxBodyBytes    = 128 << 10 // request bodies
	maxQRText       = 2048      // the text of a QR code, in bytes
	qrModulePixels  = 4         // the side of a QR code's module, in pixels
	defaultSendWait = 10 * time.Second
	maxSendWait     = 2 * time.Minute
	pingInterval    = 15 * time.Second // keeps idle event streams open through proxies and timeouts
)

// NewToken returns a fresh API token: 32 random bytes, base64url without
// padding, so it can stand in a URL fragment or query unescaped.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to make API token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

//go:embed ui
var uiFiles embed.FS

// handler is the [http.Handler] that NewHandler returns.
type handler struct {
	backend Backend
	control Control
	backup  StoreBackup
	log     zerolog.Logger

	tokenHash [sha256.Size]byte // compared in constant time; hashing first hides the length too
	sessions  *sessions         // the browser page's sessions, which stand for the token
	hosts     map[string]bool   // allowed Host header values, lower case
	origins   map[string]bool   // allowed Origin header values, lower case

	router *mux.Router
	static http.Handler
	ping   time.Duration // event stream keep-alive; tests shorten it
}

// NewHandler returns the UI listener's handler: the API under /api/v1 and
// the embedded UI everywhere else, behind the checks described in the
// package documentation.
//
// It panics when cfg has no Backend, no Token, or an Addr without a real
// port: those are programming errors, and starting a UI listener that
// anyone could use, or nobody, would be worse.
func NewHandler(cfg Config) http.Handler {
	return newHandler(cfg)
}

func newHandler(cfg Config) *handler {
	if cfg.Backend == nil {
		panic("web: Config.Backend is nil")
	}
	if cfg.Token == "" {
		panic("web: Config.Token is empty")
	}
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || port == "" || port == "0" {
		panic(fmt.Sprintf("web: Config.Addr %q is not the listener's host:port", cfg.Addr))
	}
	h := &handler{
		backend:   cfg.Backend,
		control:   cfg.Control,
		backup:    cfg.Backup,
		log:       cfg.Logger,
		tokenHash: sha256.Sum256([]byte(cfg.Token)),
		sessions:  newSessions(cfg.Token),
		hosts:     map[string]bool{},
		origins:   map[string]bool{},
		ping:      pingInterval,
	}
	for _, host := range []string{
		net.JoinHostPort("127.0.0.1", port),
		net.JoinHostPort("localhost", port),
		net.JoinHostPort("::1", port),
		cfg.Addr,
	} {
		host = strings.ToLower(host)
		h.hosts[host] = true
		h.origins["http://"+host] = true
	}

	ui, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	h.static = http.FileServerFS(ui)

	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route", "see the routes in the package documentation of github.com/demes/demes/web")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed on this route", "")
	})
	// Full paths on one router, not a subrouter: gorilla/mux answers 404
	// instead of 405 for a wrong method on a subrouter's route. mux tries
	// the routes in this order, each with a regular expression, so the
	// messages come first: sending is most of the requests, and trying
	// the 17 routes before it cost about 1.5% of a loaded node's CPU
	// (demes bench throughput). No two routes match the same path.
	r.HandleFunc(api.RouteMessages, h.send).Methods(http.MethodPost)
	r.HandleFunc(api.RouteMessages, h.messages).Methods(http.MethodGet)
	r.HandleFunc(api.RouteStatus, h.getStatus).Methods(http.MethodGet)
	r.HandleFunc(api.RouteGroups, h.getGroups).Methods(http.MethodGet)
	r.HandleFunc(api.RouteGroups, h.createGroup).Methods(http.MethodPost)
	r.HandleFunc(api.RouteInvites, h.invite).Methods(http.MethodPost)
	r.HandleFunc(api.RouteInvites, h.invites).Methods(http.MethodGet)
	r.HandleFunc(api.RouteRevoke, h.revoke).Methods(http.MethodPost)
	r.HandleFunc(api.RouteLeave, h.leave).Methods(http.MethodPost)
	r.HandleFunc(api.RouteReconnect, h.reconnect).Methods(http.MethodPost)
	r.HandleFunc(api.RouteKeepers, h.addKeeper).Methods(http.MethodPost)
	r.HandleFunc(api.RouteRemove, h.remove).Methods(http.MethodPost)
	r.HandleFunc(api.RouteAdmins, h.setAdmin).Methods(http.MethodPost)
	r.HandleFunc(api.RouteSettings, h.settings).Methods(http.MethodGet)
	r.HandleFunc(api.RouteSettings, h.putSettings).Methods(http.MethodPut)
	r.HandleFunc(api.RouteRename, h.rename).Methods(http.MethodPost)
	r.HandleFunc(api.RouteRekey, h.rekey).Methods(http.MethodPost)
	r.HandleFunc(api.RouteReform, h.reform).Methods(http.MethodPost)
	r.HandleFunc(api.RouteJoin, h.join).Methods(http.MethodPost)
	r.HandleFunc(api.RouteSearch, h.search).Methods(http.MethodGet)
	r.HandleFunc(api.RouteReact, h.change(content.Reaction)).Methods(http.MethodPost)
	r.HandleFunc(api.RouteEdit, h.change(content.Edit)).Methods(http.MethodPost)
	r.HandleFunc(api.RouteDelete, h.change(content.Delete)).Methods(http.MethodPost)
	r.HandleFunc(api.RouteRead, h.markRead).Methods(http.MethodPost)
	r.HandleFunc(api.RouteFiles, h.sendFile).Methods(http.MethodPost)
	r.HandleFunc(api.RouteFile, h.file).Methods(http.MethodGet)
	r.HandleFunc(api.RoutePreferences, h.preferences).Methods(http.MethodGet)
	r.HandleFunc(api.RoutePreferences, h.putPreferences).Methods(http.MethodPut)
	r.HandleFunc(api.RouteTranscript, h.transcript).Methods(http.MethodGet)
	r.HandleFunc(api.RouteBackupStore, h.backupStore).Methods(http.MethodGet)
	r.HandleFunc(api.RouteEvents, h.events).Methods(http.MethodGet)
	r.HandleFunc(api.RouteQR, h.qr).Methods(http.MethodGet)
	r.HandleFunc(api.RouteDemo, h.demo).Methods(http.MethodGet)
	r.HandleFunc(api.RouteNodeStop, h.stopNode).Methods(http.MethodPost)
	r.HandleFunc(api.RouteNodeStart, h.startNode).Methods(http.MethodPost)
	h.router = r
	return h
}

// ServeHTTP applies the checks in order (Host and Origin for everything;
// then, for the API, Sec-Fetch-Site, the token and the content type) and
// passes the request on.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isAPI := strings.HasPrefix(r.URL.Path, "/api/")
	setSecurityHeaders(w.Header(), isAPI)
	if !h.hosts[strings.ToLower(r.Host)] {
		h.reject(w, r, http.StatusForbidden, "host not allowed",
			"open the UI at the address that demes serve printed", "Host header is not this listener (DNS rebinding?)")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !h.origins[strings.ToLower(origin)] {
		h.reject(w, r, http.StatusForbidden, "cross-origin request refused",
			"the local API only answers its own UI", "Origin header is not this listener (cross-site request)")
		return
	}
	if !isAPI {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r)
		return
	}
	// Browsers say where a request comes from; the API only serves its own
	// page ("same-origin") and a person typing an address ("none"). This
	// also covers requests that carry no Origin, such as an <img> on
	// another site, before the token is even looked at.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		h.reject(w, r, http.StatusForbidden, "cross-site request refused",
			"the local API only answers its own UI", "Sec-Fetch-Site is "+clip(site))
		return
	}
	if r.URL.Path == api.RouteSessionChallenge || r.URL.Path == api.RouteSession {
		h.serveSession(w, r)
		return
	}
	if reason := h.checkToken(r); reason != "" {
		h.reject(w, r, http.StatusUnauthorized, "missing or wrong API token",
			"send Authorization: Bearer TOKEN with the token that demes serve printed", reason)
		return
	}
	if !isSafeMethod(r.Method) && !isJSON(r.Header.Get("Content-Type")) && !isFileUpload(r) {
		h.reject(w, r, http.StatusUnsupportedMediaType, "request body must be JSON",
			"send Content-Type: application/json", "state-changing request without a JSON content type (form CSRF?)")
		return
	}
	h.router.ServeHTTP(w, r)
}

// getStatus answers GET /api/v1/status.
func (h *handler) getStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, normalizeStatus(h.backend.Status()))
}

// getGroups answers GET /api/v1/groups.
func (h *handler) getGroups(w http.ResponseWriter, r *http.Request) {
	groups := h.backend.Groups()
	if groups == nil {
		groups = []api.GroupInfo{}
	}
	writeJSON(w, http.StatusOK, groups)
}

// createGroup answers POST /api/v1/groups.
func (h *handler) createGroup(w http.ResponseWriter, r *http.Request) {
	var req api.CreateGroupRequest
	if !h.decode(w, r, &req) {
		return
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		writeError(w, http.StatusBadRequest, "the group needs a name", `send {"name": "..."}`)
		return
	}
	g, err := h.backend.CreateGroup(r.Context(), name)
	if err != nil {
		h.backendError(w, r, "create group", err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// join answers POST /api/v1/join.
func (h *handler) join(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if !h.decode(w, r, &req) {
		return
	}
	code := strings.TrimSpace(req.Code)
	if code == "" {
		writeError(w, http.StatusBadRequest, "the invite code is empty", "paste the code the inviter gave you")
		return
	}
	g, err := h.backend.Join(r.Context(), code)
	if err != nil {
		h.backendError(w, r, "join", err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// reconnect answers POST /api/v1/groups/{group_id}/reconnect.
func (h *handler) reconnect(w http.ResponseWriter, r *http.Request) {
	var req api.ReconnectRequest
	if !h.decode(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Target) == "" {
		writeError(w, http.StatusBadRequest, "no member to reconnect to", "give a current member's peer URL (http://HOST:PORT) or an invite code of the group")
		return
	}
	res, err := h.backend.Reconnect(r.Context(), groupID(r), req.Target)
	if err != nil {
		h.actionError(w, r, "reconnect", err, hints{forbidden: "ask a member who is in step with the group for its address, or for a new invite if this node was removed"})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// addKeeper answers POST /api/v1/groups/{group_id}/keepers.
func (h *handler) addKeeper(w http.ResponseWriter, r *http.Request) {
	var req api.KeeperRequest
	if !h.decode(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Target) == "" {
		writeError(w, http.StatusBadRequest, "no keeper named", "give the keeper's public id (demes1...) or its peer URL (http://HOST:PORT)")
		return
	}
	res, err := h.backend.AddKeeper(r.Context(), groupID(r), strings.TrimSpace(req.Target), strings.TrimSpace(req.ID))
	if err != nil {
		h.actionError(w, r, "add keeper", err, hints{forbidden: "ask an admin of the group to add the keeper"})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// messages answers GET /api/v1/groups/{group_id}/messages: every message
// as an array, or with a page query (limit, before) an api.MessagePage.
func (h *handler) messages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > api.MaxPage {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number of messages from 1 to %d", api.MaxPage), "leave it out for every message")
			return
		}
		limit = n
	}
	before := q.Get("before")
	paged := q.Has("limit") || q.Has("before")
	if q.Has("before") && before == "" {
		writeError(w, http.StatusBadRequest, "before must be a message id", "leave it out for the newest messages")
		return
	}
	// Malformed, it names no message: a bad request, not one not found
	// (helper-58's QA pass), as for any message id.
	if before != "" {
		if _, ok := messageRef(w, before); !ok {
			return
		}
	}
	p, err := h.backend.MessagePage(mux.Vars(r)[api.GroupIDVar], limit, before)
	if err != nil {
		if errors.Is(err, api.ErrUnknownMessage) {
			writeError(w, http.StatusNotFound, strings.TrimSuffix(err.Error(), ": "+api.ErrUnknownMessage.Error()), "list the newest messages (without before=) to see their ids")
			return
		}
		if before != "" && errors.Is(err, api.ErrInvalid) {
			writeError(w, http.StatusBadRequest, plain(err, api.ErrInvalid), "before= takes the id of a listed message, such as the first of a page")
			return
		}
		h.backendError(w, r, "list messages", err)
		return
	}
	if p.Messages == nil {
		p.Messages = []api.Message{}
	}
	if paged {
		writeJSON(w, http.StatusOK, p)
		return
	}
	writeJSON(w, http.StatusOK, p.Messages)
}

// qr answers GET /api/v1/qr?text=... with a PNG.
func (h *handler) qr(w http.ResponseWriter, r *http.Request) {
	text := r.URL.Query().Get("text")
	if text == "" || len(text) > maxQRText {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("text must be 1 to %d bytes", maxQRText), "")
		return
	}
	// A whole number of pixels per module keeps the modules crisp and equal
	// at the image's natural size, which the UI shows; an invite code needs
	// about a hundred modules a side.
	png, err := qrcode.Encode(text, qrcode.Medium, -qrModulePixels)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot make a QR code: %v", err), "")
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.WriteHeader(http.StatusOK)
	w.Write(png)
}

// demo answers GET /api/v1/demo. Outside demo mode it says so rather than
// failing, so the UI needs no special case.
func (h *handler) demo(w http.ResponseWriter, r *http.Request) {
	if h.control == nil {
		writeJSON(w, http.StatusOK, api.DemoState{})
		return
	}
	writeJSON(w, http.StatusOK, api.DemoState{Enabled: true, Running: h.control.Running()})
}

// stopNode answers POST /api/v1/node/stop.
func (h *handler) stopNode(w http.ResponseWriter, r *http.Request) {
	h.controlNode(w, r, "stop node", func(c Control) error { return c.StopNode() })
}

// startNode answers POST /api/v1/node/start.
func (h *handler) startNode(w http.ResponseWriter, r *http.Request) {
	h.controlNode(w, r, "start node", func(c Control) error { return c.StartNode() })
}

func (h *handler) controlNode(w http.ResponseWriter, r *http.Request, action string, do func(Control) error) {
	if h.control == nil {
		writeError(w, http.StatusNotFound, "not in demo mode", "stopping and starting from the UI is only for `demes demo`")
		return
	}
	if err := do(h.control); err != nil {
		h.backendError(w, r, action, err)
		return
	}
	writeJSON(w, http.StatusOK, api.DemoState{Enabled: true, Running: h.control.Running()})
}

// decode reads a JSON request body into v, strictly: limited in size, no
// unknown fields, nothing after the value. On failure it has answered.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("unexpected data after the JSON value")
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit), "")
		return false
	}
	writeError(w, http.StatusBadRequest, fmt.Sprintf("bad JSON body: %v", err), "")
	return false
}

// normalizeStatus replaces nil slices and maps with empty ones, so the UI
// and scripts see [] and {} rather than null.
func normalizeStatus(s api.Status) api.Status {
	if s.Rejected == nil {
		s.Rejected = map[string]int64{}
	}
	groups := make([]api.GroupStatus, len(s.Groups))
	for i, g := range s.Groups {
		if g.Preference == nil {
			g.Preference = []string{}
		}
		if g.Members == nil {
			g.Members = []api.Member{}
		}
		if g.Edges == nil {
			g.Edges = []api.Edge{}
		}
		groups[i] = g
	}
	s.Groups = groups
	return s
}
