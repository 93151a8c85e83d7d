package state

import (
	"crypto/sha256"
	"errors"
	"math"

	"github.com/fxamacker/cbor/v2"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/internal/canon"
)

// Entry bodies. Each is the Payload of a signed envelope of the named type,
// encoded as deterministic CBOR arrays (see docs/PROTOCOL.md).

// Genesis is the body of the first entry: it names the group and its creator.
type Genesis struct {
	_         struct{} `cbor:",toarray"`
	Name      string
	Creator   []byte // 64-byte public id
	RaftID    uint64
	URL       string
	Nickname  string // the creator's display name
	MaxVoters int
	// Nonce makes every genesis unique, and so every group id (see
	// [GroupIDOf]): 16 to 64 random bytes.
	Nonce []byte
}

// GroupIDOf derives a group's id from the payload of its genesis entry: the
// first 16 bytes of SHA-256 over a domain label and the payload. The id is
// self-certifying: whoever knows it can check a genesis offered for it, so
// nobody can stand up a different group under an id they were given (the
// genesis names the creator, whose signature it carries).
func GroupIDOf(genesisPayload []byte) crypto.GroupID {
	h := sha256.New()
	h.Write([]byte("demes group id v1\x00"))
	h.Write(genesisPayload)
	var id crypto.GroupID
	copy(id[:], h.Sum(nil))
	return id
}

// InviteBody names the invited public id and when the invite expires.
type InviteBody struct {
	_       struct{} `cbor:",toarray"`
	Invitee []byte   // 64-byte public id
	Expires int64    // unix nanoseconds
}

// JoinBody is signed by the joiner itself: proof that it holds its key, and
// the nonce the contacted member challenged it with.
type JoinBody struct {
	_        struct{} `cbor:",toarray"`
	PublicID []byte   // 64 bytes
	RaftID   uint64
	Name     string
	URL      string
	Nonce    []byte
}

// TargetBody names the member a promotion, demotion or removal is about.
type TargetBody struct {
	_      struct{} `cbor:",toarray"`
	Target []byte   // 32-byte signing key
	Voter  bool     // for TypePromote: true to promote, false to demote
}

// AdminBody grants (Admin true) or withdraws the admin role of a member.
type AdminBody struct {
	_      struct{} `cbor:",toarray"`
	Target []byte   // 32-byte signing key
	Admin  bool
}

// SettingsBody is the whole of a group's settings, as an admin sets them.
// It is a CBOR array of three elements, or of four when Relays is not
// empty (see [SettingsBody.MarshalCBOR]).
type SettingsBody struct {
	// MembersInvite lets every member invite; otherwise only admins may.
	MembersInvite bool
	// MsgsPerMinute is how many chat messages each member may have accepted
	// per minute; 0 means [DefaultMsgsPerMinute].
	MsgsPerMinute uint32
	// BytesPerDay is how many bytes of chat entries each member may have
	// accepted per day: 0 for [DefaultBytesPerDay], else at least
	// [MinBytesPerDay].
	BytesPerDay uint64
	// Relays are circuit relays every member reserves a slot on, so that
	// members behind routers reach each other: at most [MaxRelays], each in
	// the form [NormalizeRelay] gives, each relay once (see [CheckRelays]).
	Relays []string
}

// LeadBody is the entry a host commits when it starts to lead: from then
// on it is the group's host as far as the state machine is concerned (see
// [State.Host]), the one member whose voter changes count.
type LeadBody struct {
	_    struct{} `cbor:",toarray"`
	Term uint64   // the raft term it leads in, for the reader's information
}

// AddressBody updates the sender's peer URL.
type AddressBody struct {
	_   struct{} `cbor:",toarray"`
	URL string
}

// ChatBody carries a sealed message and its id in the clear, so that every
// member can de-duplicate retries without being able to read the message.
type ChatBody struct {
	_      struct{} `cbor:",toarray"`
	ID     []byte   // 16 bytes; equals the id inside the sealed record
	Sealed []byte
}

// LatencyBody is a member's latency map: RTTs in microseconds to peers.
// [RelayedBit] set in an RTT marks a peer that the member reaches only
// through a circuit relay.
type LatencyBody struct {
	_     struct{} `cbor:",toarray"`
	Peers [][]byte // 32-byte signing keys
	RTTus []uint32
}

// RelayedBit, set in a [LatencyBody] RTT, marks a peer reached only through
// a relay; the other bits are the RTT in microseconds. A build that does
// not know the bit reads an RTT of over 35 minutes, which placement ignores
// as no measurement (election.MaxRTTMillis), so the mark needs no new
// entry type.
const RelayedBit = 1 << 31

// SplitRTT reads a value of [State.Latency]: the RTT in milliseconds and
// whether the reporter marked the peer as reached only through a relay.
func SplitRTT(v float64) (ms float64, relayed bool) {
	us := uint32(min(math.Round(v*1000), math.MaxUint32))
	return float64(us&^RelayedBit) / 1000, us&RelayedBit != 0
}

// RenameBody is an admin's new name for the group.
type RenameBody struct {
	_    struct{} `cbor:",toarray"`
	Name string
}

// CheckpointBody attests a transcript head.
type CheckpointBody struct {
	_     struct{} `cbor:",toarray"`
	Index uint64
	Head  []byte // 32 bytes
}

var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxArrayElements: 4096,
		MaxMapPairs:      4096,
		MaxNestedLevels:  8,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Encode encodes an entry body.
func Encode(v any) ([]byte, error) { return encMode.Marshal(v) }

// ErrNotCanonical is returned by [Decode] for a body that decodes but is not
// in the one encoding [Encode] gives it.
var ErrNotCanonical = errors.New("body is not in canonical CBOR")

// Decode decodes an entry body with hard limits, and only in its canonical
// encoding: the body must be exactly what [Encode] makes of the value read
// (shortest integers and lengths, definite lengths, no tags, the fields of
// the type and no others). A signed body thus has one encoding, so that no
// one can make a second frame for the same statement or hide bytes in one.
func Decode(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return err
	}
	same, err := canon.Encodes(encMode, v, b)
	if err != nil {
		return err
	}
	if !same {
		return ErrNotCanonical
	}
	return nil
}
