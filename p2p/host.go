package p2p

import (
	"context"
	"errors"
	"fmt"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/rs/zerolog"
	"go.uber.org/fx"
)

// observers is how many peers must report the same public address of this
// host before it believes it and offers it for hole punching. libp2p's
// default (4) suits a node among hundreds of peers; a member of a small
// group behind a home router may only ever be seen by one relay and a few
// members, and would then never punch. The cost of believing one peer is
// small: a lying member makes the others try a wrong address for a moment,
// and the relayed path stays in use.
const observers = 1

func init() { observedaddrs.ActivationThresh = observers }

// reserveEvery is how often a reservation on each relay is renewed: well
// within the relay's reservation lifetime (an hour by default), and soon
// after a relay that was down comes back.
const reserveEvery = 30 * time.Second

// reserveRetry is how soon a failed reservation is tried again.
const reserveRetry = 5 * time.Second

// Config configures a [Host].
type Config struct {
	// Seed is the ed25519 seed of the node's identity; the host's peer id
	// is derived from its public key ([PeerID]).
	Seed []byte
	// Listen is "HOST:PORT" (TCP on that port, and QUIC too with QUIC)
	// or a multiaddr; empty listens on every interface on a port the
	// system picks.
	Listen string
	// QUIC listens on QUIC (UDP) beside TCP. Hole punching through home
	// routers succeeds more often over UDP, so a node behind one wants
	// it; but the others notice a peer's death over QUIC only when
	// raft's election timeout passes (a dead process sends nothing over
	// UDP), while its kernel closes its TCP connections at once (see
	// tcpFirst). So members that need no hole punching stay on TCP.
	QUIC bool
	// Relays are circuit relays to reserve a slot on, so that peers that
	// cannot dial this host directly reach it through them.
	Relays []peer.AddrInfo
	// RelayFor, when set, makes the host a circuit relay for the peers
	// whose identity key it accepts (and only them): members of the
	// node's groups, or anyone for a relay-only node.
	RelayFor func(signKey [32]byte) bool
	// RelayRecheck is how often a relaying host asks RelayFor again about
	// the peers it admitted, and closes the connections of those it no
	// longer accepts; 0 means relayRecheck. Tests shorten it.
	RelayRecheck time.Duration
	// Known, when set, reports whether a peer is one whose frames the
	// node wants: a member or invitee of one of its groups. Any other
	// peer, and every peer when Known is nil, is a stranger, and has at
	// most strangerStreams of its streams served at once (serve).
	Known func(signKey [32]byte) bool
	// PortMap asks the local router for a port mapping (UPnP, NAT-PMP).
	// It sends discovery packets on the local network, so tests leave it
	// off.
	PortMap bool
	// MaxFrame bounds the frames the host reads and writes.
	MaxFrame int64
	Logger   zerolog.Logger
}

// Host is a libp2p host that carries frames for a node: [Host.Post] sends
// one and waits for the answer, [Host.SetHandler] answers them.
type Host struct {
	h     host.Host
	relay *relay.Relay // nil unless Config.RelayFor is set
	// punchSvc is libp2p's holepunch service, which keepPunching asks
	// to try again.
	punchSvc *holepunch.Service
	cfg      Config
	log      zerolog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	handler Handler
	idle    map[peer.ID][]network.Stream
	urls    map[string]peer.AddrInfo
	// lastURL and lastAddrs are the URL last used for each peer and its
	// addresses (resolve); resolveMu orders the changes.
	lastURL   map[peer.ID]string
	lastAddrs map[peer.ID][]ma.Multiaddr
	resolveMu sync.Mutex
	reserved  map[peer.ID]*client.Reservation
	cleared   map[peer.ID]time.Time // when stream last cleared a peer's dial backoff
	// strangers counts the streams served to each peer Config.Known does
	// not know.
	strangers map[peer.ID]int
	// observed is what trusted peers saw the host at, per connection
	// (observed.go).
	observed map[network.Conn]string
	// nat is the router's port mapping, when Config.PortMap asks for one
	// (observed.go).
	nat      *mappedNAT
	upgraded map[peer.ID]time.Time // when preferDirect last tried a direct connection
	// relays are the relays the host holds (or seeks) a slot on: the
	// configured ones and those SetGroupRelays adds (relays.go).
	relays  map[peer.ID]*relaySlot
	down    func(signKey [32]byte)
	onAddrs func(url string) // see OnAddrsChanged
	// addrsPoke wakes watchAddrs to compare the URL with the one it last
	// reported, after a change libp2p does not announce (a relay slot).
	addrsPoke chan struct{}
	// goneIPs and cameIPs are the machine's addresses lost and gained
	// while the host runs, and when (see moved.go).
	goneIPs map[netip.Addr]bool
	cameIPs map[netip.Addr]time.Time
	reach   reachState // what AutoNAT found (see reach.go)
}

