package state

import (
	"fmt"
	"math"
	"time"
)

// Per-member quotas (issue 15, item 11): no member can exhaust the others'
// disks and bandwidth by chatting. Each member may have at most
// [Settings.MsgsLimit] chat messages accepted per minute and
// [Settings.BytesLimit] bytes of chat entries (whole signed frames, as the
// log stores them) per day. An admin sets both in the group's settings; 0
// there means the default, which no normal chat reaches.
const (
	// DefaultMsgsPerMinute is the message quota of a group whose settings
	// say 0: two messages a second, sustained for a minute.
	DefaultMsgsPerMinute = 120
	// DefaultBytesPerDay is the byte quota of a group whose settings say
	// 0: about 750 maximum-size messages a day, or hundreds of thousands
	// of ordinary ones.
	DefaultBytesPerDay = 50 << 20
	// MinBytesPerDay is the smallest byte quota a group may set: more than
	// the largest chat entry there is (a 64 KiB message sealed to the most
	// recipients), so that every message fits in a member's day.
	MinBytesPerDay = 1 << 20
	// QuotaLead is how far ahead of the voters' clock ([State.VoterClock])
	// a message's quota time may be (see [State.quotaTime]).
	QuotaLead = 5 * time.Minute
	// RekeyInterval is how often each member may have a rekey entry
	// accepted. A rekey makes every member seal its next message with a
	// new key header, about 1.2 KB per member (docs/PROTOCOL.md, "Forward
	// secrecy"), charged to that member's byte quota and kept in every
	// member's log: without a bound, one member rekeying between
	// messages would spend the others' quotas (at 100 members, 120 KB of
	// each honest member's day per rekey) and grow the log by megabytes
	// a minute. A person who suspects a compromise rekeys once; the node
	// that lost its keys, once.
	RekeyInterval = time.Hour
)

const (
	quotaMinute = int64(time.Minute)
	quotaDay    = int64(24 * time.Hour)
)

// MsgsLimit is the number of chat messages a member may have accepted per
// minute: the setting, or [DefaultMsgsPerMinute] for 0.
func (s Settings) MsgsLimit() uint32 {
	if s.MsgsPerMinute == 0 {
		return DefaultMsgsPerMinute
	}
	return s.MsgsPerMinute
}

// BytesLimit is the number of bytes of chat entries a member may have
// accepted per day: the setting, or [DefaultBytesPerDay] for 0.
func (s Settings) BytesLimit() uint64 {
	if s.BytesPerDay == 0 {
		return DefaultBytesPerDay
	}
	return s.BytesPerDay
}

// Usage is what a member used of its quota, as of its last accepted chat
// message. The windows are fixed: a minute (a day) starts at the quota time
// of the first message after the previous one ended, so a member may send
// up to twice its quota across a window's end, never more.
type Usage struct {
	// Time is the quota time of the member's last accepted chat message;
	// quota times never go back.
	Time int64
	// MinuteStart is when the current minute began, Msgs how many
	// messages were accepted in it.
	MinuteStart int64
	Msgs        uint32
	// DayStart is when the current day began, Bytes how many bytes of
	// chat entries were accepted in it.
	DayStart int64
	Bytes    uint64
}

// QuotaItem is one chat entry a member is about to send: the signing time
// of its envelope and the size of its frame.
type QuotaItem struct {
	Time int64
	Size int
}

// VoterClock is the lower median of the voters' latest signing times, in
// unix nanoseconds: the clock quotas are measured against.
//
// Why not [State.Clock], the median over all members: quotas must never
// stall an honest member, and Clock stalls whenever half the members are
// quiet (common in a big group where most read and few write; each quiet
// member's vote is its last signature, possibly weeks old). The voters'
// clock moves whenever the group can commit at all: a commit needs a
// majority of the voters online, and every online member signs a checkpoint
// at least once a minute while the log grows (node.Config
// CheckpointInterval), so the median of the voters is at most about a
// minute behind real time in a group where anyone chats. No minority of the
// voters can move it forward, a member that is no voter not at all.
func (s *State) VoterClock() int64 { return s.medianTime(func(m *Member) bool { return m.Voter }) }

// quotaTime is the time a chat message from m signed at signed counts at:
// its signing time, but never before m's previous one (a member cannot go
// back to a window it used up) and never more than [QuotaLead] after the
// voters' clock (a member cannot open new windows by dating its messages in
// the future: at most QuotaLead's worth once, then no faster than the
// voters' clock moves). Everything here comes from the log, so every member
// and a verifier charge each message at the same time; no wall clock is
// read. An honest member's messages count at their signing time, since the
// voters' clock is at most about a minute behind (see VoterClock).
func (s *State) quotaTime(m *Member, signed int64) int64 {
	return max(m.Quota.Time, min(signed, s.quotaCeiling()))
}

// quotaCeiling is the latest quota time a message may have now: QuotaLead
// after the voters' clock.
func (s *State) quotaCeiling() int64 {
	c := s.VoterClock()
	if c > math.MaxInt64-int64(QuotaLead) {
		return math.MaxInt64
	}
	return c + int64(QuotaLead)
}

