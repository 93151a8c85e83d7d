package transcript

import (
	"crypto/sha256"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// This file holds the transcript format's types and constants, shared by
// the encoder (encode.go, what Build writes) and the reader (decode.go, what
// Verify reads). docs/PROTOCOL.md, section Transcripts, specifies the format.

// Version is the transcript format version, the "version" field of every
// transcript. [Verify] rejects any other value with [ErrVersion].
const Version = 1

// maxAttestation is the largest attestation (a signed TypeHead envelope) a
// transcript may carry, and maxAttestations how many.
const (
	maxAttestation  = 512
	maxAttestations = 4096
)

// MaxSize is the largest transcript [Verify] reads: 1 GiB, room for several
// hundred thousand messages.
const MaxSize = 1 << 30

// signatureDomain starts the exporter's signature input, so that no signature
// over a transcript can be taken for an envelope or a message record signed
// with the same key, nor the reverse (see docs/PROTOCOL.md (section Transcripts)).
const signatureDomain = "DeMeS transcript v1\x00"

// Kind says which kind of raft log entry carried a frame.
type Kind uint8

// The kinds of entries a transcript holds.
const (
	// KindEntry is a normal raft entry: its data is the frame.
	KindEntry Kind = iota + 1
	// KindConf is a raft membership change: its context is the frame that
	// authorises it, and the change itself is in [Entry.Change] and
	// [Entry.NodeID].
	KindConf
)

// Entry is one committed entry of a group's raft log that carries a signed
// envelope, as a transcript holds it.
type Entry struct {
	// Index is the entry's raft log index.
	Index uint64
	Kind  Kind
	// Change is the raft change of a KindConf entry: state.AddVoter,
	// state.AddLearner or state.Remove, or 0 for any other raft change type
	// (which the state machine rejects). NodeID is the raft node id it
	// names. Both are zero for a KindEntry.
	Change state.ConfKind
	NodeID uint64
	// Frame is the exact signed envelope: the entry's data, or the change's
	// context.
	Frame []byte
}

// document is the content of a transcript: the "body" the exporter signs.
type document struct {
	group      crypto.GroupID
	name       string
	exporter   identity.PublicID
	exportedAt time.Time
	// span is the range of the log whose messages the transcript shows;
	// nil for a whole transcript. Its Chats is not written.
	span    *Range
	entries []Entry
	// chains[i] is the transcript chain head after entries[i]. It is
	// redundant (a verifier recomputes it), and there so that a verifier
	// can point at the first entry that differs from what the exporter
	// signed, and a reader can match checkpoints and message heads by eye.
	chains   [][32]byte
	messages []message
	// attestations are members' signed statements of their chain heads
	// (crypto.TypeHead envelopes) that the exporter's node received
	// directly from them, not through the host: what `verify --trust`
	// checks. Written only when there are some.
	attestations [][]byte
	head         head
}

// message is one message the exporter decrypted: the fields people read, and
// the signed record they come from.
type message struct {
	index  uint64
	id     [16]byte
	author identity.PublicID
	text   string
	sentAt time.Time
	record []byte
	sig    []byte
	// key is the message's key (crypto.SenderKey.MessageKey), which opens
	// its entry's ciphertext; hasKey is false in a transcript without it.
	key    [32]byte
	hasKey bool
}

// head is the transcript chain after the last entry, and how many entries
// the transcript holds.
type head struct {
	index   uint64
	entries uint64
	hash    [32]byte
}

// changeNames are the text forms of Entry.Change.
var changeNames = map[state.ConfKind]string{
	state.AddVoter:   "add-voter",
	state.AddLearner: "add-learner",
	state.Remove:     "remove",
	0:                "other",
}

func changeByName(s string) (state.ConfKind, bool) {
	for k, n := range changeNames {
		if n == s {
			return k, true
		}
	}
	return 0, false
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// signatureInput is what the exporter signs: the domain string and the
// SHA-256 of the exact body bytes. Hashing first lets a verifier hash the
// body while it checks the entries, and keeps a large body from being hashed
// twice more inside Ed25519.
func signatureInput(body []byte) []byte {
	return signatureInputHash(sha256.Sum256(body))
}

func signatureInputHash(h [32]byte) []byte {
	return append([]byte(signatureDomain), h[:]...)
}
