package api

import "time"

// The alerts of a [GroupStatus]: what a person must know about a group
// before anything else, each worded by the node in its Message.

// KeysAlert tells the user that this node lost its keys for a group.
type KeysAlert struct {
	// RenewedAt is the log index of the rekey from which this node reads
	// the group again; 0 while it waits for it.
	RenewedAt uint64 `json:"renewed_at,omitempty"`
	// Message says it in a sentence for the user.
	Message string `json:"message"`
}

// CensorAlert says that the host has not committed this node's messages
// for a while, although it answers this node's pings and commits other
// members' entries, or that a majority of the voters suspects it.
type CensorAlert struct {
	// Host is the public id of the suspected host.
	Host string `json:"host"`
	// Since is when this node's oldest waiting message was first proposed
	// to that host; zero when only other voters suspect it.
	Since time.Time `json:"since,omitempty"`
	// Voters is how many voters suspect the host (this node included),
	// Needed how many make a majority; Deposed is set once they do, and
	// the voters stop following it.
	Voters  int  `json:"voters"`
	Needed  int  `json:"needed"`
	Deposed bool `json:"deposed"`
	// Message says it in words, for a person.
	Message string `json:"message"`
}

// ForkAlert says that two members were shown different histories of a
// group: their signed statements of the group's transcript head through the
// same log index differ. The node keeps both statements as the proof.
type ForkAlert struct {
	// Index is the log index through which the two histories differ.
	Index uint64 `json:"index"`
	// Peer is the public id of the member whose statement differs from
	// this node's history ("" when the proof is a conflicting append from
	// the host); PeerName its name, its fingerprint after it when flagged
	// as [Member].NameShared would be (Message names members so too).
	Peer     string `json:"peer,omitempty"`
	PeerName string `json:"peer_name,omitempty"`
	// Host is the public id of the host when it was found, if known.
	Host string `json:"host,omitempty"`
	// Detected is when this node found it.
	Detected time.Time `json:"detected"`
	// Message says it in words, for a person.
	Message string `json:"message"`
}
