package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Invites lists the group's open invites: committed, not used, revoked or
// expired (by this node's clock), oldest first; then this node's queued
// invites (state [InviteQueued]), which have not committed yet.
func (n *Node) Invites(groupID string) ([]PendingInvite, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	v := g.view.Load()
	invs := make([]state.Invite, 0, len(v.invites))
	for k, inv := range v.invites {
		if v.invited(k) {
			invs = append(invs, inv)
		}
	}
	sort.Slice(invs, func(i, j int) bool { return invs[i].Index < invs[j].Index })
	out := make([]PendingInvite, 0, len(invs))
	for _, inv := range invs {
		out = append(out, PendingInvite{
			Invitee: inv.Invitee.String(), Fingerprint: inv.Invitee.Fingerprint(),
			Inviter: inv.Inviter.String(), InviterName: v.namesakes.label(inv.Inviter.String(), v.members[inv.Inviter.Sign].name),
			ExpiresAt: time.Unix(0, inv.Expires).UTC(), State: InviteOpen,
		})
	}
	// Then this node's queued ones, which have no code yet.
	return append(out, g.queuedInvites()...), nil
}

// RevokeInvite revokes the open invite named by its code or by its invitee's
// public id. Its inviter and the admins may revoke it. It returns once the
// revocation is committed: from then on no member admits the invitee. This
// node's queued invite for that invitee (invitequeue.go) is revoked at once:
// it will not commit, or is revoked in the log if it does.
func (n *Node) RevokeInvite(ctx context.Context, groupID, codeOrID string) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	invitee, err := identity.ParsePublicID(codeOrID)
	if err != nil {
		inv, perr := ParseInvite(codeOrID)
		if perr != nil {
			return fmt.Errorf("revoke: %q is neither a public id nor an invite code: %w", short(codeOrID), ErrInvalid)
		}
		if inv.Group != g.id {
			return fmt.Errorf("revoke: this invite is for group %s, not %s: %w", inv.Group, g.id, ErrInvalid)
		}
		invitee = inv.Invitee
	}
	// This node's queued invite goes first: it never commits now (or is
	// revoked in the log if it does).
	var queued bool
	var qerr error
	if err := g.do(ctx, func() { queued, qerr = g.revokeQueued(invitee.Sign) }); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	if qerr != nil {
		return fmt.Errorf("revoke: %w", qerr)
	}
	v := g.view.Load()
	inv, ok := v.invites[invitee.Sign]
	if !ok && queued {
		return nil
	}
	if !ok {
		return fmt.Errorf("revoke: %s has no open invite (see the open ones with `demes invites`): %w", invitee.Fingerprint(), ErrNotFound)
	}
	if inv.Inviter != n.self && !v.admin {
		return fmt.Errorf("revoke: only %s, who made this invite, or an admin may revoke it: %w", inv.Inviter.Fingerprint(), ErrForbidden)
	}
	gone := func(v *view) bool { cur, ok := v.invites[invitee.Sign]; return !ok || cur.Index != inv.Index }
	return n.commitUntil(ctx, g, "revoke", refusedWhy, gone, g.proposeEntryFn(crypto.TypeRevoke, &state.TargetBody{Target: invitee.Sign[:]}))
}

// SetAdmin grants (admin true) or withdraws the admin role of a member. Only
// admins may; the last admin's role cannot be withdrawn (it may leave, and
// the longest-standing member becomes admin).
func (n *Node) SetAdmin(ctx context.Context, groupID, publicID string, admin bool) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	target, err := identity.ParsePublicID(publicID)
	if err != nil {
		return fmt.Errorf("admin: %v: %w", err, ErrInvalid)
	}
	v := g.view.Load()
	m, ok := v.members[target.Sign]
	switch {
	case !v.admin:
		return fmt.Errorf("admin: only admins may change who is an admin: %w", ErrForbidden)
	case !ok:
		return fmt.Errorf("admin: %s is not a member: %w", target.Fingerprint(), ErrNotFound)
	case m.admin == admin:
		return nil
	}
	if !admin {
		admins := 0
		for _, m := range v.members {
			if m.admin {
				admins++
			}
		}
		if admins <= 1 {
			return fmt.Errorf("admin: %s is the last admin; make someone else admin first: %w", target.Fingerprint(), ErrForbidden)
		}
	}
	done := func(v *view) bool { return v.members[target.Sign].admin == admin }
	return n.commitUntil(ctx, g, "admin", refusedWhy, done, g.proposeEntryFn(crypto.TypeAdmin, &state.AdminBody{Target: target.Sign[:], Admin: admin}))
}

// SetSettings changes the group's settings, all of them: a quota of 0 is
// the default. Relays nil keeps the group's relays as they are; an empty
// list removes them. Only admins may.
func (n *Node) SetSettings(ctx context.Context, groupID string, s GroupSettings) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	if s.BytesPerDay != 0 && s.BytesPerDay < state.MinBytesPerDay {
		return fmt.Errorf("settings: a byte quota of %d per day is too small for the largest message; give at least %d (1 MiB), or 0 for the default: %w",
			s.BytesPerDay, state.MinBytesPerDay, ErrInvalid)
	}
	v := g.view.Load()
	relays := v.settings.Relays
	if s.Relays != nil {
		if relays, err = normalizeRelays(s.Relays); err != nil {
			return fmt.Errorf("settings: %v: %w", err, ErrInvalid)
		}
	}
	if !v.admin {
		return fmt.Errorf("settings: only admins may change the group's settings: %w", ErrForbidden)
	}
	want := state.Settings{MembersInvite: s.MembersInvite, MsgsPerMinute: s.MsgsPerMinute, BytesPerDay: s.BytesPerDay, Relays: relays}
	same := func(v *view) bool {
		got := v.settings
		return got.MembersInvite == want.MembersInvite && got.MsgsPerMinute == want.MsgsPerMinute &&
			got.BytesPerDay == want.BytesPerDay && slices.Equal(got.Relays, want.Relays)
	}
	if same(v) {
		return nil
	}
	return n.commitUntil(ctx, g, "settings", refusedWhy, same, g.proposeEntryFn(crypto.TypeSettings,
		&state.SettingsBody{MembersInvite: s.MembersInvite, MsgsPerMinute: s.MsgsPerMinute, BytesPerDay: s.BytesPerDay, Relays: relays}))
}

