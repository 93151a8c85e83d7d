package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/rs/zerolog"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/p2p"
	"github.com/demes/demes/state"
)

// relayWait bounds how long serve waits at start for a slot on each relay
// it was given, so that the address it advertises names them.
const relayWait = 10 * time.Second

// p2pFlags are serve's libp2p flags.
type p2pFlags struct {
	listen  string
	relays  listFlag
	portMap bool
}

func addP2PFlags(f *cmdFlags) *p2pFlags {
	p := &p2pFlags{}
	f.StringVar(&p.listen, "p2p", "", "listen for libp2p peers on `ADDR` (HOST:PORT: TCP, and QUIC too with --relay or a relay in a group's settings) and advertise this node's libp2p address instead of its HTTP peer URL (the HTTP peer listener keeps running for members that still use it)")
	f.Var(&p.relays, "relay", "reserve a slot on the circuit relay at `ADDR` (as 'demes relay' prints it) to be reachable from behind a router; repeatable; implies --p2p 0.0.0.0:0 when --p2p is not given")
	f.BoolVar(&p.portMap, "port-map", true, "with --p2p, ask the local router for a port mapping (UPnP, NAT-PMP)")
	return p
}

// enabled reports whether this node listens for libp2p peers.
func (p *p2pFlags) enabled() bool { return p.listen != "" || len(p.relays) > 0 }

// check refuses, as bad usage and before anything starts, a --p2p value
// that is no address to listen on (checkListenAddr), and a --relay value
// that is no relay's address, in the words and with the hint of 'group
// settings --relay': the multiaddr library's own text ("failed to parse
// multiaddr") said nothing a person could act on, and exit 1 read as a
// failure of the node. It puts each relay in its normal form.
func (p *p2pFlags) check(f *cmdFlags) error {
	if p.listen != "" {
		if err := checkListenAddr("--p2p", p.listen, "0.0.0.0:4001", true); err != nil {
			return f.usageErr(err)
		}
	}
	for i, r := range p.relays {
		nr, err := state.NormalizeRelay(r)
		if err != nil {
			return usageError(fmt.Errorf("--relay: %w", err), relayHint)
		}
		p.relays[i] = nr
	}
	return nil
}

// parseRelays parses the --relay values, which check has checked.
func (p *p2pFlags) parseRelays() ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, r := range p.relays {
		ai, err := p2p.ParseAddrs(r)
		if err != nil {
			return nil, fmt.Errorf("--relay %s: %w (pass the last line 'demes relay' printed)", r, err)
		}
		out = append(out, ai)
	}
	return out, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}

// startP2P starts the libp2p host of a node that listens for libp2p peers.
// relayFor is asked, once the node runs, whether a peer may use this host
// as a relay (members of its groups only).
func startP2P(id *identity.Identity, o *p2pFlags, relayFor func([32]byte) bool, log zerolog.Logger) (*p2p.Host, error) {
	relays, err := o.parseRelays()
	if err != nil {
		return nil, err
	}
	listen := o.listen
	if listen == "" {
		listen = "0.0.0.0:0"
	}
	h, err := p2p.New(p2p.Config{
		Seed: id.Private()[:32], Listen: listen, Relays: relays, RelayFor: relayFor, Known: relayFor,
		// QUIC for hole punching, when this node is behind a router
		// (it holds relay slots); TCP alone otherwise, whose end is
		// noticed at once when a member dies (see p2p.Config.QUIC).
		QUIC:    len(relays) > 0,
		PortMap: o.portMap, MaxFrame: crypto.MaxFrame, Logger: log,
	})
	if err != nil {
		return nil, listenFailed("the libp2p listener", listen, "--p2p", err)
	}
	if len(relays) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), relayWait)
		got := h.WaitRelays(ctx)
		cancel()
		if got < len(relays) {
			log.Warn().Int("relays", len(relays)).Int("reserved", got).Msg("not every relay gave this node a slot yet; members behind routers may not reach it until one does")
		}
	}
	return h, nil
}

// dialer is the libp2p side of a node that does not listen for libp2p
// peers: it starts a host that only dials the first time a member's address
// is a p2p URL, so that nodes of a group moving to libp2p still reach each
// other whichever transport each advertises.
type dialer struct {
	id  *identity.Identity
	log zerolog.Logger

	once sync.Once
	h    *p2p.Host
	err  error
}

// Post implements node.Link for p2p URLs.
func (d *dialer) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	d.once.Do(func() {
		d.h, d.err = p2p.New(p2p.Config{Seed: d.id.Private()[:32], Listen: "/ip4/127.0.0.1/tcp/0", MaxFrame: crypto.MaxFrame, Logger: d.log})
	})
	if d.err != nil {
		return nil, d.err
	}
	return d.h.Post(ctx, url, frame)
}

// Close stops the host if it was started.
func (d *dialer) Close() {
	d.once.Do(func() {}) // no host from now on
	if d.h != nil {
		d.h.Close()
	}
}

// reachability reports for status what h's AutoNAT found about reaching
// this node from the internet.
func reachability(h *p2p.Host) func() *api.Reachability {
	return func() *api.Reachability {
		r := h.Reachability()
		return &api.Reachability{
			State:       r.State,
			Reachable:   multiaddrStrings(r.Reachable),
			Unreachable: multiaddrStrings(r.Unreachable),
			Unknown:     multiaddrStrings(r.Unknown),
			Relays:      multiaddrStrings(r.Relays),
			Since:       r.Since,
		}
	}
}

func multiaddrStrings(as []ma.Multiaddr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
