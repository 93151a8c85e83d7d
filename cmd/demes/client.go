package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/demes/demes/api"
)

// serveInfo is home/serve.json, written by `demes serve` once its local API
// listens and removed when it stops. The node commands read it to find the
// API; the token is in home/token.
type serveInfo struct {
	UIURL string `json:"ui_url"` // "http://127.0.0.1:PORT"
	PID   int    `json:"pid"`
}

// Timeouts of the local API calls. The node answers most at once; join waits
// until this node has caught up with the group's log, and send waits as long
// as --timeout asks, plus this margin. A membership change (an invite, a
// removal, a role) waits for its commit up to the node's own timeout (30 s),
// which must end first so that its reason reaches the person.
const (
	apiTimeout    = 30 * time.Second
	changeTimeout = time.Minute
	joinTimeout   = 2 * time.Minute
)

// maxResponse bounds a JSON answer of the local API.
const maxResponse = 64 << 20

// client calls the local API of the `demes serve` running for a home.
type client struct {
	home  string
	base  *url.URL
	token string
	http  *http.Client
}

// newClient finds the serve of home through serve.json and token. When there
// is none, the error says so and how to start one.
func newClient(home string) (*client, error) {
	b, err := os.ReadFile(filepath.Join(home, serveInfoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notRunning(home)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", serveInfoFile, err)
	}
	var info serveInfo
	if err := json.Unmarshal(b, &info); err != nil || info.UIURL == "" {
		return nil, withHint(fmt.Errorf("%s in %s is damaged", serveInfoFile, home),
			"restart the node: demes serve --home "+home)
	}
	// A serve killed outright leaves its serve.json behind, naming a port
	// that anyone on this machine may listen on since: the token, which
	// the next serve takes up again, must not go there.
	if !processAlive(info.PID) {
		return nil, notRunning(home)
	}
	base, err := url.Parse(info.UIURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, withHint(fmt.Errorf("%s in %s has no usable ui_url", serveInfoFile, home),
			"restart the node: demes serve --home "+home)
	}
	// A serve listening on all interfaces is reachable on loopback, and the
	// API accepts loopback Host headers.
	if ip := net.ParseIP(base.Hostname()); ip != nil && ip.IsUnspecified() {
		base.Host = net.JoinHostPort("127.0.0.1", base.Port())
	}
	tok, err := os.ReadFile(filepath.Join(home, tokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notRunning(home)
	}
	if err != nil {
		return nil, fmt.Errorf("read the API token: %w", err)
	}
	// The API is on this machine: no proxy, whatever the environment says.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &client{
		home:  home,
		base:  base,
		token: strings.TrimSpace(string(tok)),
		http: &http.Client{
			Transport: tr,
			// The token must not follow a redirect anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// notRunning is the error of the node commands when no serve runs for home.
func notRunning(home string) error {
	if _, err := os.Stat(filepath.Join(home, identityFile)); errors.Is(err, fs.ErrNotExist) {
		// serve would fail too: the home needs an identity first.
		return failf("create an identity with: demes keygen --home "+home+", then start a node with: demes serve --home "+home,
			"no demes serve is running for home %s, which holds no identity", home)
	}
	return failf("start one with: demes serve --home "+home, "no demes serve is running for home %s", home)
}

// call sends a request to the local API and decodes the JSON answer into out
// (unless out is nil). It returns the HTTP status of a successful answer.
func (c *client) call(ctx context.Context, method, path string, in, out any, timeout time.Duration) (int, error) {
	resp, err := c.send(ctx, method, path, in, timeout)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
			return 0, fmt.Errorf("the node's answer to %s %s is not what this demes expects: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// send does the request, with in as its JSON body (none when nil), and
// turns transport failures and non-2xx answers into errors; the caller
// closes the body of a 2xx answer. The timeout applies to the whole call,
// body included.
func (c *client) send(ctx context.Context, method, path string, in any, timeout time.Duration) (*http.Response, error) {
	if in == nil {
		return c.sendBody(ctx, method, path, nil, 0, "", timeout)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return c.sendBody(ctx, method, path, bytes.NewReader(b), int64(len(b)), "application/json", timeout)
}

// sendBody is send with a raw body of size bytes and its content type
// (none when body is nil).
func (c *client) sendBody(ctx context.Context, method, path string, body io.Reader, size int64, contentType string, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	// A path may carry a query (messages?limit=...): JoinPath would
	// escape its "?".
	p, query, _ := strings.Cut(path, "?")
	u := c.base.JoinPath(p)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		err = c.transportError(ctx, err) // before cancel, which would hide why ctx ended
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, c.statusError(resp)
}

// transportError explains a failed request. Except for a refused
// connection, the request may have reached the node, so the error is an
// unansweredError.
func (c *client) transportError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		// serve.json outlived its serve (killed, or the machine restarted).
		return notRunning(c.home)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return withHint(unansweredError{fmt.Errorf("the node at %s did not answer in time", c.base.Host)},
			"its process may be stopped or overloaded: see its log; demes status --home "+c.home+" shows it once it answers")
	case errors.Is(ctx.Err(), context.Canceled):
		return unansweredError{errors.New("interrupted")}
	}
	return withHint(unansweredError{fmt.Errorf("cannot reach the node at %s: %w", c.base.Host, err)},
		"is demes serve --home "+c.home+" running?")
}

// unansweredError marks a request that may or may not have taken effect: it
// was sent, and no answer came.
type unansweredError struct{ error }

func (e unansweredError) Unwrap() error { return e.error }

// statusError turns a non-2xx answer into an error with the API's hint.
func (c *client) statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized && c.serveGone() {
		// serve.json outlived its serve, and another program (often
		// the node of another home) listens on its port since.
		return notRunning(c.home)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e api.ErrorResponse
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		if resp.StatusCode == http.StatusUnauthorized {
			// The API's hint is for an HTTP client; the CLI sends
			// the home's token itself.
			e.Hint = tokenHint(c.home)
		}
		return withHint(answerError{status: resp.StatusCode, error: errors.New(e.Error)}, e.Hint)
	}
	msg := strings.TrimSpace(string(b))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	err := fmt.Errorf("the node answered %s: %s", resp.Status, clean(msg, ""))
	if resp.StatusCode == http.StatusUnauthorized {
		return withHint(err, tokenHint(c.home))
	}
	return err
}

// answerError is the node's refusal of a request, with its HTTP status,
// for a command that tells a bad request (exit 2) from a failure.
type answerError struct {
	status int
	error
}

func (e answerError) Unwrap() error { return e.error }

// serveGone reports whether the serve that wrote the home's serve.json is
// gone: its file names a process that no longer exists.
func (c *client) serveGone() bool {
	info, err := readServeInfo(c.home)
	return err == nil && info.PID > 0 && !processAlive(info.PID)
}

func tokenHint(home string) string {
	return "the token in " + filepath.Join(home, tokenFile) + " is not the running node's; restart it: demes serve --home " + home
}

// cancelOnClose releases a request's context when its body is closed, so the
// timeout covers reading the body too.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// groups lists the node's groups.
func (c *client) groups(ctx context.Context) ([]api.GroupInfo, error) {
	var gs []api.GroupInfo
	if _, err := c.call(ctx, http.MethodGet, api.RouteGroups, nil, &gs, apiTimeout); err != nil {
		return nil, err
	}
	return gs, nil
}

// resolveGroup finds the group that --group names, by id or by name. An
// empty --group is fine when the node is in exactly one group.
func (c *client) resolveGroup(ctx context.Context, group string) (api.GroupInfo, error) {
	gs, err := c.groups(ctx)
	if err != nil {
		return api.GroupInfo{}, err
	}
	if group == "" {
		switch len(gs) {
		case 0:
			return api.GroupInfo{}, failf("create one with 'demes group create NAME', or join one with 'demes join INVITE'",
				"this node is in no group")
		case 1:
			return gs[0], nil
		}
		// A group this node left or was removed from is history only:
		// with one group it is still in, that one is meant.
		if in := stillIn(gs); len(in) == 1 {
			return in[0], nil
		}
		return api.GroupInfo{}, failf("choose one with --group NAME_OR_ID",
			"this node is in %d groups: %s", len(gs), listGroups(gs))
	}
	for _, g := range gs {
		if g.GroupID == group {
			return g, nil
		}
	}
	var byName []api.GroupInfo
	for _, g := range gs {
		if g.Name == group {
			byName = append(byName, g)
		}
	}
	if len(byName) > 1 {
		// As above: the one of that name this node is still in.
		if in := stillIn(byName); len(in) == 1 {
			return in[0], nil
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], nil
	case 0:
		if len(gs) == 0 {
			return api.GroupInfo{}, failf("list them with: demes groups", "no group %q: this node is in no group", group)
		}
		return api.GroupInfo{}, failf("list them with: demes groups",
			"no group %q on this node; its groups are: %s", group, listGroups(gs))
	}
	return api.GroupInfo{}, failf("name it by its id with --group GROUP_ID",
		"%d groups are named %q: %s", len(byName), group, listGroups(byName))
}

// listGroups names groups in one line for an error.
func listGroups(gs []api.GroupInfo) string {
	s := make([]string, len(gs))
	for i, g := range gs {
		s[i] = fmt.Sprintf("%q (%s)", clean(g.Name, " "), g.GroupID)
	}
	return strings.Join(s, ", ")
}

// nodeFlags are the flags of the commands that talk to serve, after --home.
type nodeFlags struct {
	*cmdFlags
	json      *bool
	group     *string
	withGroup bool // the command acts on one group and has --group
}

// newNodeFlags defines --json (when jsonHelp is set) and --group (when
// withGroup is set) besides --home.
func newNodeFlags(synopsis string, stdout io.Writer, jsonHelp string, withGroup bool) *nodeFlags {
	f := &nodeFlags{cmdFlags: newFlags(synopsis, stdout), withGroup: withGroup}
	if jsonHelp != "" {
		f.json = f.Bool("json", false, jsonHelp)
	} else {
		f.json = new(bool)
	}
	f.group = new(string)
	if withGroup {
		f.StringVar(f.group, "group", "", "the group `G`, by name or id (may be left out when the node is in one group)")
	}
	return f
}

// connect is the prologue of every command that talks to serve, after its
// arguments are checked: it finds the home (--home, $DEMES_HOME, ~/.demes),
// connects to the serve running for it and, for a command with --group,
// resolves the group, which may be left out when the node is in one group.
// A command without --group gets a zero GroupInfo. Its errors carry the
// fix as a hint: no serve running, a damaged serve.json, no such group.
func (f *nodeFlags) connect(ctx context.Context) (*client, api.GroupInfo, error) {
	home, err := f.Home()
	if err != nil {
		return nil, api.GroupInfo{}, err
	}
	c, err := newClient(home)
	if err != nil {
		return nil, api.GroupInfo{}, err
	}
	if !f.withGroup {
		return c, api.GroupInfo{}, nil
	}
	g, err := c.resolveGroup(ctx, *f.group)
	if err != nil {
		return nil, api.GroupInfo{}, err
	}
	return c, g, nil
}

// connectMember is connect for a command that changes the group (sends,
// invites, changes a role or a setting): in a group this node left or was
// removed from it fails at once, saying so, rather than with the node's
// refusal, which named the group by its id or a rule that was not the
// reason ("only admins may remove members").
func (f *nodeFlags) connectMember(ctx context.Context) (*client, api.GroupInfo, error) {
	c, g, err := f.connect(ctx)
	if err != nil {
		return nil, api.GroupInfo{}, err
	}
	if err := stillMember(g); err != nil {
		return nil, api.GroupInfo{}, err
	}
	return c, g, nil
}

// stillMember fails for a group this node is no longer a member of.
func stillMember(g api.GroupInfo) error {
	if !g.Left {
		return nil
	}
	how := "it left"
	if g.RemovedBy != "" {
		how = "removed by " + clean(authorName(g.RemovedByName, g.RemovedBy), " ")
	}
	return failf("it keeps the history it has ('demes messages' shows it); to take part again, ask a member for a new invite",
		"this node is no longer a member of %q (%s)", clean(g.Name, " "), how)
}

// stillIn returns the groups of gs this node has not left (nor been
// removed from).
func stillIn(gs []api.GroupInfo) []api.GroupInfo {
	var in []api.GroupInfo
	for _, g := range gs {
		if !g.Left {
			in = append(in, g)
		}
	}
	return in
}

// status asks the node for its status.
func (c *client) status(ctx context.Context) (api.Status, error) {
	var st api.Status
	_, err := c.call(ctx, http.MethodGet, api.RouteStatus, nil, &st, apiTimeout)
	return st, err
}
