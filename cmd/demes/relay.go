package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/p2p"
)

// relayKeyFile holds the key of a relay-only node whose home has no
// identity: its peer id, and so the address members configure, stays the
// same across restarts.
const relayKeyFile = "relay.key"

// runRelay is `demes relay --listen ADDR`: a relay-only node. It holds no
// group keys and no logs; it forwards libp2p connections between nodes that
// cannot reach each other directly (each behind its own home router) until
// hole punching gives them a direct path.
func runRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("relay --listen ADDR [--allow PUBLIC_ID]...", stdout)
	listen := f.String("listen", "0.0.0.0:4001", "listen on `ADDR` (HOST:PORT, TCP and QUIC)")
	var allow listFlag
	f.Var(&allow, "allow", "relay only for the person with this `PUBLIC_ID` (repeatable; default: relay for anyone who asks)")
	portMap := f.Bool("port-map", false, "ask the local router for a port mapping (UPnP, NAT-PMP)")
	lf := addLogFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	if err := checkListenAddr("--listen", *listen, "0.0.0.0:4001", true); err != nil {
		return f.usageErr(err)
	}
	home, err := f.Home()
	if err != nil {
		return err
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return f.usageErr(err)
	}
	allowed := map[[32]byte]bool{}
	for _, a := range allow {
		pub, err := parsePublicIDArg(a, "public id")
		if err != nil {
			return usageError(fmt.Errorf("--allow: %w", err), publicIDHint("each member's", "the line 'demes id' prints on its machine"))
		}
		allowed[pub.Sign] = true
	}
	// In the home of a running serve, the relay would take the node's
	// identity, and so answer for the libp2p peer id of its --p2p host.
	if _, err := os.Stat(filepath.Join(home, identityFile)); err == nil {
		if pid, running := runningServe(home); running {
			return failf("give the relay a home of its own: demes relay --home DIR",
				"a demes serve (pid %d) is running for home %s: a relay there would take the node's identity, and answer for its libp2p peer id", pid, home)
		}
	}
	lock, err := lockRelayHome(home)
	if err != nil {
		return err
	}
	defer lock.Close()
	id, err := relayIdentity(home)
	if err != nil {
		return err
	}
	relayFor := func([32]byte) bool { return true }
	if len(allowed) > 0 {
		relayFor = func(k [32]byte) bool { return allowed[k] }
	} else {
		fmt.Fprintln(stderr, "demes: relaying for anyone who asks (give --allow PUBLIC_ID to relay only for your groups' members)")
	}
	h, err := p2p.New(p2p.Config{
		Seed: id.Private()[:32], Listen: *listen, RelayFor: relayFor, PortMap: *portMap, QUIC: true,
		MaxFrame: crypto.MaxFrame, Logger: logger,
	})
	if err != nil {
		return listenFailed("the relay", *listen, "--listen", err)
	}
	defer h.Close()
	addr := strings.TrimPrefix(h.URL(), p2p.Scheme)
	fmt.Fprintf(stderr, "demes: relay %s on %s; members pass the next line to 'demes serve --relay'\n", h.ID(), boundAddr(*listen, h))
	fmt.Fprintln(stdout, addr)
	<-ctx.Done()
	return nil
}

// boundAddr is listen (HOST:PORT) with the port the relay bound, which the
// system chose for a port of 0, and QUIC's UDP port when it differs. A
// multiaddr is left as given.
func boundAddr(listen string, h *p2p.Host) string {
	host, _, err := net.SplitHostPort(listen)
	tcp, udp := h.ListenPorts()
	if err != nil || tcp == 0 {
		return listen
	}
	addr := net.JoinHostPort(host, strconv.Itoa(tcp))
	if udp != 0 && udp != tcp {
		addr += fmt.Sprintf(" (TCP; QUIC on UDP port %d)", udp)
	}
	return addr
}

// relayIdentity returns the relay's key: relay.key when the home has one
// (made on an earlier run), else the home's identity, else a new relay.key.
// relay.key comes first, so that a keygen in a relay's home later does not
// change the relay's peer id, and with it the address its users were given.
func relayIdentity(home string) (*identity.Identity, error) {
	if _, err := os.Stat(filepath.Join(home, relayKeyFile)); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(home, identityFile)); err == nil {
			return loadIdentity(home, "")
		}
	}
	path := filepath.Join(home, relayKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id, err := identity.ParseSecretKey(string(b))
		if err != nil {
			return nil, withHint(fmt.Errorf("relay key %s: %w", path, err), "delete it to make a new one (the relay's address changes)")
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	id, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := writeFile0600(path, []byte(id.SecretKey()+"\n")); err != nil {
		return nil, fmt.Errorf("write the relay key: %w", err)
	}
	return id, nil
}
