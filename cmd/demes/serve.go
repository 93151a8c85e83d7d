package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/demes/demes/metrics"

	"github.com/demes/demes/internal/version"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/keys"
	"github.com/demes/demes/node"
	"github.com/demes/demes/p2p"
	"github.com/demes/demes/web"
)

// The local API sees the node only through the interfaces package web
// declares; node.Service is the one implementation, checked here, where both
// packages are imported.
var (
	_ web.Backend     = (*node.Service)(nil)
	_ web.Control     = (*node.Service)(nil)
	_ web.StoreBackup = (*node.Service)(nil)
)

// runServe runs the node until SIGINT/SIGTERM, then shuts down cleanly.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("serve [--listen ADDR] [--ui ADDR] [--advertise URL]", stdout)
	listen := f.String("listen", "0.0.0.0:7946", "the peer listener's `ADDR` (other nodes connect here)")
	ui := f.String("ui", "127.0.0.1:7947", "the local UI and API listener's `ADDR` (keep it on loopback)")
	advertise := f.String("advertise", "", "the peer `URL` other nodes should use (default http://ADDR of --listen, with this machine's address if ADDR is 0.0.0.0)")
	passFile := f.String("passphrase-file", "", "the passphrase `FILE` of a sealed identity")
	name := f.String("name", "", "display `NAME` (default: the one given to keygen)")
	metricsAddr := f.String("metrics", "", "serve /metrics, /healthz and /readyz on this loopback `ADDR` (off when empty)")
	snapEvery := f.Uint64("snapshot-entries", 10_000, "take a snapshot of a group's state every `N` applied entries; a restart applies only the log after the latest one")
	window := f.Int("message-window", 1_000, "keep a group's `N` newest messages in memory (1 to 100000); older pages are read from the store when asked for")
	maxAttach := f.Int64("max-attachment", node.DefaultMaxAttachment>>20, "the largest file, in `MB`, this node sends or fetches")
	retention := f.Duration("key-retention", node.DefaultKeyRetention, "keep the key of each message this `LONG` after this node received it (and prekey secrets no longer than that); older messages can no longer be read, searched or exported here, nor by anyone who takes this device (0: keep them for good)")
	pf := addP2PFlags(f)
	keeper := f.Bool("keeper", false, "run as a keeper: keep the logs of the groups admins add this node to ('demes keeper add'), voting for them, and read and send nothing")
	var keepFor listFlag
	f.Var(&keepFor, "keep-for", "with --keeper, keep only the groups this `PUBLIC_ID` adds this node to (repeatable; default: anyone's)")
	tf := addTimingFlags(f)
	lf := addLogFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	var keepers [][32]byte
	var kept []string // their fingerprints
	if *keeper && len(keepFor) == 0 {
		fmt.Fprintln(stderr, "demes: keeping the groups of anyone who adds this node (give --keep-for PUBLIC_ID to keep only the groups of the people you name)")
	}
	for _, k := range keepFor {
		if !*keeper {
			return usageError(errors.New("--keep-for is for a keeper: give --keeper too"), "")
		}
		pub, err := parsePublicIDArg(k, "public id")
		if err != nil {
			return usageError(fmt.Errorf("--keep-for: %w", err), publicIDHint("each admin's", "the line 'demes id' prints on its machine"))
		}
		keepers = append(keepers, pub.Sign)
		kept = append(kept, pub.Fingerprint())
	}
	if len(kept) > 0 {
		// Said as the default is said: the operator sees whom the
		// keeper answers, by the fingerprints 'demes status' shows.
		fmt.Fprintf(stderr, "demes: keeping only the groups these people add this node to: %s\n", strings.Join(kept, ", "))
	}
	home, err := f.Home()
	if err != nil {
		return err
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return f.usageErr(err)
	}
	timing, err := tf.timing()
	if err != nil {
		return f.usageErr(err)
	}
	if *snapEvery == 0 {
		return f.usageErr(errors.New("--snapshot-entries must be at least 1"))
	}
	if *maxAttach < 1 || *maxAttach > 1<<20 {
		return f.usageErr(errors.New("--max-attachment must be 1 to 1048576 MB"))
	}
	if *retention < 0 {
		return f.usageErr(errors.New("--key-retention must be 0 (keep keys for good) or a positive duration such as 720h"))
	}
	if *retention == 0 {
		*retention = -1 // node.Config: negative keeps them for good
	}
	if *window < 1 || *window > maxMessageWindow {
		return f.usagef("--message-window %d: want 1 to %d (a node holds up to twice that many messages of each group in memory)", *window, maxMessageWindow)
	}
	// A name the members would be shown, checked as keygen checks it: it
	// went into the join and the invites as it stood.
	if *name != "" {
		if err := keys.CheckName(*name); err != nil {
			return f.usagef("--name: %v", err)
		}
	}
	if err := pf.check(f); err != nil {
		return err
	}
	if err := checkAdvertise(*advertise); err != nil {
		return f.usageErr(err)
	}
	for _, a := range []struct{ flag, addr, example string }{
		{"--listen", *listen, "0.0.0.0:7946"}, {"--ui", *ui, "127.0.0.1:7947"}, {"--metrics", *metricsAddr, "127.0.0.1:9464"},
	} {
		if a.addr == "" && a.flag == "--metrics" {
			continue // off
		}
		if err := checkListenAddr(a.flag, a.addr, a.example, false); err != nil {
			return f.usageErr(err)
		}
	}
	if *metricsAddr != "" && !loopbackAddr(*metricsAddr) {
		return f.usageErr(fmt.Errorf("--metrics %s: the metrics listener must be on loopback (127.0.0.1:PORT or [::1]:PORT); its figures name your groups", *metricsAddr))
	}
	id, err := loadIdentity(home, *passFile)
	if err != nil {
		return err
	}
	if *name == "" {
		p, err := loadProfile(home)
		if err != nil {
			return err
		}
		*name = p.Name
	}
	tuneGC(os.Getenv)
	if pid, running := runningServe(home); running {
		return failf("stop it first, or use another --home", "a demes serve (pid %d) is already running for home %s", pid, home)
	}
	if relayRunning(home) {
		return failf("stop the relay, or give it a home of its own: demes relay --home DIR",
			"a demes relay is running for home %s: a home is for a node or a relay, not both at once", home)
	}
	// The metrics listener before the node starts, as the others: a port
	// in use is said before the node opens its store and talks to its
	// groups.
	var metricsLn net.Listener
	if *metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", *metricsAddr); err != nil {
			return listenFailed("the metrics listener", *metricsAddr, "--metrics", err)
		}
	}
	rn, err := startNode(ctx, nodeOptions{
		home: home, id: id, name: *name, listen: *listen, ui: *ui, advertise: *advertise,
		timing: timing, maxVoters: tf.maxVoters, logger: logger, snapshotEntries: *snapEvery,
		messageWindow: *window,
		maxAttachment: *maxAttach << 20,
		keeper:        *keeper,
		keepFor:       keepers,
		keyRetention:  *retention,
		p2p:           pf,
	})
	if err != nil {
		if metricsLn != nil {
			metricsLn.Close()
		}
		return err
	}
	defer rn.close()
	if err := writeServeInfo(home, rn); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(home, serveInfoFile))
	// Every listener before the node says it runs.
	metricsURL := ""
	if metricsLn != nil {
		metricsURL = "http://" + rn.serveMetrics(metricsLn) + "/metrics"
	}
	logger.Info().Str("peer_url", rn.peerURL).Str("public_id", id.Public().String()).Msg("demes serve is running")
	fmt.Fprintf(stderr, "demes: version %s\n", version.Get())
	if metricsURL != "" {
		fmt.Fprintf(stderr, "demes: metrics on %s\n", metricsURL)
	}
	fmt.Fprintf(stderr, "demes: peer listener %s (advertised as %s)\n", rn.peerLn.Addr(), rn.peerURL)
	if rn.p2p != nil {
		fmt.Fprintf(stderr, "demes: libp2p peer %s\n", rn.p2p.ID())
	}
	if toJournal(stdout) {
		// Not the token: those who may read the journal may not read
		// the home, and with it they could use the node.
		fmt.Fprintf(stdout, "http://%s/ (demes ui prints the address with its token)\n", uiHostPort(rn.uiLn.Addr()))
	} else {
		fmt.Fprintln(stdout, rn.uiURL())
	}
	<-ctx.Done()
	logger.Info().Msg("shutting down")
	return nil
}

