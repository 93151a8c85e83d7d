package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Transport is how the benchmarks' nodes talk to each other.
type Transport string

// The transports of `demes bench --transport`.
const (
	// HTTP is the nodes' HTTP peer listeners on loopback (the default).
	HTTP Transport = "http"
	// P2P is libp2p on loopback: TCP, TLS 1.3, yamux (libp2p's default
	// security offers TLS before Noise, so two demes nodes agree on TLS),
	// with the nodes advertising p2p URLs.
	P2P Transport = "p2p"
	// P2PRelay is libp2p through a circuit relay on loopback: every node
	// advertises only its circuit address. Only [Latency] runs it.
	P2PRelay Transport = "p2p-relay"
)

// Transports lists the transports, for flags and their errors.
var Transports = []Transport{HTTP, P2P, P2PRelay}

// String names the transport in the figures' notes.
func (t Transport) String() string {
	switch t {
	case P2P:
		return "libp2p on loopback"
	case P2PRelay:
		return "libp2p through a circuit relay on loopback"
	}
	return "HTTP on loopback"
}

// p2p reports whether the nodes talk over libp2p.
func (t Transport) p2p() bool { return t == P2P || t == P2PRelay }

// noted returns figs with the transport named at the start of every note.
func (t Transport) noted(figs []Figure) []Figure {
	for i := range figs {
		if figs[i].Note == "" {
			figs[i].Note = t.String()
		} else {
			figs[i].Note = t.String() + "; " + figs[i].Note
		}
	}
	return figs
}

// pathsNote says how the members' libp2p hosts reached each other at the
// end of a run, from [nodetest.Cluster.Paths]: "paths: 6 relayed" or
// "paths: 4 direct, 2 relayed".
func pathsNote(paths map[string]int) string {
	var parts []string
	for p, n := range paths {
		if p == "" {
			p = "not connected"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, p))
	}
	sort.Strings(parts)
	return "paths between members at the end: " + strings.Join(parts, ", ")
}

// procPaths counts, over every process's status of group gid, the paths
// its libp2p host has to each other member (as [nodetest.Cluster.Paths]
// does for nodes in this process).
func procPaths(ctx context.Context, procs []*serveProc, gid string) (map[string]int, error) {
	out := map[string]int{}
	for _, p := range procs {
		st, err := p.api.status(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range st.Groups {
			for _, m := range g.Members {
				if g.GroupID == gid && !m.Self {
					out[m.Path]++
				}
			}
		}
	}
	return out, nil
}
