// Package p2p is the go-libp2p peer transport: it carries the same signed
// frames as the HTTP peer listener, over one long-lived libp2p connection per
// peer (TCP or QUIC, through a circuit relay when no direct path exists, and
// upgraded to a direct one by hole punching where the routers allow it).
//
// libp2p's own encryption and authentication are a second layer: a peer's
// libp2p id is derived from its ed25519 identity key ([PeerID]), so a
// connection to a member's address is a connection to that member's key, but
// every frame is still signed, and every admission check of package node
// still runs on it, as for a frame that came over HTTP.
//
// A peer's address is a "p2p:" URL ([FormatURL]): the multiaddrs it listens
// on and the circuit addresses of its relays, each ending in its peer id.
// Members store it where they store an HTTP peer URL, so invites, address
// updates and catch-up carry it unchanged.
package p2p