// nodeOptions configures one node with its two listeners.
type nodeOptions struct {
	home, name, listen, ui, advertise string
	id                                *identity.Identity
	timing                            node.Timing
	maxVoters                         int
	snapshotEntries                   uint64 // 0: the node's default
	messageWindow                     int    // 0: the node's default
	maxAttachment                     int64  // bytes; 0: the node's default
	keeper                            bool
	keepFor                           [][32]byte // with keeper: whose groups it keeps (none: anyone's)
	keyRetention                      time.Duration
	logger                            zerolog.Logger
	demo                              bool
	p2p                               *p2pFlags // nil: no libp2p listener
}

// runningNode is a node with its peer and UI listeners.
type runningNode struct {
	svc     *node.Service
	token   string
	peerLn  net.Listener
	uiLn    net.Listener
	peerURL string
	p2p     *p2p.Host // nil unless the node listens for libp2p peers
	dialer  *dialer
	servers []*http.Server
	cancel  context.CancelFunc
	done    chan struct{}
}

func (r *runningNode) uiURL() string {
	return "http://" + uiHostPort(r.uiLn.Addr()) + "/#token=" + r.token
}

// uiHostPort is where a browser on this machine opens the UI listening at
// addr: on 127.0.0.1 when it listens on every address (--ui 0.0.0.0:PORT,
// as in a container), since http://[::]:PORT or http://0.0.0.0:PORT is no
// address a browser opens everywhere. The UI takes loopback names at its
// port in the Host header.
func uiHostPort(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	}
	return addr.String()
}

