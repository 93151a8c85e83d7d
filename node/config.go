package node

import (
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/election"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Timing is the raft timing profile. The LAN default (50 ms ticks, an
// election after 10 silent ticks) fails over in well under a second; slow or
// lossy networks want longer ticks.
type Timing struct {
	Tick           time.Duration
	ElectionTicks  int
	HeartbeatTicks int
}

// heartbeat is how often a host sends heartbeats.
func (t Timing) heartbeat() time.Duration { return t.Tick * time.Duration(t.HeartbeatTicks) }

// electionTimeout is raft's shortest election timeout.
func (t Timing) electionTimeout() time.Duration { return t.Tick * time.Duration(t.ElectionTicks) }

// LAN is the default timing profile.
var LAN = Timing{Tick: 50 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1}

// Tunables of this implementation: timeouts, limits and retry intervals that
// no Config field sets and that are not part of the protocol (the protocol's
// constants are in docs/PROTOCOL.md and next to their codecs).
const (
	// peerRequestTimeout bounds one request to a peer: a batch of raft
	// messages, a ping, an address announcement.
	peerRequestTimeout = 2 * time.Second
	// httpClientTimeout bounds a request of the HTTP link (a join request
	// gets joinLinkCap instead), idleConnTimeout how long it keeps an idle
	// connection to a peer.
	httpClientTimeout = 10 * time.Second
	idleConnTimeout   = 30 * time.Second
	// A peer queue that failed to deliver waits backoffMin, doubling up to
	// backoffMax, before it tries again (or until the peer talks to us).
	backoffMin = 20 * time.Millisecond
	backoffMax = time.Second

	// membershipTimeout bounds an invite, a removal or a leave until
	// committed; each is proposed again every reproposeAfter until then,
	// since a proposal is dropped while the group has no host.
	membershipTimeout = 30 * time.Second
	reproposeAfter    = time.Second
	// A joiner asks each member of the invite for a challenge
	// (challengeTimeout), then sends its signed join and waits for it to
	// commit; after a round without success it waits joinRetryInterval.
	// A challenge is valid for challengeLifetime. The waits of a join
	// request nest, so that the member's answer (committed, or not in
	// time: notCommittedBody) reaches the joiner rather than a timeout:
	// the member waits joinCommitTimeout for the commit, the joiner's
	// request waits joinRequestTimeout, and the HTTP link lets it run
	// for joinLinkCap instead of its usual httpClientTimeout (the libp2p
	// link has no cap of its own). Each margin of 5 s covers the round
	// trip, the checks and the signing on a loaded machine.
	challengeTimeout   = 5 * time.Second
	joinCommitTimeout  = 15 * time.Second
	joinRequestTimeout = joinCommitTimeout + 5*time.Second
	joinLinkCap        = joinRequestTimeout + 5*time.Second
	joinRetryInterval  = 500 * time.Millisecond
	// joinGiveUpAfter is how long a join goes on while no member at any of
	// the invite's addresses answers at all.
	joinGiveUpAfter   = 10 * time.Second
	challengeLifetime = time.Minute
)

// Config configures a node.
type Config struct {
	// Dir holds the store (store.db). It must exist.
	Dir      string
	Identity *identity.Identity
	// Name is the display name other members see.
	Name string
	// URL is the peer URL other nodes reach this node at when it starts;
	// Node.SetURL changes it while the node runs.
	URL  string
	Link Link
	// Path, when set, says how the transport reaches a member now
	// ("direct", "relayed" or ""), for status; the libp2p host's Path.
	Path func(signKey [32]byte) string
	// Reachability, when set, says whether peers on the internet can dial
	// this node, for status; from the libp2p host's AutoNAT.
	Reachability func() *api.Reachability

	Logger zerolog.Logger
	Timing Timing
	// MaxVoters caps the voters of groups this node creates (default 5).
	MaxVoters int
	// PingInterval is how often peers are pinged to measure latency (default 1 s).
	PingInterval time.Duration
	// RetryInterval is how often queued messages are proposed again (default 500 ms).
	RetryInterval time.Duration
	// JoinGiveUp bounds how long a join asks the members of its invite
	// to add this node (default 90 s, within the two minutes the CLI
	// waits, so that the reason reaches the person rather than a timeout
	// that blames their own node). Members that answer but cannot commit
	// the join (a majority of the group's voters offline) would be asked
	// again until the caller gave up.
	JoinGiveUp time.Duration
	// CensorAfter is how long this node's own messages may wait uncommitted
	// under a host that answers its pings and commits other members'
	// entries before it suspects the host of censoring it (default 5 s;
	// see censor.go).
	CensorAfter time.Duration
	// LatencyInterval is the least time between two latency maps this node
	// commits (default 5 s).
	LatencyInterval time.Duration
	// TransferCooldown is the least time between two leadership transfers
	// (default 3 s).
	TransferCooldown time.Duration
	// Hysteresis is how much better a member must be to take over as host
	// (default election.DefaultHysteresis).
	Hysteresis election.Hysteresis
	// events, when set, is shared with a Service so that subscriptions
	// survive a restart of the node.
	events *broadcaster
	// CheckpointEntries and CheckpointInterval rate-limit this node's signed
	// checkpoints of the transcript chain (defaults 100 entries, 60 s).
	CheckpointEntries  uint64
	CheckpointInterval time.Duration
	// MaxSkew is the clock difference tolerated on peer envelopes (default 5 min).
	MaxSkew time.Duration
	// SnapshotEntries is how many applied entries a group goes between two
	// snapshots of its state (default 10,000). A restart restores the
	// latest snapshot and applies only the log after it.
	SnapshotEntries uint64
	// SnapshotBytes is how much entry data a group applies at most between
	// two snapshots (default 8 MiB), whichever of it and SnapshotEntries
	// comes first: a restart holds the log after the latest snapshot in
	// memory until it has applied it, so this bounds that too.
	SnapshotBytes int
	// MemLogBytes bounds the entry data of a group's log held in memory
	// (default 2 MiB): past it, the applied entries before the newest half
	// of it are read from the store when raft needs them.
	MemLogBytes int
	// SnapshotKeep is how many entries before its latest snapshot a group
	// keeps in memory, for members a little behind (default 1,000). Older
	// entries are read back from the store: the store keeps the whole log.
	SnapshotKeep uint64
	// MessageWindow is how many of a group's newest messages the node keeps
	// opened in memory (default 1,000; it keeps up to twice as many
	// between two trims). Older pages are read from the stored log and
	// opened again when asked for, so the memory a group takes for its
	// messages does not grow with its history.
	MessageWindow int
	// RotateMessages and RotateAfter bound a sender key's use: this node
	// seals under a new one after that many messages under the same key
	// (default 100) or that long (default 7 days), besides the new one
	// every change of members and rekey brings.
	RotateMessages int
	RotateAfter    time.Duration
	// KeyRetention is how long this node keeps the key of each message
	// after it received it (keyfloor.go), and a whole sender key after its
	// owner may last have sealed under it (RotateAfter after it was
	// learnt): the age of the oldest messages it can still read, search
	// and export (default 30 days; negative: for good). Past it the keys
	// are deleted from the key store (keys.go), and whoever takes the
	// node's files later cannot read those messages (forward secrecy).
	KeyRetention time.Duration
	// PrekeyRotate is how often this node makes a new prekey for the others
	// to seal sender keys to (default 7 days); each is valid twice as
	// long. PrekeyGrace is how long a prekey's secret is kept after it
	// expired (default 7 days), for key headers still on their way. Both
	// are cut to a third of KeyRetention when that is shorter than a
	// prekey secret's life, so that no key header opens past the
	// retention window.
	PrekeyRotate time.Duration
	PrekeyGrace  time.Duration
	// Keeper runs the node as a keeper (keeper.go): it keeps the logs of
	// the groups admins add it to and reads and sends nothing.
	Keeper bool
	// KeepFor, for a keeper, names the people (their identity keys)
	// whose groups it keeps: it takes a keeper code only when one of them
	// made it. Empty: anyone's, so that a stranger may have it keep groups
	// of its own, up to its limit (maxKept), and hold it busy one offer
	// at a time.
	KeepFor [][32]byte
	// MaxAttachment is the largest file this node sends or fetches, in
	// bytes (default 25 MB; files.go).
	MaxAttachment int64
	// AttachmentsPerDay is how many bytes of files of one author this node
	// fetches by itself in a day (the last 24 hours); a file beyond that
	// is fetched only when someone here opens it, so that one member
	// cannot fill every member's disk. Default: 10 files of MaxAttachment.
	AttachmentsPerDay int64
	// Relays, when set, is called with the circuit relays the settings of
	// this node's groups list (state.Settings.Relays: each relay once, in
	// a sorted list), once soon after the node opens and again whenever
	// that list changes, one call at a time on a goroutine of the node's.
	// serve gives the libp2p host's UseGroupRelays, so that the node
	// holds a slot on each of its groups' relays.
	Relays func(relays []string)
}

// maxPeerURL is the longest peer URL a node takes from a peer (a join, an
// address announcement, a behind notice): the group's state takes an address
// entry's only up to that, and p2p.FormatURL keeps a URL of several
// addresses under it.
const maxPeerURL = 512

// maxAppendBytes bounds the entry data of one append, as raft sends it and
// as coalesce merges them.
const maxAppendBytes = 1 << 20

// maxInflightAppends is how many appends the host has on their way to one
// member before it waits for an answer. Entries proposed meanwhile wait at
// the host and go in the next append together: under load a member then
// writes and answers fewer, larger appends (five processes on two cores: about
// 11% less CPU per message than with 256 in flight, in six paired runs). A
// member catching up still gets 2 MiB per round trip.
const maxInflightAppends = 2

// A request carries at most maxBatch messages and, unless a single message
// is larger, maxBatchBytes of them, well under the receiver's limit
// (crypto.MaxFrame): a member catching up gets appends of up to
// maxAppendBytes each, and a batch of them over the limit would be refused
// every time it was sent again.
const (
	maxBatch      = 512
	maxBatchBytes = 4 << 20
)

// peerQueue is how many raft messages wait for one peer before raft is told
// the peer is unreachable (and sends them again later).
const peerQueue = 4096

// raftConfig is the raft configuration of a group; applied is the index up
// to which the group's state is restored already (raft hands over the
// committed entries after it only).
func (n *Node) raftConfig(id uint64, storage raft.Storage, applied uint64) *raft.Config {
	return &raft.Config{
		ID:                id,
		ElectionTick:      n.cfg.Timing.ElectionTicks,
		HeartbeatTick:     n.cfg.Timing.HeartbeatTicks,
		Storage:           storage,
		Applied:           applied,
		MaxSizePerMsg:     maxAppendBytes,
		MaxInflightMsgs:   maxInflightAppends,
		CheckQuorum:       true,
		PreVote:           true,
		StepDownOnRemoval: true,
		Logger:            raftLogger{n.log},
	}
}

// withDefaults fills in the default of every setting left at its zero value.
func (cfg Config) withDefaults() Config {
	if cfg.Timing.Tick == 0 {
		cfg.Timing = LAN
	}
	if cfg.MaxVoters == 0 {
		cfg.MaxVoters = state.DefaultMaxVoters
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Second
	}
	if cfg.RotateMessages == 0 {
		cfg.RotateMessages = 100
	}
	// A reader opens at most crypto.MaxChain messages under one key.
	cfg.RotateMessages = min(cfg.RotateMessages, crypto.MaxChain)
	if cfg.RotateAfter == 0 {
		cfg.RotateAfter = 7 * 24 * time.Hour
	}
	if cfg.KeyRetention == 0 {
		cfg.KeyRetention = DefaultKeyRetention
	}
	if cfg.PrekeyRotate == 0 {
		cfg.PrekeyRotate = 7 * 24 * time.Hour
	}
	if cfg.PrekeyRotate > prekey.MaxLifetime/2 {
		cfg.PrekeyRotate = prekey.MaxLifetime / 2
	}
	if cfg.PrekeyGrace == 0 {
		cfg.PrekeyGrace = 7 * 24 * time.Hour
	}
	// A key header in the log opens for as long as the secret of the
	// prekey it is sealed to is kept (twice PrekeyRotate, then
	// PrekeyGrace): with a shorter retention, a thief would open the
	// header again and read what the retention deleted (keyfloor.go). So
	// the prekeys turn over within the retention window.
	if r := cfg.KeyRetention; r > 0 && 2*cfg.PrekeyRotate+cfg.PrekeyGrace > r {
		cfg.PrekeyRotate = max(min(cfg.PrekeyRotate, r/3), time.Millisecond)
		cfg.PrekeyGrace = max(min(cfg.PrekeyGrace, r/3), time.Millisecond)
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 500 * time.Millisecond
	}
	if cfg.JoinGiveUp == 0 {
		cfg.JoinGiveUp = 90 * time.Second
	}
	if cfg.CensorAfter == 0 {
		cfg.CensorAfter = 5 * time.Second
	}
	if cfg.LatencyInterval == 0 {
		cfg.LatencyInterval = 5 * time.Second
	}
	if cfg.TransferCooldown == 0 {
		cfg.TransferCooldown = 3 * time.Second
	}
	if cfg.Hysteresis == (election.Hysteresis{}) {
		cfg.Hysteresis = election.DefaultHysteresis()
	}
	if cfg.CheckpointEntries == 0 {
		cfg.CheckpointEntries = 100
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Minute
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = 5 * time.Minute
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = 10_000
	}
	if cfg.SnapshotKeep == 0 {
		cfg.SnapshotKeep = 1_000
	}
	if cfg.SnapshotBytes <= 0 {
		cfg.SnapshotBytes = 8 << 20
	}
	if cfg.MemLogBytes <= 0 {
		cfg.MemLogBytes = defaultMemLogBytes
	}
	if cfg.AttachmentsPerDay <= 0 {
		cfg.AttachmentsPerDay = 10 * max(cfg.MaxAttachment, DefaultMaxAttachment)
	}
	if cfg.MaxAttachment <= 0 {
		cfg.MaxAttachment = DefaultMaxAttachment
	}
	if cfg.MessageWindow <= 0 {
		cfg.MessageWindow = 1_000
	}
	return cfg
}
