package api

import "time"

// The states of a [Reachability].
const (
	// ReachPublic: a peer dialed one of this node's public addresses
	// back and got through: peers on the internet reach it directly.
	ReachPublic = "public"
	// ReachPrivate: peers failed to dial this node's public addresses
	// (it is behind a NAT or a firewall): peers on the internet reach it
	// only through a relay, or directly after a hole punch.
	ReachPrivate = "private"
	// ReachUnknown: no answer yet. It takes connected peers that dial
	// back (members and relays do), and the node must have a public
	// address: on a LAN alone it stays unknown.
	ReachUnknown = "unknown"
)

// Reachability is whether peers on the internet can open a connection to
// this node (docs/PROTOCOL.md, "Over libp2p"): what libp2p's AutoNAT v2
// found for each of its public addresses, and the relays through which
// it is reachable otherwise.
type Reachability struct {
	// State is ReachPublic, ReachPrivate or ReachUnknown.
	State string `json:"state"`
	// Reachable are this node's public addresses (multiaddrs) that peers
	// dialed back; Unreachable those they could not dial; Unknown those
	// not judged yet.
	Reachable   []string `json:"reachable,omitempty"`
	Unreachable []string `json:"unreachable,omitempty"`
	Unknown     []string `json:"unknown,omitempty"`
	// Relays are the circuit relays (multiaddrs ending in their peer
	// id) this node holds a slot on now.
	Relays []string `json:"relays,omitempty"`
	// Since is when State last changed, or when the node started.
	Since time.Time `json:"since"`
}