func startNode(ctx context.Context, o nodeOptions) (*runningNode, error) {
	peerLn, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, listenFailed("the peer listener", o.listen, "--listen", err)
	}
	uiLn, err := listenUI(o.ui)
	if err != nil {
		peerLn.Close()
		return nil, err
	}
	// The libp2p host starts before the node, whose address it is, and
	// learns the node's members (for its relay) once the node runs.
	var running atomic.Pointer[node.Service]
	member := func(k [32]byte) bool {
		s := running.Load()
		return s != nil && s.Member(k)
	}
	link := node.SchemeLink{HTTP: node.NewHTTPLink()}
	var host *p2p.Host
	var dial *dialer
	var path func([32]byte) string
	var reach func() *api.Reachability
	if o.p2p != nil && o.p2p.enabled() {
		host, err = startP2P(o.id, o.p2p, member, o.logger)
		if err != nil {
			peerLn.Close()
			uiLn.Close()
			return nil, err
		}
		link.P2P, path, reach = host, host.Path, reachability(host)
	} else {
		dial = &dialer{id: o.id, log: o.logger}
		link.P2P = dial
	}
	peerURL := o.advertise
	switch {
	case peerURL != "":
	case host != nil:
		peerURL = host.URL()
	default:
		peerURL = defaultAdvertise(peerLn.Addr().(*net.TCPAddr))
	}
	cfg := node.Config{
		Dir: o.home, Identity: o.id, Name: o.name, URL: peerURL, Link: link, Path: path, Reachability: reach,
		Logger: o.logger, Timing: o.timing, MaxVoters: o.maxVoters, SnapshotEntries: o.snapshotEntries,
		MessageWindow: o.messageWindow, Keeper: o.keeper, KeepFor: o.keepFor, MaxAttachment: o.maxAttachment,
		KeyRetention: o.keyRetention,
	}
	if host != nil {
		// A slot on each relay the groups' settings list, besides the
		// --relay ones; the advertised URL follows (OnAddrsChanged).
		cfg.Relays = host.UseGroupRelays
	}
	svc, err := node.NewService(cfg)
	if err != nil {
		peerLn.Close()
		uiLn.Close()
		if host != nil {
			host.Close()
		}
		return nil, err
	}
	// The token once the node holds the home's store: a second serve
	// started for the home with the first one, before it wrote
	// serve.json, fails on the store's lock, and must not replace the
	// running node's token on its way (its CLI then got "wrong token").
	token, err := loadOrCreateToken(o.home)
	if err != nil {
		svc.Close()
		peerLn.Close()
		uiLn.Close()
		if host != nil {
			host.Close()
		}
		if dial != nil {
			dial.Close()
		}
		return nil, err
	}
	running.Store(svc)
	if host != nil {
		host.SetHandler(svc.ServeFrame)
		// A closed libp2p connection says a member's process may be
		// gone; if it is the host and stays silent, its best backup
		// takes over at once (node/gone.go).
		host.OnPeerDown(svc.PeerGone)
		// A libp2p host's addresses change while it runs (a relay slot
		// comes late or is lost, the machine changes networks); the node
		// follows them unless the operator fixed its address.
		if o.advertise == "" {
			host.OnAddrsChanged(svc.SetURL)
		}
	}
	sctx, cancel := context.WithCancel(context.Background())
	var control web.Control
	if o.demo {
		control = svc
	}
	h := web.NewHandler(web.Config{Backend: svc, Control: control, Backup: svc, Token: token, Addr: uiLn.Addr().String(), Logger: o.logger})
	base := func(net.Listener) context.Context { return sctx }
	r := &runningNode{
		svc: svc, token: token, peerLn: peerLn, uiLn: uiLn, peerURL: peerURL, p2p: host, dialer: dial, cancel: cancel, done: make(chan struct{}),
		servers: []*http.Server{
			{Handler: svc.PeerHandler(), BaseContext: base, ReadHeaderTimeout: 10 * time.Second},
			{Handler: h, BaseContext: base, ReadHeaderTimeout: 10 * time.Second},
		},
	}
	go r.servers[0].Serve(peerLn)
	go r.servers[1].Serve(uiLn)
	return r, nil
}