// New starts a host: it listens, and reserves a slot on each relay in the
// background (see [Host.WaitRelays]).
func New(cfg Config) (*Host, error) {
	key, err := privateKey(cfg.Seed)
	if err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		cfg.Listen = "0.0.0.0:0"
	}
	if cfg.MaxFrame <= 0 {
		return nil, errors.New("libp2p host: MaxFrame must be set")
	}
	listen, err := listenAddrs(cfg.Listen, cfg.QUIC)
	if err != nil {
		return nil, err
	}
	if err := tcpFree(listen); err != nil {
		return nil, fmt.Errorf("start libp2p on %s: %w", cfg.Listen, err)
	}
	var punchSvc *holepunch.Service
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen...),
		libp2p.EnableHolePunching(holepunch.WithTracer(punchLog{cfg.Logger}), keepService(&punchSvc)),
		libp2p.EnableAutoNATv2(),
		libp2p.SwarmOpts(swarm.WithDialRanker(tcpFirst)),
		// Our metrics registry is our own (package metrics); libp2p
		// would register its collectors in the global one.
		libp2p.DisableMetrics(),
		libp2p.UserAgent("demes"),
		// libp2p's dependency injection logs a failure to start (a port
		// in use) on stderr in its own words, besides returning it: the
		// caller says it, once.
		libp2p.WithFxOption(fx.NopLogger),
	}
	var nat *mappedNAT
	if cfg.PortMap {
		// libp2p's own (libp2p.NATPortMap), remembering what the
		// router mapped (observed.go).
		nat = &mappedNAT{mapped: map[string]string{}}
		opts = append(opts, libp2p.NATManager(func(n network.Network) basichost.NATManager {
			nat.NATManager = basichost.NewNATManager(n)
			return nat
		}))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p on %s: %w", cfg.Listen, err)
	}
	tcpErr, udpErr := checkListening(h.Network().ListenAddresses(), listen)
	if tcpErr != nil {
		h.Close()
		return nil, fmt.Errorf("start libp2p on %s: %w", cfg.Listen, tcpErr)
	}
	var (
		rel    *relay.Relay
		access *acl
	)
	if cfg.RelayFor != nil {
		// Started here rather than by libp2p's relay manager, which
		// starts a relay only once AutoNAT finds the host publicly
		// reachable: a relay on a network AutoNAT cannot judge (a LAN,
		// a test's namespaces) would never serve.
		res := relay.DefaultResources()
		// Raft catch-up and file transfers run over a relayed
		// connection for as long as no direct path exists: no per
		// connection time or byte limit, since only the peers RelayFor
		// accepts get a slot at all.
		res.Limit = nil
		// No peer may hold all of another's circuits (circuits.go).
		res.MaxCircuits = maxCircuits
		access = newACL(cfg.RelayFor)
		rel, err = relay.New(capHost{h, &circuitCap{open: map[[2]peer.ID]int{}}}, relay.WithResources(res), relay.WithACL(access))
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("start the relay service: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Host{
		relay: rel, punchSvc: punchSvc,
		h: h, cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, nat: nat,
		idle:      map[peer.ID][]network.Stream{},
		urls:      map[string]peer.AddrInfo{},
		lastURL:   map[peer.ID]string{},
		lastAddrs: map[peer.ID][]ma.Multiaddr{},
		reserved:  map[peer.ID]*client.Reservation{},
		cleared:   map[peer.ID]time.Time{},
		strangers: map[peer.ID]int{},
		observed:  map[network.Conn]string{},
		relays:    map[peer.ID]*relaySlot{},
		upgraded:  map[peer.ID]time.Time{},
		addrsPoke: make(chan struct{}, 1),
		goneIPs:   map[netip.Addr]bool{},
		cameIPs:   map[netip.Addr]time.Time{},
	}
	addrs, err := h.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		cancel()
		if rel != nil {
			rel.Close()
		}
		h.Close()
		return nil, fmt.Errorf("watch the host's addresses: %w", err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.watchAddrs(addrs)
	}()
	idents, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		cancel()
		if rel != nil {
			rel.Close()
		}
		h.Close()
		return nil, fmt.Errorf("watch what peers see the host at: %w", err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.watchObserved(idents)
	}()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.watchInterfaces()
	}()
	if access != nil {
		every := cfg.RelayRecheck
		if every <= 0 {
			every = relayRecheck
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.sweepRelay(access, every)
		}()
	}
	p.startReachability()
	h.SetStreamHandler(ProtocolID, p.serve)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.keepPunching()
	}()
	h.Network().Notify(&network.NotifyBundle{DisconnectedF: p.disconnected})
	if udpErr != nil {
		// QUIC's port is taken: on one the system picks (listenQUIC), as
		// when a group's relays ask for QUIC later.
		if added, err := p.listenQUIC(); err != nil || len(added) == 0 {
			p.log.Warn().Err(udpErr).Msg("not listening on QUIC: hole punching through routers tries TCP alone")
		} else {
			p.log.Warn().Err(udpErr).Str("listen", joinAddrs(added)).Msg("QUIC's port is taken: listening on QUIC on another port")
		}
	}
	p.mu.Lock()
	for _, r := range cfg.Relays {
		p.addRelay(r, true)
	}
	p.mu.Unlock()
	return p, nil
}

