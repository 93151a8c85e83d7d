package state

import "github.com/fxamacker/cbor/v2"

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
}

// InviteBody names the invited public id.
type InviteBody struct {
	_       struct{} `cbor:",toarray"`
	Invitee []byte   // 64-byte public id
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
type LatencyBody struct {
	_     struct{} `cbor:",toarray"`
	Peers [][]byte // 32-byte signing keys
	RTTus []uint32
}

// CheckpointBody attests a transcript head.
type CheckpointBody struct {
	_     struct{} `cbor:",toarray"`
	Index uint64
	Head  []byte // 32 bytes
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
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

// Decode decodes an entry body with hard limits.
func Decode(b []byte, v any) error { return decMode.Unmarshal(b, v) }