// serveMetrics serves the node's metrics, health and readiness on ln, and
// returns the address it listens on.
func (r *runningNode) serveMetrics(ln net.Listener) string {
	s := &http.Server{Handler: metrics.OnlyHost(ln.Addr().String(), metrics.Handler(r.svc)), ReadHeaderTimeout: 10 * time.Second}
	r.servers = append(r.servers, s)
	go s.Serve(ln)
	return ln.Addr().String()
}

// close shuts the listeners down, then the node: requests in flight finish,
// event streams end, and the store is closed cleanly.
func (r *runningNode) close() {
	r.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range r.servers {
		s.Shutdown(ctx)
	}
	r.svc.Close()
	if r.p2p != nil {
		r.p2p.Close()
	}
	if r.dialer != nil {
		r.dialer.Close()
	}
}

func defaultAdvertise(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = outboundIP()
	}
	return "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

// outboundIP guesses this machine's address for other nodes: the first
// non-loopback IPv4 address, else loopback.
func outboundIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP
			}
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

func loadOrCreateToken(home string) (string, error) {
	path := filepath.Join(home, tokenFile)
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); len(t) >= 32 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", err
			}
			return t, nil
		}
	}
	t, err := web.NewToken()
	if err != nil {
		return "", err
	}
	if err := writeFile0600(path, []byte(t+"\n")); err != nil {
		return "", fmt.Errorf("write the API token: %w", err)
	}
	return t, nil
}

func writeServeInfo(home string, r *runningNode) error {
	b, err := json.Marshal(serveInfo{UIURL: "http://" + uiHostPort(r.uiLn.Addr()), PID: os.Getpid()})
	if err != nil {
		return err
	}
	return writeFile0600(filepath.Join(home, serveInfoFile), b)
}

