package state

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// SnapshotVersion is the version of the encoding [State.Snapshot] writes,
// its first field. [Restore] reads only this version.
const SnapshotVersion = 5

// SnapshotVersionSplit is the version [State.SnapshotWithoutIDs] writes:
// the same encoding, without the accepted message ids, which the node
// stores apart ([State.FreshIDs]); [RestoreWithIDs] reads it with them. A
// build that knows only SnapshotVersion refuses it, and applies the log
// again rather than restore a state without its ids.
const SnapshotVersionSplit = 6

// MaxSnapshotItems bounds every list in a snapshot: accepted message ids,
// members, anchor heads. A group reaches it after about 67
// million messages; the limit is there so that a corrupt length in a
// snapshot file fails decoding rather than asks for an absurd allocation.
const MaxSnapshotItems = 1 << 26

// snapDecMode decodes snapshots. It differs from the entry bodies' decMode
// only in its limits: a snapshot of a big group holds millions of message
// ids, far beyond the 4096 items an entry may carry.
var snapDecMode cbor.DecMode

func init() {
	var err error
	snapDecMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxArrayElements: MaxSnapshotItems,
		MaxMapPairs:      16, // the smallest the library allows; a snapshot has no maps
		MaxNestedLevels:  8,  // a snapshot nests 5 deep
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// The wire form of a snapshot: deterministic CBOR arrays, maps written as
// lists sorted by key (byte-wise), keys and ids as byte strings so that the
// decoder sees their real length.
type snapshotWire struct {
	_         struct{} `cbor:",toarray"`
	Version   uint64
	Group     []byte // 16 bytes
	Name      string
	Creator   []byte // 64-byte public id, or empty before the genesis
	MaxVoters int
	Settings  settingsWire
	Host      []byte // 32 bytes, or empty for none
	Applied   uint64
	Epoch     uint64
	Joins     int
	Chain     chainWire
	Members   []memberWire // by signing key
	Former    []memberWire // by signing key
	Invites   []inviteWire // by invitee signing key
	MsgIDs    []byte       // packed (see msgIDsIn), by message id
	Latency   []latencyWire
	Keys      []senderKeysWire
	Anchors   []chainWire // in index order (heads.go)
	Heads     []chainWire // the last HeadWindow, in index order
}

// settingsWire is the settings in a snapshot, encoded as in the settings
// entry: three elements, or four with relays, so that snapshots without
// relays keep the bytes they had before relays existed.
type settingsWire = SettingsBody

type chainWire struct {
	_     struct{} `cbor:",toarray"`
	Index uint64
	Head  []byte // 32 bytes
}

type memberWire struct {
	_        struct{} `cbor:",toarray"`
	ID       []byte   // 64-byte public id
	RaftID   uint64
	Name     string
	URL      string
	Voter    bool
	JoinedAt uint64
	LeftAt   uint64
	Order    int
	Admin    bool
	Counter  uint64
	Time     int64
	Quota    usageWire
	Keeper   bool
	Prekey   []byte // a signed prekey, or empty
	Rekeyed  int64
}

type usageWire struct {
	_           struct{} `cbor:",toarray"`
	Time        int64
	MinuteStart int64
	Msgs        uint32
	DayStart    int64
	Bytes       uint64
}

type inviteWire struct {
	_       struct{} `cbor:",toarray"`
	Invitee []byte   // 64
	Inviter []byte   // 64
	Index   uint64
	Expires int64
	Keeper  bool
}

// An accepted message in a snapshot's packed list is its 16-byte id, then
// the index it was accepted at as an unsigned varint (encoding/binary,
// shortest form). Packed, the list costs about 19 bytes a message and no
// allocation per message to write or read; as CBOR arrays it cost two
// allocations each, at every snapshot of a long history.

type latencyWire struct {
	_      struct{}  `cbor:",toarray"`
	Sender []byte    // 32
	Peers  []rttWire // by peer key
}

type rttWire struct {
	_      struct{} `cbor:",toarray"`
	Peer   []byte   // 32
	Millis float64
}

type senderKeysWire struct {
	_      struct{}    `cbor:",toarray"`
	Sender []byte      // 32
	Keys   []keyAtWire // by key id
}

type keyAtWire struct {
	_     struct{} `cbor:",toarray"`
	ID    []byte   // crypto.KeyIDSize
	Index uint64
}

// Snapshot encodes the whole state, the unexported parts included (the
// sender keys registered in the current epoch, the join counter, the chain
// heads it keeps), so that [Restore] gives back a state that applies
// every further entry exactly as this one would. The encoding is
// deterministic: equal states give equal bytes. It fails for a state whose
// older message ids are in the node's store ([State.KeepIDsIn]); such a
// state is copied with [State.Copy].
func (s *State) Snapshot() ([]byte, error) {
	if s.MsgIDs.storedTo > 0 {
		return nil, errIDsStored
	}
	return s.snapshot(SnapshotVersion)
}

// snapshot encodes the state in version v: with the message ids in
// SnapshotVersion, without them in the others.
func (s *State) snapshot(v uint64) ([]byte, error) {
	w := snapshotWire{
		Version:   v,
		Group:     s.Group[:],
		Name:      s.Name,
		MaxVoters: s.MaxVoters,
		Host:      hostOut(s.Host),
		Settings:  settingsWire{MembersInvite: s.Settings.MembersInvite, MsgsPerMinute: s.Settings.MsgsPerMinute, BytesPerDay: s.Settings.BytesPerDay, Relays: s.Settings.Relays},
		Applied:   s.Applied,
		Epoch:     s.Epoch,
		Joins:     s.joins,
		Chain:     chainOut(s.Chain),
		Members:   membersOut(s.Members),
		Former:    membersOut(s.Former),
	}
	if !s.Creator.IsZero() {
		w.Creator = s.Creator.Bytes()
	}
	for _, k := range keys32(s.Invites) {
		inv := s.Invites[k]
		w.Invites = append(w.Invites, inviteWire{Invitee: inv.Invitee.Bytes(), Inviter: inv.Inviter.Bytes(), Index: inv.Index, Expires: inv.Expires, Keeper: inv.Keeper})
	}
	if v == SnapshotVersion {
		w.MsgIDs = packIDAts(s.MsgIDs.inOrder())
	}
	for _, sender := range keys32(s.Latency) {
		m := s.Latency[sender]
		l := latencyWire{Sender: sender[:]}
		for _, p := range keys32(m) {
			l.Peers = append(l.Peers, rttWire{Peer: p[:], Millis: m[p]})
		}
		w.Latency = append(w.Latency, l)
	}
	for _, sender := range keys32(s.keys) {
		ks := s.keys[sender]
		k := senderKeysWire{Sender: sender[:]}
		for _, id := range keys16(ks) {
			k.Keys = append(k.Keys, keyAtWire{ID: id[:], Index: ks[id]})
		}
		w.Keys = append(w.Keys, k)
	}
	w.Anchors, w.Heads = chainsOut(s.anchors), chainsOut(s.heads)
	b, err := encMode.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("encode state snapshot: %w", err)
	}
	return b, nil
}