// charge returns u after one more chat entry of size bytes at quota time t,
// or the reason it is over the quota of settings.
func (u Usage) charge(t int64, size uint64, set Settings) (Usage, error) {
	// t is never before u.Time, and so never before either window's start:
	// the differences below do not overflow.
	if t-u.MinuteStart >= quotaMinute || u.Msgs == 0 {
		u.MinuteStart, u.Msgs = t, 0
	}
	if t-u.DayStart >= quotaDay || u.Bytes == 0 {
		u.DayStart, u.Bytes = t, 0
	}
	if lim := set.MsgsLimit(); u.Msgs >= lim {
		return u, reject("over quota: %d messages in a minute already, the group allows %d per member", u.Msgs, lim)
	}
	if lim := set.BytesLimit(); size > lim || u.Bytes > lim-size {
		return u, reject("over quota: %d bytes of messages today already and %d more, the group allows %d per member per day", u.Bytes, size, lim)
	}
	u.Time, u.Msgs, u.Bytes = t, u.Msgs+1, u.Bytes+size
	return u, nil
}

// chargeBytes is charge for an entry that counts against the bytes per day
// only, not the messages per minute (a prekey entry).
func (u Usage) chargeBytes(t int64, size uint64, set Settings) (Usage, error) {
	if t-u.DayStart >= quotaDay || u.Bytes == 0 {
		u.DayStart, u.Bytes = t, 0
	}
	if lim := set.BytesLimit(); size > lim || u.Bytes > lim-size {
		return u, reject("over quota: %d bytes of messages today already and %d more, the group allows %d per member per day", u.Bytes, size, lim)
	}
	u.Time, u.Bytes = t, u.Bytes+size
	return u, nil
}

// chargeQuota charges the chat entry of size bytes that m signed at signed
// to m's quota, or returns the rejection and changes nothing.
func (s *State) chargeQuota(m *Member, signed int64, size int) error {
	u, err := m.Quota.charge(s.quotaTime(m, signed), uint64(size), s.Settings)
	if err != nil {
		return err
	}
	m.Quota = u
	return nil
}

// chargeRekey records a rekey entry of m signed at signed, or says why it
// comes too soon after m's last one (see [RekeyInterval]). Its time is read
// as a quota time: never after [QuotaLead] past the voters' clock, so that
// dating rekeys ahead buys nothing.
func (s *State) chargeRekey(m *Member, signed int64) error {
	t := min(signed, s.quotaCeiling())
	if m.Rekeyed != 0 && t < m.Rekeyed+int64(RekeyInterval) {
		return reject("rekey too soon: this member's last was accepted %s before; a member may ask for new keys once every %s",
			time.Duration(t-m.Rekeyed).Round(time.Second), RekeyInterval)
	}
	m.Rekeyed = max(m.Rekeyed, t)
	return nil
}

// NextRekey is the earliest time (unix nanoseconds, on the voters' clock)
// at which a rekey entry of member would be accepted, or 0 for now: one
// [RekeyInterval] after its last. A member's node waits for it rather than
// propose a rekey bound to be rejected.
func (s *State) NextRekey(member [32]byte) int64 {
	m := s.member(member)
	if m == nil || m.Rekeyed == 0 {
		return 0
	}
	return m.Rekeyed + int64(RekeyInterval)
}

// QuotaRoom reports whether sender's quota, as the log stands, has room for
// n more chat entries of size bytes in all, whatever their signing times
// and order: then [State.CheckQuota] accepts every one of them. It is a
// bound, not the rule (a window that starts anew only lowers the counts
// charge adds to), so false says nothing, and CheckQuota decides; but it
// needs neither the entries in order nor a pass over them, which a node
// with hundreds of messages queued paid for each new one.
func (s *State) QuotaRoom(sender [32]byte, n int, size uint64) bool {
	m := s.member(sender)
	if m == nil || n < 0 {
		return false
	}
	u := m.Quota
	msgs, bytes := s.Settings.MsgsLimit(), s.Settings.BytesLimit()
	return uint64(n) <= uint64(msgs) && u.Msgs <= msgs-uint32(n) && size <= bytes && u.Bytes <= bytes-size
}

// CheckQuota reports how many of the chat entries in queue, signed by sender
// in that order, the state machine would accept under sender's quota if
// they came right after the log so far, and, when that is not all of them,
// why the next one would be rejected (an error wrapping [ErrRejected]). It
// changes nothing. A sender's node uses it to hold its own messages back
// rather than send them to be rejected, and a host to refuse proposals
// before they enter the log; the voters' clock is taken as it is now (it
// only moves forward while the queue is applied, which can only let more
// in).
func (s *State) CheckQuota(sender [32]byte, queue []QuotaItem) (int, error) {
	m := s.member(sender)
	if m == nil {
		return 0, reject("signer %x is not a member", sender[:4])
	}
	u := m.Quota
	ceiling := s.quotaCeiling()
	for i, it := range queue {
		t := max(u.Time, min(it.Time, ceiling))
		var err error
		if u, err = u.charge(t, uint64(max(it.Size, 0)), s.Settings); err != nil {
			return i, fmt.Errorf("message %d of %d: %w", i+1, len(queue), err)
		}
	}
	return len(queue), nil
}