// normalizeRelays puts relay addresses as a person gives them (with or
// without "p2p:", spaces) in the form the settings entry carries, and
// checks them as the state machine will.
func normalizeRelays(in []string) ([]string, error) {
	var out []string
	for i, r := range in {
		nr, err := state.NormalizeRelay(r)
		if err != nil {
			return nil, fmt.Errorf("relay %d: %v", i+1, err)
		}
		out = append(out, nr)
	}
	if err := state.CheckRelays(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Rename renames the group (admins only) and returns once the new name is
// committed.
func (n *Node) Rename(ctx context.Context, groupID, name string) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	name = strings.TrimSpace(name)
	if err := state.CheckGroupName(name); err != nil {
		return fmt.Errorf("rename: %v: %w", err, ErrInvalid)
	}
	v := g.view.Load()
	if !v.admin {
		return fmt.Errorf("rename: only admins may rename the group; ask an admin: %w", ErrForbidden)
	}
	if v.name == name {
		return nil
	}
	done := func(v *view) bool { return v.name == name }
	return n.commitUntil(ctx, g, "rename", refusedWhy, done, g.proposeEntryFn(crypto.TypeRename, &state.RenameBody{Name: name}))
}

// Rekey asks the group for new sender keys, after a suspected compromise
// of one (a device seen by someone else, a key that leaked): this node
// makes a new prekey and commits it, then commits a rekey entry, which
// starts a new epoch, so every member seals its next message under a new
// key, sealed to the members' current prekeys: a thief holding this node's
// old secrets reads none of them (post-compromise security against a
// passive attacker). It returns once both are committed. Any member may; a
// keeper may not.
func (n *Node) Rekey(ctx context.Context, groupID string) error {
	if n.cfg.Keeper {
		return errKeeper
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	v := g.view.Load()
	if !v.self {
		return fmt.Errorf("rekey: this node is not a member of group %s: %w", g.id, ErrInvalid)
	}
	if next := time.Unix(0, v.nextRekey); v.nextRekey != 0 && time.Now().Before(next) {
		// The state machine would reject it (state.RekeyInterval).
		return fmt.Errorf("this node asked for new keys in %q less than %s ago, and a member may ask only once in that time: try again after %s: %w",
			v.name, spelled(state.RekeyInterval), next.Local().Format("15:04 MST"), ErrInvalid)
	}
	if err := n.keys.Rotate(time.Now()); err != nil {
		return fmt.Errorf("rekey: %w", err)
	}
	fresh := n.keys.Current()
	published := func(v *view) bool { return bytes.Equal(v.prekey, fresh) }
	if err := n.commitUntil(ctx, g, "rekey: publish a new prekey", refusedWhy, published, g.proposePrekeyFn(fresh)); err != nil {
		return err
	}
	before := v.epoch
	done := func(v *view) bool { return v.epoch > before }
	return n.commitUntil(ctx, g, "rekey", refusedWhy, done, g.proposeEntryFn(crypto.TypeRekey, map[string]any{}))
}

// settingsOf is what a group's status shows of its settings: the quotas in
// force, the defaults where the settings say 0.
func settingsOf(s state.Settings) GroupSettings {
	return GroupSettings{MembersInvite: s.MembersInvite, MsgsPerMinute: s.MsgsLimit(), BytesPerDay: s.BytesLimit(), Relays: append([]string{}, s.Relays...)}
}

// commitUntil proposes with propose (run on the group's goroutine) until done
// holds of the group's view, or until the membership timeout: a proposal can
// be dropped while the group has no host, so it is made again every
// reproposeAfter, signed afresh each time (an entry's counter binds it to its
// place; see package state). what names the action in errors, why says what
// a timeout may mean.
func (n *Node) commitUntil(ctx context.Context, g *group, what, why string, done func(*view) bool, propose func() error) error {
	ctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	defer cancel()
	var w *changeWait
	defer func() { g.changes.done(w) }()
	for !done(g.view.Load()) {
		var perr error
		if err := g.do(ctx, func() {
			from := n.counter.Last()
			if perr = propose(); perr == nil {
				g.noteControlProposed(from)
				w = g.changes.proposed(w, from, n.counter.Last())
			}
		}); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if perr != nil && !errors.Is(perr, context.DeadlineExceeded) {
			n.log.Debug().Err(perr).Str("action", what).Msg("proposal")
		}
		wctx, wcancel := context.WithTimeout(ctx, reproposeAfter)
		_ = g.waitView(wctx, done)
		wcancel()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: not committed in time (%s): %w", what, why, ctx.Err())
		}
	}
	return nil
}

// proposeEntryFn is a propose function for commitUntil: a normal entry of
// type t with body, signed when it runs.
func (g *group) proposeEntryFn(t crypto.Type, body any) func() error {
	return func() error { return g.proposeEntry(t, body) }
}

// refusedWhy is what a membership change that does not commit in time may
// mean: the group's rules refused it, which the log says.
const refusedWhy = "was it refused? see the log"

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// spelled says d as a person would, for what the node tells its user:
// "an hour", "2 hours", "30 minutes", not Go's "1h0m0s".
func spelled(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "an hour"
	case d > 0 && d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Minute:
		return "a minute"
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