// keys32 and keys16 return the keys of m in byte-wise order: the order of
// every map in a snapshot.
func keys32[V any](m map[[32]byte]V) [][32]byte {
	out := make([][32]byte, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func keys16[V any](m map[[16]byte]V) [][16]byte {
	out := make([][16]byte, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func chainOut(c crypto.Chain) chainWire { return chainWire{Index: c.Index, Head: c.Head[:]} }

func chainsOut(cs []crypto.Chain) []chainWire {
	if len(cs) == 0 {
		return nil
	}
	out := make([]chainWire, len(cs))
	for i, c := range cs {
		out[i] = chainOut(c)
	}
	return out
}

func usageOut(u Usage) usageWire {
	return usageWire{Time: u.Time, MinuteStart: u.MinuteStart, Msgs: u.Msgs, DayStart: u.DayStart, Bytes: u.Bytes}
}

func usageIn(w usageWire) Usage {
	return Usage{Time: w.Time, MinuteStart: w.MinuteStart, Msgs: w.Msgs, DayStart: w.DayStart, Bytes: w.Bytes}
}

func membersOut(m map[[32]byte]*Member) []memberWire {
	var out []memberWire
	for _, k := range keys32(m) {
		mem := m[k]
		out = append(out, memberWire{ID: mem.ID.Bytes(), RaftID: mem.RaftID, Name: mem.Name, URL: mem.URL,
			Voter: mem.Voter, Admin: mem.Admin, JoinedAt: mem.JoinedAt, LeftAt: mem.LeftAt, Order: mem.Order,
			Counter: mem.Counter, Time: mem.Time, Quota: usageOut(mem.Quota), Keeper: mem.Keeper, Prekey: mem.Prekey, Rekeyed: mem.Rekeyed})
	}
	return out
}

// ErrBadSnapshot is wrapped by every error of [Restore] about its input.
var ErrBadSnapshot = errors.New("malformed state snapshot")

// ErrSnapshotVersion is the error of restoring a snapshot of a version the
// function does not read. It wraps [ErrBadSnapshot].
var ErrSnapshotVersion = fmt.Errorf("%w: a version not read here", ErrBadSnapshot)

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
}

// Restore decodes a state written by [State.Snapshot] for group. It reads a
// file, so it trusts nothing: it rejects, with an error wrapping
// [ErrBadSnapshot], a snapshot of another version or group, a field of the
// wrong length, a list out of order or with duplicates, an index beyond the
// state's applied index, a chain whose heads disagree, and any encoding other
// than the one Snapshot writes. It never panics, and the lists it accepts are
// at most [MaxSnapshotItems] long.
func Restore(group crypto.GroupID, data []byte) (*State, error) {
	return restore(group, data, SnapshotVersion)
}

// restore is Restore of a snapshot of one of the versions given.
func restore(group crypto.GroupID, data []byte, versions ...uint64) (*State, error) {
	var w snapshotWire
	if err := snapDecMode.Unmarshal(data, &w); err != nil {
		return nil, bad("%v", err)
	}
	if !slices.Contains(versions, w.Version) {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrSnapshotVersion, w.Version, versions[len(versions)-1])
	}
	if w.Version != SnapshotVersion && len(w.MsgIDs) > 0 {
		return nil, bad("message ids in a snapshot that stores them apart")
	}
	s, err := w.state(group)
	if err != nil {
		return nil, err
	}
	// One encoding per state: the state read must encode to exactly the
	// bytes read, so that a snapshot file means one thing, and whatever
	// the checks above missed (a nil list written as an empty one, say)
	// is refused here.
	again, err := s.snapshot(w.Version)
	if err != nil || !bytes.Equal(again, data) {
		return nil, bad("not in the encoding this state has")
	}
	return s, nil
}

func hostOut(k [32]byte) []byte {
	if k == ([32]byte{}) {
		return nil
	}
	return k[:]
}

func (w *snapshotWire) state(group crypto.GroupID) (*State, error) {
	if len(w.Group) != len(group) || [16]byte(w.Group) != group {
		return nil, bad("snapshot of group %x, not %s", w.Group, group)
	}
	s := New(group)
	s.Name, s.MaxVoters, s.Applied, s.Epoch, s.joins = w.Name, w.MaxVoters, w.Applied, w.Epoch, w.Joins
	switch len(w.Host) {
	case 0:
	case 32:
		s.Host = [32]byte(w.Host)
	default:
		return nil, bad("a host key of %d bytes", len(w.Host))
	}
	s.Settings = Settings{MembersInvite: w.Settings.MembersInvite, MsgsPerMinute: w.Settings.MsgsPerMinute, BytesPerDay: w.Settings.BytesPerDay, Relays: w.Settings.Relays}
	if b := w.Settings.BytesPerDay; b != 0 && b < MinBytesPerDay {
		return nil, bad("byte quota of %d per day", b)
	}
	if err := CheckRelays(w.Settings.Relays); err != nil {
		return nil, bad("settings: %v", err)
	}
	if w.MaxVoters < 1 || w.Joins < 0 || w.Epoch > w.Applied {
		return nil, bad("max voters %d, joins %d, epoch %d at applied %d", w.MaxVoters, w.Joins, w.Epoch, w.Applied)
	}
	if len(w.Creator) > 0 {
		c, err := identity.PublicIDFromBytes(w.Creator)
		if err != nil {
			return nil, bad("creator: %v", err)
		}
		s.Creator = c
	}
	var err error
	if s.Chain, err = chainIn(w.Chain, w.Applied); err != nil {
		return nil, err
	}
	if err := membersIn(s.Members, w.Members, w.Applied, w.Joins, false); err != nil {
		return nil, err
	}
	if err := membersIn(s.Former, w.Former, w.Applied, w.Joins, true); err != nil {
		return nil, err
	}
	for k := range s.Members {
		if _, ok := s.Former[k]; ok {
			return nil, bad("member %x is also a former member", k[:4])
		}
	}
	if s.Creator.IsZero() && (len(s.Members) > 0 || len(s.Former) > 0 || w.Joins > 0) {
		return nil, bad("members without a genesis")
	}
	var prev []byte
	for _, iw := range w.Invites {
		invitee, err1 := identity.PublicIDFromBytes(iw.Invitee)
		inviter, err2 := identity.PublicIDFromBytes(iw.Inviter)
		if err := errors.Join(err1, err2); err != nil {
			return nil, bad("invite: %v", err)
		}
		if err := ascending(prev, invitee.Sign[:], "invites"); err != nil {
			return nil, err
		}
		prev = invitee.Sign[:]
		if iw.Index > w.Applied {
			return nil, bad("invite at %d after applied index %d", iw.Index, w.Applied)
		}
		s.Invites[invitee.Sign] = Invite{Invitee: invitee, Inviter: inviter, Index: iw.Index, Expires: iw.Expires, Keeper: iw.Keeper}
	}
	if err := msgIDsIn(&s.MsgIDs, w.MsgIDs, w.Applied); err != nil {
		return nil, err
	}
	prev = nil
	for _, l := range w.Latency {
		if len(l.Sender) != 32 {
			return nil, bad("latency map of a %d-byte key", len(l.Sender))
		}
		if err := ascending(prev, l.Sender, "latency maps"); err != nil {
			return nil, err
		}
		prev = l.Sender
		m := make(map[[32]byte]float64, len(l.Peers))
		var prevPeer []byte
		for _, p := range l.Peers {
			if len(p.Peer) != 32 {
				return nil, bad("latency to a %d-byte key", len(p.Peer))
			}
			if err := ascending(prevPeer, p.Peer, "latency peers"); err != nil {
				return nil, err
			}
			prevPeer = p.Peer
			if math.IsNaN(p.Millis) || math.IsInf(p.Millis, 0) || p.Millis < 0 {
				return nil, bad("latency of %v ms", p.Millis)
			}
			m[[32]byte(p.Peer)] = p.Millis
		}
		s.Latency[[32]byte(l.Sender)] = m
	}
	prev = nil
	for _, sk := range w.Keys {
		if len(sk.Sender) != 32 {
			return nil, bad("sender keys of a %d-byte key", len(sk.Sender))
		}
		if err := ascending(prev, sk.Sender, "sender keys"); err != nil {
			return nil, err
		}
		prev = sk.Sender
		if len(sk.Keys) == 0 {
			// The state never holds an empty set of keys for a sender.
			return nil, bad("empty key set of %x", sk.Sender[:4])
		}
		ks := make(map[[crypto.KeyIDSize]byte]uint64, len(sk.Keys))
		var prevID []byte
		for _, k := range sk.Keys {
			if len(k.ID) != crypto.KeyIDSize {
				return nil, bad("sender key id of %d bytes", len(k.ID))
			}
			if err := ascending(prevID, k.ID, "sender key ids"); err != nil {
				return nil, err
			}
			prevID = k.ID
			// A key registered in the current epoch: after its start.
			if k.Index <= w.Epoch || k.Index > w.Applied {
				return nil, bad("sender key registered at %d, epoch %d, applied %d", k.Index, w.Epoch, w.Applied)
			}
			ks[[crypto.KeyIDSize]byte(k.ID)] = k.Index
		}
		s.keys[[32]byte(sk.Sender)] = ks
	}
	if s.anchors, err = chainsIn(w.Anchors, w.Applied, "anchor heads"); err != nil {
		return nil, err
	}
	if s.heads, err = chainsIn(w.Heads, w.Applied, "chain heads"); err != nil {
		return nil, err
	}
	if err := s.checkHeads(); err != nil {
		return nil, err
	}
	return s, nil
}

// AcceptedChat returns the chat message that s accepted at index, if frame,
// the log entry at that index, is one, and nil otherwise. It applies
// nothing. It is for a node that restored s from a snapshot and rebuilds
// what it derived from the messages before the snapshot (the messages it
// lists, the sender keys it opened) without applying them again.
//
// The frame's signature is not checked again (see crypto.ParseTrusted): the
// state machine checked it when it applied the entry, and s records that a
// message with the frame's id was accepted at exactly this index, which no
// other entry can claim. The Chat is the one ApplyEntry returned then,
// except that KeyAt is zero for a message of an earlier epoch: s keeps the
// registrations of the current epoch only.
func (s *State) AcceptedChat(index uint64, frame []byte) *Chat {
	env, err := crypto.ParseTrusted(frame)
	if err != nil || env.Type != crypto.TypeChat || env.Group != s.Group {
		return nil
	}
	var b ChatBody
	if Decode(env.Payload, &b) != nil || len(b.ID) != 16 {
		return nil
	}
	id := [16]byte(b.ID)
	if at, ok := s.MsgIDs.Lookup(id); !ok || at != index {
		return nil
	}
	info, err := crypto.ReadSealed(b.Sealed)
	if err != nil {
		return nil
	}
	c := &Chat{Index: index, ID: id, Sender: env.Sender, Time: env.Time, Sealed: b.Sealed,
		Epoch: info.Epoch, KeyID: info.KeyID, Header: info.HasHeader()}
	if info.Epoch == s.Epoch {
		c.KeyAt = s.keys[env.Sender][info.KeyID]
	}
	return c
}
