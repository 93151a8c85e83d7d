package crypto

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
)

// GroupID names a group. It is 16 random bytes chosen by the member who
// creates the group; its text form is 32 lower-case hexadecimal characters.
// The zero GroupID is not a group: it marks envelopes that are not about one
// group (for example a peer-transport batch that carries several).
type GroupID [16]byte

// NewGroupID returns a fresh random group id.
func NewGroupID() GroupID {
	var g GroupID
	// crypto/rand.Read never returns an error (it crashes the program
	// irrecoverably instead), so there is nothing to handle.
	rand.Read(g[:])
	return g
}

// ParseGroupID parses the 32-character hexadecimal text form. Upper-case
// digits are accepted, so an id read aloud or retyped still parses;
// [GroupID.String] always writes lower case.
func ParseGroupID(s string) (GroupID, error) {
	var g GroupID
	if len(s) != 2*len(g) {
		return GroupID{}, fmt.Errorf("parse group id: %d characters, want %d", len(s), 2*len(g))
	}
	if _, err := hex.Decode(g[:], []byte(s)); err != nil {
		return GroupID{}, fmt.Errorf("parse group id: %v", err)
	}
	return g, nil
}

// String returns the 32-character lower-case hexadecimal form.
func (g GroupID) String() string { return hex.EncodeToString(g[:]) }

// MarshalText implements encoding.TextMarshaler with the hexadecimal form,
// so that group ids read naturally in JSON.
func (g GroupID) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (g *GroupID) UnmarshalText(b []byte) error {
	h, err := ParseGroupID(string(b))
	if err != nil {
		return err
	}
	*g = h
	return nil
}

// Type says what an envelope's payload is. It is one byte on the wire.
//
// Values 1 to 15 are messages between nodes that are acted on directly;
// values from 16 are log entries, which the group orders through consensus
// before anyone acts on them. Type 0 is never valid, so a zeroed envelope
// cannot be mistaken for a real one. Other values are reserved: a receiver
// rejects a type it does not know. Values 2 and 5 were once planned for a
// lone raft message and a join request and are never to be reused.
type Type uint8

// Envelope types between nodes.
const (
	// TypeBatch is the peer transport's unit: the payload is an encoded
	// batch (see [EncodeBatch]) of inner messages, so that one signature
	// covers many raft messages. Raft messages travel only in batches.
	TypeBatch Type = 1
	// TypePing and TypePong measure the round-trip time between two nodes.
	TypePing Type = 3
	TypePong Type = 4
	// TypeChallenge and TypeJoinReply are the exchange by which an invited
	// identity joins a group: the joiner asks for a challenge, signs it
	// into its [TypeJoin] entry, and gets the reply once it is committed.
	TypeJoinReply Type = 6
	TypeChallenge Type = 7
	// TypeHead is a member's signed statement of its transcript chain head
	// at a log index (a [Chain] head, in a payload like a checkpoint's).
	// Members carry their latest one in every ping and pong, directly to
	// each other rather than through the host, so that two who were shown
	// different histories find out (docs/PROTOCOL.md, "Forks").
	TypeHead Type = 8
	// TypeBehind is a member's request to be caught up in a group: it has
	// applied the group's log up to an index and asks for what follows.
	// A member answers it with that part of the log in [TypeCatchUp]
	// envelopes (docs/PROTOCOL.md, "Catching up from anyone").
	TypeBehind Type = 9
	// TypeCatchUp carries committed log entries to a member that asked for
	// them with [TypeBehind]. The entries are the signed frames of the log:
	// the member checks every one against the chain of membership it
	// already knows before it trusts any sender they name.
	TypeCatchUp Type = 10
	// TypeTentative carries an author's chat messages that its group has
	// not committed yet directly to another member, so that members who
	// can reach each other talk while the group cannot order messages (no
	// host, no majority of voters). The payload lists the author's own
	// signed [TypeChat] frames, each with its place among the tentative
	// messages (docs/PROTOCOL.md, "Tentative delivery"); the receiver
	// answers with [TypeDelivered].
	TypeTentative Type = 11
	// TypeDelivered is a member's signed answer to [TypeTentative]: the ids
	// of the messages it now holds.
	TypeDelivered Type = 12
	// TypeBlobGet is a member's request for a part of an attachment's
	// encrypted blob (docs/PROTOCOL.md, "Attachments"): the blob's id,
	// an offset and a length. A member that holds the blob for the group
	// answers with [TypeBlobPart].
	TypeBlobGet Type = 13
	// TypeBlobPart carries the part of a blob a [TypeBlobGet] asked for.
	TypeBlobPart Type = 14
	// TypeSuccessor offers a member of a group halted after a fork the
	// group that continues it (docs/PROTOCOL.md, "Re-forming"): the
	// successor's signed genesis and the member's invite code to it,
	// sent directly by the member that re-formed the group.
	TypeSuccessor Type = 15
)

// Log entry types: envelopes of these types are proposed to the group's
// replicated log and take effect when committed.
const (
	TypeGenesis    Type = 16 // creates the group
	TypeInvite     Type = 17 // a member invites an identity
	TypeJoin       Type = 18 // an invited identity joins
	TypeLeave      Type = 19 // a member leaves
	TypeRemove     Type = 20 // a member removes another
	TypeChat       Type = 21 // a sealed chat message (see [SealMessage])
	TypeLatencyMap Type = 22 // a member's measured round-trip times
	TypeCheckpoint Type = 23 // a transcript checkpoint
	TypeAddress    Type = 24 // a member's new peer address
	TypePromote    Type = 25 // a voter/learner role change
	TypeAdmin      Type = 26 // an admin grants or withdraws the admin role
	TypeSettings   Type = 27 // an admin changes the group's settings
	TypeRevoke     Type = 28 // an open invite is revoked
	TypeLead       Type = 29 // a new host announces itself
	TypeRename     Type = 30 // an admin renames the group
	TypeKeeper     Type = 31 // an admin invites a keeper (holds the log, reads nothing)
	TypeRekey      Type = 32 // a member asks for new sender keys (a suspected compromise)
	TypePrekey     Type = 33 // a member publishes its signed prekey (forward secrecy)
)

var typeNames = map[Type]string{
	TypeBatch:      "batch",
	TypePing:       "ping",
	TypePong:       "pong",
	TypeJoinReply:  "join-reply",
	TypeChallenge:  "challenge",
	TypeHead:       "head",
	TypeBehind:     "behind",
	TypeCatchUp:    "catch-up",
	TypeTentative:  "tentative",
	TypeDelivered:  "delivered",
	TypeBlobGet:    "blob-get",
	TypeBlobPart:   "blob-part",
	TypeSuccessor:  "successor",
	TypeGenesis:    "genesis",
	TypeInvite:     "invite",
	TypeJoin:       "join",
	TypeLeave:      "leave",
	TypeRemove:     "remove",
	TypeChat:       "chat",
	TypeLatencyMap: "latency-map",
	TypeCheckpoint: "checkpoint",
	TypeAddress:    "address",
	TypePromote:    "promote",
	TypeAdmin:      "admin",
	TypeSettings:   "settings",
	TypeRevoke:     "revoke",
	TypeLead:       "lead",
	TypeKeeper:     "keeper",
	TypeRekey:      "rekey",
	TypePrekey:     "prekey",
	TypeRename:     "rename",
}

// String returns the type's name as logs show it, such as "chat", or
// "type(99)" for a value this version does not define.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}