// writeFile0600 writes a file atomically with owner-only permissions.
func writeFile0600(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readServeInfo(home string) (serveInfo, error) {
	var info serveInfo
	b, err := os.ReadFile(filepath.Join(home, serveInfoFile))
	if err != nil {
		return info, err
	}
	err = json.Unmarshal(b, &info)
	return info, err
}

// maxMessageWindow bounds --message-window. A group keeps up to twice its
// window of messages opened in memory (node/history.go), each up to 64 KiB
// of text, and a restart opens the newest window of them again: a window of
// a million or more would hold every message of a long history in memory
// and open it all at each start. 100,000 is a hundred times the default and
// ten times the largest page the API serves.
const maxMessageWindow = 100_000

// maxElectionTicks bounds --election-ticks. Failover takes about --tick x
// the election ticks (raft waits up to twice that), and pre-votes,
// attestation pulls and the slow-turn warning are figured from it. A
// thousand ticks are 50 s at the default tick, far past the 10 s send
// waits by default; a huge number made failover never come in practice,
// and overflowed time.Duration (a negative election timeout, which those
// checks misread) from about 150 million ticks of 1m.
const maxElectionTicks = 1000

// timingFlags are the raft timing and group-size flags of serve and demo.
type timingFlags struct {
	tick           time.Duration
	electionTicks  int
	heartbeatTicks int
	maxVoters      int
}

func addTimingFlags(f *cmdFlags) *timingFlags {
	t := &timingFlags{}
	f.DurationVar(&t.tick, "tick", node.LAN.Tick, "raft tick `DURATION`; longer for slow or lossy networks")
	f.IntVar(&t.electionTicks, "election-ticks", node.LAN.ElectionTicks, "ticks without a host before an election, 2 to 1000 (failover takes about tick x this)")
	f.IntVar(&t.heartbeatTicks, "heartbeat-ticks", node.LAN.HeartbeatTicks, "ticks between the host's heartbeats")
	f.IntVar(&t.maxVoters, "max-voters", 5, "voters of groups this node creates; other members are learners")
	return t
}

func (t *timingFlags) timing() (node.Timing, error) {
	if t.tick < time.Millisecond || t.tick > time.Minute {
		return node.Timing{}, fmt.Errorf("--tick %v: want 1ms to 1m", t.tick)
	}
	if t.electionTicks > maxElectionTicks {
		return node.Timing{}, fmt.Errorf("--election-ticks %d: want 2 to %d, more than --heartbeat-ticks (failover takes about --tick x this)", t.electionTicks, maxElectionTicks)
	}
	if t.heartbeatTicks < 1 || t.electionTicks <= t.heartbeatTicks {
		return node.Timing{}, errors.New("--election-ticks must be larger than --heartbeat-ticks, which must be at least 1")
	}
	if t.maxVoters < 1 || t.maxVoters > 15 {
		return node.Timing{}, fmt.Errorf("--max-voters %d: want 1 to 15", t.maxVoters)
	}
	return node.Timing{Tick: t.tick, ElectionTicks: t.electionTicks, HeartbeatTicks: t.heartbeatTicks}, nil
}

// logFlags are the logging flags.
type logFlags struct {
	level, format string
}

func addLogFlags(f *cmdFlags) *logFlags {
	l := &logFlags{}
	f.StringVar(&l.level, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	f.StringVar(&l.format, "log-format", "console", "log `FORMAT`: console or json")
	return l
}

func (l *logFlags) logger(w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(l.level)
	if err != nil || l.level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	switch l.format {
	case "json":
	case "console":
		// Colours only for a person at a terminal: in a file or a pipe
		// the escape codes are noise.
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w)}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want console or json", l.format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a terminal, such as the stderr of an
// interactive shell, rather than a file, a pipe or a buffer.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// checkAdvertise checks --advertise, the peer URL other nodes reach this one
// at (empty: the default). It travels in invites and the group's log: one
// without its scheme (127.0.0.1:7946) was taken as it stood, and a friend's
// join failed later with "no member of the group answers".
func checkAdvertise(s string) error {
	if s == "" {
		return nil
	}
	if p2p.IsURL(s) {
		// Not the multiaddr library's "failed to parse multiaddr" or
		// "invalid p2p multiaddr": what the URL is made of.
		if _, err := p2p.ParseURL(s); err != nil {
			return fmt.Errorf("--advertise %q: want p2p: and this node's libp2p addresses, such as p2p:/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW..., multiaddrs that each end in /p2p/ and its peer id", s)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--advertise %q: want the URL other nodes reach this one at, such as http://203.0.113.7:7946", s)
	}
	return nil
}
