package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// MaxInviteLifetime bounds how far after its signing an invite may expire.
const MaxInviteLifetime = 90 * 24 * time.Hour

// DefaultInviteLifetime is how long an invite lasts unless its inviter says
// otherwise.
const DefaultInviteLifetime = 7 * 24 * time.Hour

// MinVoters is the fewest voters a group of the given size may have after a
// demotion: min(3, members, maxVoters). No member, voter or not, can shrink
// the voter set below it, so none can make itself the only voter; the
// placement rule (election.NextVoterChange) keeps to it too.
func MinVoters(members, maxVoters int) int { return min(3, members, maxVoters) }

// Clock is the group's clock, in unix nanoseconds: the lower median of the
// current members' latest signing times ([Member.Time]). It is a function
// of the log, so every member and a verifier agree on it; no minority of
// members can move it, since a median needs half the members to move it
// forward. It lags in a quiet group, which makes invites last longer, never
// shorter; the member that proposes a join checks its own clock too.
func (s *State) Clock() int64 { return s.medianTime(func(*Member) bool { return true }) }

// medianTime is the lower median of the latest signing times of the current
// members that count, 0 if none does.
func (s *State) medianTime(counts func(*Member) bool) int64 {
	times := make([]int64, 0, len(s.Members))
	for _, m := range s.Members {
		if counts(m) {
			times = append(times, m.Time)
		}
	}
	if len(times) == 0 {
		return 0
	}
	slices.Sort(times)
	return times[(len(times)-1)/2]
}

// CanInvite reports whether the member with this signing key may invite now.
func (s *State) CanInvite(key [32]byte) bool {
	m := s.member(key)
	return m != nil && !m.Keeper && (m.Admin || s.Settings.MembersInvite)
}

// IsAdmin reports whether the member with this signing key is an admin.
func (s *State) IsAdmin(key [32]byte) bool {
	m := s.member(key)
	return m != nil && m.Admin
}

// Admins returns the current admins' signing keys in join order.
func (s *State) Admins() [][32]byte {
	var out [][32]byte
	for _, m := range s.MemberList() {
		if m.Admin {
			out = append(out, m.ID.Sign)
		}
	}
	return out
}

func (s *State) applyInvite(index uint64, sender *Member, env *crypto.Envelope) error {
	var b InviteBody
	if err := Decode(env.Payload, &b); err != nil {
		return reject("malformed invite: %v", err)
	}
	keeper := env.Type == crypto.TypeKeeper
	switch {
	case keeper && !sender.Admin:
		return reject("only admins may add a keeper")
	case !s.CanInvite(env.Sender):
		return reject("only admins may invite in this group")
	}
	invitee, err := identity.PublicIDFromBytes(b.Invitee)
	if err != nil {
		return reject("invite: %v", err)
	}
	if s.member(invitee.Sign) != nil {
		return reject("invitee is already a member")
	}
	if b.Expires <= env.Time || b.Expires-env.Time > int64(MaxInviteLifetime) {
		return reject("invite expiry must be after its signing and within %v of it", MaxInviteLifetime)
	}
	// A new invite of the same identity replaces the open one.
	s.Invites[invitee.Sign] = Invite{Invitee: invitee, Inviter: sender.ID, Index: index, Expires: b.Expires, Keeper: keeper}
	return nil
}

func (s *State) applyRevoke(sender *Member, env *crypto.Envelope) error {
	var b TargetBody
	if err := Decode(env.Payload, &b); err != nil || len(b.Target) != 32 || b.Voter {
		return reject("malformed revocation")
	}
	inv, ok := s.Invites[[32]byte(b.Target)]
	switch {
	case !ok:
		return reject("no open invite to revoke")
	case inv.Inviter.Sign != env.Sender && !sender.Admin:
		return reject("only the inviter or an admin may revoke an invite")
	}
	delete(s.Invites, [32]byte(b.Target))
	return nil
}

func (s *State) applyAdmin(sender *Member, env *crypto.Envelope) error {
	var b AdminBody
	if err := Decode(env.Payload, &b); err != nil || len(b.Target) != 32 {
		return reject("malformed role change")
	}
	t := s.member([32]byte(b.Target))
	switch {
	case !sender.Admin:
		return reject("only admins may change who is an admin")
	case t == nil:
		return reject("role change for a non-member")
	case t.Keeper && b.Admin:
		return reject("a keeper cannot be an admin")
	case t.Admin == b.Admin:
		return reject("role change that changes nothing")
	case !b.Admin && len(s.Admins()) <= 1:
		return reject("cannot withdraw the last admin (the last admin may leave; the longest-standing member then becomes admin)")
	}
	t.Admin = b.Admin
	s.pruneInvites()
	return nil
}

func (s *State) applySettings(sender *Member, env *crypto.Envelope) error {
	var b SettingsBody
	if err := Decode(env.Payload, &b); err != nil {
		return reject("malformed settings")
	}
	if !sender.Admin {
		return reject("only admins may change the group's settings")
	}
	if b.BytesPerDay != 0 && b.BytesPerDay < MinBytesPerDay {
		return reject("a byte quota of %d per day is below the least, %d (0 means the default, %d)", b.BytesPerDay, MinBytesPerDay, DefaultBytesPerDay)
	}
	if err := CheckRelays(b.Relays); err != nil {
		return reject("%v", err)
	}
	// A lower quota takes effect at once: a member already over it sends
	// again when its current window ends.
	s.Settings = Settings(b)
	s.pruneInvites()
	return nil
}

// MaxNameLen is the longest group name, in bytes of UTF-8.
const MaxNameLen = 100

// CheckGroupName refuses a group name that is empty, longer than
// MaxNameLen bytes, not UTF-8, or holds control characters (a name is shown
// in terminals and in the UI).
func CheckGroupName(name string) error {
	switch {
	case name == "" || len(name) > MaxNameLen:
		return fmt.Errorf("a group name is 1 to %d bytes long, not %d", MaxNameLen, len(name))
	case !utf8.ValidString(name):
		return errors.New("a group name must be UTF-8")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("a group name may not hold control characters (new lines, tabs, escapes)")
	}
	return nil
}

func (s *State) applyRename(sender *Member, env *crypto.Envelope) error {
	var b RenameBody
	if err := Decode(env.Payload, &b); err != nil {
		return reject("malformed rename")
	}
	if !sender.Admin {
		return reject("only admins may rename the group")
	}
	if err := CheckGroupName(b.Name); err != nil {
		return reject("%v", err)
	}
	s.Name = b.Name
	return nil
}

// pruneInvites cancels the open invites whose inviter is gone or may no
// longer invite: an invite stands only while its inviter could make it again.
func (s *State) pruneInvites() {
	for k, inv := range s.Invites {
		if !s.CanInvite(inv.Inviter.Sign) {
			delete(s.Invites, k)
		}
	}
}

// keepAnAdmin makes the longest-standing member that is not a keeper an
// admin when no member is one (the last admin left or was removed by
// itself).
func (s *State) keepAnAdmin() {
	list := s.MemberList()
	for _, m := range list {
		if m.Admin {
			return
		}
	}
	for _, m := range list {
		if !m.Keeper {
			m.Admin = true
			return
		}
	}
}