// ID returns the host's peer id.
func (p *Host) ID() peer.ID { return p.h.ID() }

// ListenPorts returns the TCP and the UDP (QUIC) port the host listens on:
// those it was given, or those the system chose for a port of 0; 0 for a
// transport it does not listen on.
func (p *Host) ListenPorts() (tcp, udp int) {
	for _, a := range p.h.Network().ListenAddresses() {
		if s, err := a.ValueForProtocol(ma.P_TCP); err == nil && tcp == 0 {
			tcp, _ = strconv.Atoi(s)
		}
		if s, err := a.ValueForProtocol(ma.P_UDP); err == nil && udp == 0 {
			udp, _ = strconv.Atoi(s)
		}
	}
	return tcp, udp
}

// Close stops the host and closes its connections.
func (p *Host) Close() error {
	// Under p.mu: preferDirect adds to p.wg only while p.ctx lives.
	p.mu.Lock()
	p.cancel()
	p.mu.Unlock()
	if p.relay != nil {
		p.relay.Close()
	}
	err := p.h.Close()
	p.wg.Wait()
	return err
}

// OnPeerDown sets a function called, on a goroutine of libp2p's, when the
// last connection to a peer closes: its process died or its link was cut
// (or the connection was idle and trimmed). It lets a node notice the loss
// of its host at once instead of after an election timeout.
func (p *Host) OnPeerDown(f func(signKey [32]byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = f
}

func (p *Host) disconnected(n network.Network, c network.Conn) {
	p.forgetObserved(c)
	pid := c.RemotePeer()
	// A QUIC connection outlives a dead peer until its idle timeout (a
	// dead process sends nothing over UDP): the end of the last TCP
	// connection, which the peer's kernel closes at once, is the news,
	// even while a QUIC one still counts as connected.
	tcpLeft := false
	for _, o := range n.ConnsToPeer(pid) {
		tcpLeft = tcpLeft || isTCP(o.RemoteMultiaddr())
	}
	if tcpLeft || (!isTCP(c.RemoteMultiaddr()) && n.Connectedness(pid) == network.Connected) {
		p.log.Debug().Str("peer", pid.String()).Str("addr", c.RemoteMultiaddr().String()).Bool("tcp_left", tcpLeft).Msg("a connection to a peer closed; another remains")
		return
	}
	p.log.Debug().Str("peer", pid.String()).Str("addr", c.RemoteMultiaddr().String()).Msg("the last connection to a peer closed")
	p.mu.Lock()
	if r, ok := p.relays[pid]; ok {
		select {
		case r.lost <- struct{}{}:
		default:
		}
	}
	for _, s := range p.idle[pid] {
		s.Reset()
	}
	delete(p.idle, pid)
	f := p.down
	p.mu.Unlock()
	if k, ok := SignKey(pid); ok && f != nil {
		f(k)
	}
}

// Addrs returns the addresses others should dial: a circuit address
// through each relay it was given (see below), then the host's own
// (without loopback ones unless it has nothing else, as in tests on one
// machine), as the machine has them now (see moved.go); of the addresses
// on none of its interfaces, only those a trusted peer saw it at (see
// observed.go).
func (p *Host) Addrs() []ma.Multiaddr {
	var direct, loop []ma.Multiaddr
	for _, a := range p.fixInterfaces(p.seenByTrusted(p.h.Addrs())) {
		if manet.IsIPLoopback(a) {
			loop = append(loop, a)
		} else if !isCircuit(a) {
			direct = append(direct, a)
		}
	}
	onlyLoop := len(direct) == 0
	if onlyLoop {
		direct = loop
	}
	// A circuit address through every relay the node was given, held
	// slot or not: a relay that restarts, or answers late, comes back at
	// the same address, and a URL without it would leave the members
	// behind other routers nothing to reach this node by (and an address
	// update to commit in between). In a fixed order, so that the URL
	// changes only when the addresses do: OnAddrsChanged compares URLs.
	relays := p.relayInfos()
	slices.SortFunc(relays, func(a, b peer.AddrInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	// Circuit addresses first: the URL is cut from the end to fit an
	// address update, and they are what a member behind another router
	// needs (libp2p dials direct addresses first whatever their order).
	var circuits []ma.Multiaddr
	for _, r := range relays {
		rid, ras := r.ID, slices.Clone(r.Addrs)
		slices.SortFunc(ras, ma.Multiaddr.Compare)
		for _, a := range ras {
			if manet.IsIPLoopback(a) && !onlyLoop || isCircuit(a) {
				continue
			}
			circuits = append(circuits, a.Encapsulate(ma.StringCast("/p2p/"+rid.String()+"/p2p-circuit")))
		}
	}
	return append(circuits, direct...)
}

// URL returns the host's p2p URL (see [FormatURL]).
func (p *Host) URL() string { return FormatURL(p.h.ID(), p.Addrs()) }

// CircuitURL returns the host's p2p URL with its circuit addresses alone,
// or "" when it has none: whoever dials it goes through a relay (tests
// and benchmarks of relayed paths use it).
func (p *Host) CircuitURL() string {
	var cs []ma.Multiaddr
	for _, a := range p.Addrs() {
		if isCircuit(a) {
			cs = append(cs, a)
		}
	}
	if len(cs) == 0 {
		return ""
	}
	return FormatURL(p.h.ID(), cs)
}

// Path says how this host reaches the peer with identity key k now:
// "direct", "relayed" (only through a circuit relay), or "" (not connected).
func (p *Host) Path(k [32]byte) string {
	pid, err := PeerID(k)
	if err != nil {
		return ""
	}
	return p.path(pid)
}

// path is Path by peer id.
func (p *Host) path(pid peer.ID) string {
	path := ""
	for _, c := range p.h.Network().ConnsToPeer(pid) {
		if !c.Stat().Limited && !isCircuit(c.RemoteMultiaddr()) {
			return "direct"
		}
		path = "relayed"
	}
	return path
}

func isTCP(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil && !isCircuit(a)
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
