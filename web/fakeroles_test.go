package web

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// The fake world's membership: invites that expire and can be revoked,
// admins, the group's settings, removals and leaving, with the node's rules
// (admins remove members and change roles and settings; only admins invite
// unless the settings let every member; the last admin's role stays) and
// its refusals' wording ("ACTION: RULE[; FIX]: not allowed").

const (
	fakeDefaultTTL = 7 * 24 * time.Hour
	fakeMaxTTL     = 90 * 24 * time.Hour
)

func (g *fakeGroup) isFormer(n *fakeNode) bool { return slices.Contains(g.former, n) }

// readGroupLocked is groupLocked for reads, which a member that left may
// still do: it keeps the history it has.
func (n *fakeNode) readGroupLocked(gid string) (*fakeGroup, error) {
	if g := n.w.groups[gid]; g != nil && g.isFormer(n) {
		return g, nil
	}
	return n.groupLocked(gid)
}

// memberLocked finds the member of g with the public id pub.
func (g *fakeGroup) memberLocked(pub string) *fakeNode {
	for _, m := range g.members {
		if m.pub.String() == pub {
			return m
		}
	}
	return nil
}

// failNextOp makes the next call of the membership method op (Remove,
// SetAdmin...) return err, whatever else the UI calls in between.
func (n *fakeNode) failNextOp(op string, err error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if n.failOps == nil {
		n.failOps = map[string]error{}
	}
	n.failOps[op] = err
}

// checkOpLocked is checkLocked for the membership method op.
func (n *fakeNode) checkOpLocked(op string) error {
	if err := n.failOps[op]; err != nil {
		delete(n.failOps, op)
		return err
	}
	return n.checkLocked()
}

// Invite is InviteFor with the default lifetime.
func (n *fakeNode) Invite(ctx context.Context, groupID, publicID string) (string, error) {
	return n.InviteFor(ctx, groupID, publicID, 0)
}

// InviteFor implements Backend.
func (n *fakeNode) InviteFor(ctx context.Context, groupID, publicID string, ttl time.Duration) (string, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	n.lastTTL = ttl
	if err := n.checkOpLocked("InviteFor"); err != nil {
		return "", err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return "", err
	}
	if ttl == 0 {
		ttl = fakeDefaultTTL
	}
	switch {
	case ttl < time.Minute || ttl > fakeMaxTTL:
		return "", fmt.Errorf("invite: an invite must last from a minute to 90 days, not %v: %w", ttl, api.ErrInvalid)
	case !g.admins[n] && !g.settings.MembersInvite:
		return "", fmt.Errorf("invite: only admins may invite in this group (an admin can allow everyone to with the group's settings): %w", api.ErrForbidden)
	case g.memberLocked(publicID) != nil:
		return "", fmt.Errorf("invite: %s is already a member: %w", publicID, api.ErrInvalid)
	}
	// One open invite per invitee, as in the node: a new one replaces it.
	for code, inv := range n.w.invites {
		if inv.groupID == groupID && inv.publicID == publicID && !inv.closed {
			inv.closed = true
			n.w.invites[code] = inv
		}
	}
	code := "DEMES-INVITE-" + strings.ToUpper(randomHex(24))
	n.w.invites[code] = fakeInvite{groupID: groupID, publicID: publicID, inviter: n, expires: time.Now().Add(ttl), seq: len(n.w.invites)}
	n.w.notifyStatusLocked(g)
	return code, nil
}

// Invites implements Backend.
func (n *fakeNode) Invites(groupID string) ([]api.PendingInvite, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkOpLocked("Invites"); err != nil {
		return nil, err
	}
	if _, err := n.groupLocked(groupID); err != nil {
		return nil, err
	}
	var open []fakeInvite
	for _, inv := range n.w.invites {
		if inv.groupID == groupID && !inv.closed && time.Now().Before(inv.expires) {
			open = append(open, inv)
		}
	}
	slices.SortFunc(open, func(a, b fakeInvite) int { return a.seq - b.seq })
	out := []api.PendingInvite{}
	for _, inv := range open {
		id, err := identity.ParsePublicID(inv.publicID)
		if err != nil {
			return nil, err
		}
		out = append(out, api.PendingInvite{Invitee: inv.publicID, Fingerprint: id.Fingerprint(),
			Inviter: inv.inviter.pub.String(), InviterName: inv.inviter.name, ExpiresAt: inv.expires.UTC().Truncate(time.Second), State: api.InviteOpen})
	}
	return out, nil
}

// RevokeInvite implements Backend.
func (n *fakeNode) RevokeInvite(ctx context.Context, groupID, codeOrID string) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkOpLocked("RevokeInvite"); err != nil {
		return err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return err
	}
	for code, inv := range n.w.invites {
		if inv.groupID != groupID || inv.closed || (code != codeOrID && inv.publicID != codeOrID) {
			continue
		}
		if inv.inviter != n && !g.admins[n] {
			return fmt.Errorf("revoke: only %s, who made this invite, or an admin may revoke it: %w", inv.inviter.pub.Fingerprint(), api.ErrForbidden)
		}
		inv.closed, inv.revoked = true, true
		n.w.invites[code] = inv
		n.w.notifyStatusLocked(g)
		return nil
	}
	return fmt.Errorf("revoke: %s has no open invite (see the open ones with `demes invites`): %w", codeOrID, api.ErrNotFound)
}

// SetAdmin implements Backend.
func (n *fakeNode) SetAdmin(ctx context.Context, groupID, publicID string, admin bool) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkOpLocked("SetAdmin"); err != nil {
		return err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return err
	}
	m := g.memberLocked(publicID)
	switch {
	case !g.admins[n]:
		return fmt.Errorf("admin: only admins may change who is an admin: %w", api.ErrForbidden)
	case m == nil:
		return fmt.Errorf("admin: %s is not a member: %w", publicID, api.ErrNotFound)
	case !admin && g.admins[m] && g.adminCount() == 1:
		return fmt.Errorf("admin: %s is the last admin; make someone else admin first: %w", m.pub.Fingerprint(), api.ErrForbidden)
	}
	g.admins[m] = admin
	n.w.notifyStatusLocked(g)
	return nil
}

func (g *fakeGroup) adminCount() int {
	c := 0
	for _, m := range g.members {
		if g.admins[m] {
			c++
		}
	}
	return c
}

// SetSettings implements Backend.
func (n *fakeNode) SetSettings(ctx context.Context, groupID string, s api.GroupSettings) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkOpLocked("SetSettings"); err != nil {
		return err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return err
	}
	if !g.admins[n] {
		return fmt.Errorf("settings: only admins may change the group's settings: %w", api.ErrForbidden)
	}
	// As the node does: a relay list left out keeps the group's.
	if s.Relays == nil {
		s.Relays = g.settings.Relays
	}
	g.settings = s
	n.w.notifyStatusLocked(g)
	return nil
}

// Rekey implements Backend: the fake has no keys to renew.
func (n *fakeNode) Rekey(ctx context.Context, groupID string) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if g := n.w.groups[groupID]; g == nil || !g.isMember(n) {
		return fmt.Errorf("group %q: %w", groupID, api.ErrNotFound)
	}
	return nil
}

// Rename implements Backend.
func (n *fakeNode) Rename(ctx context.Context, groupID, name string) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkOpLocked("Rename"); err != nil {
		return err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return err
	}
	if !g.admins[n] {
		return fmt.Errorf("rename: only admins may rename the group; ask an admin: %w", api.ErrForbidden)
	}
	if err := state.CheckGroupName(strings.TrimSpace(name)); err != nil {
		return fmt.Errorf("rename: %v: %w", err, api.ErrInvalid)
	}
	g.name = strings.TrimSpace(name)
	n.w.notifyStatusLocked(g)
	return nil
}

// Remove implements Backend.
func (n *fakeNode) Remove(ctx context.Context, groupID, publicID string) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkOpLocked("Remove"); err != nil {
		return err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return err
	}
	if publicID != n.pub.String() && !g.admins[n] {
		return fmt.Errorf("remove: only admins may remove members; ask an admin, or leave the group yourself: %w", api.ErrForbidden)
	}
	m := g.memberLocked(publicID)
	if m == nil {
		return fmt.Errorf("remove: %s is not a member: %w", publicID, api.ErrNotFound)
	}
	n.w.removeLocked(g, m)
	if m != n {
		if g.removedBy == nil {
			g.removedBy = map[*fakeNode]*fakeNode{}
		}
		g.removedBy[m] = n
	}
	return nil
}

// AddKeeper implements Backend: an admin's request is answered as the node
// answers it (a keeper at an address is handed its code), without a keeper
// joining the fake's group.
func (n *fakeNode) AddKeeper(ctx context.Context, groupID, target, id string) (api.KeeperResponse, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	g := n.w.groups[groupID]
	if g == nil || !g.isMember(n) {
		return api.KeeperResponse{}, fmt.Errorf("group %q: %w", groupID, api.ErrNotFound)
	}
	if !g.admins[n] {
		return api.KeeperResponse{}, fmt.Errorf("add keeper: only admins may add a keeper: %w", api.ErrForbidden)
	}
	n.lastKeeper, n.lastKeeperID = target, id
	return api.KeeperResponse{Code: "demes-invite-keeper", Keeper: "demes1keeper", Offered: strings.HasPrefix(target, "http")}, nil
}

// Reconnect implements Backend: the fake's members are always in step.
func (n *fakeNode) Reconnect(ctx context.Context, groupID, target string) (api.ReconnectResponse, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if g := n.w.groups[groupID]; g == nil || !g.isMember(n) {
		return api.ReconnectResponse{}, fmt.Errorf("group %q: %w", groupID, api.ErrNotFound)
	}
	return api.ReconnectResponse{GroupID: groupID}, nil
}

// Leave implements Backend.
func (n *fakeNode) Leave(ctx context.Context, groupID string) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkOpLocked("Leave"); err != nil {
		return err
	}
	g := n.w.groups[groupID]
	if g == nil || (!g.isMember(n) && !g.isFormer(n)) {
		return fmt.Errorf("group %q: %w", groupID, api.ErrNotFound)
	}
	if !g.isMember(n) {
		return fmt.Errorf("remove: %s is not a member: %w", n.pub.Fingerprint(), api.ErrNotFound)
	}
	n.w.removeLocked(g, n)
	return nil
}

// removeLocked takes m out of g (it keeps the group, read-only) and cancels
// m's invites; when the last admin goes, the longest-standing member becomes
// admin.
func (w *fakeWorld) removeLocked(g *fakeGroup, m *fakeNode) {
	w.notifyStatusLocked(g) // m hears of its own removal
	g.members = slices.DeleteFunc(g.members, func(x *fakeNode) bool { return x == m })
	g.former = append(g.former, m)
	delete(g.admins, m)
	for code, inv := range w.invites {
		if inv.groupID == g.id && inv.inviter == m && !inv.closed {
			inv.closed = true
			w.invites[code] = inv
		}
	}
	if g.adminCount() == 0 && len(g.members) > 0 {
		g.admins[g.members[0]] = true
	}
	w.notifyStatusLocked(g)
}

// Join implements Backend.
func (n *fakeNode) Join(ctx context.Context, code string) (api.GroupInfo, error) {
	n.w.mu.Lock()
	if err := n.checkLocked(); err != nil {
		n.w.mu.Unlock()
		return api.GroupInfo{}, err
	}
	inv, ok := n.w.invites[code]
	gate := n.w.joinGate
	n.w.mu.Unlock()
	switch {
	case !ok:
		// What a real node says about a code cut short or mistyped.
		return api.GroupInfo{}, fmt.Errorf("join: invite code does not verify: verify envelope: unsupported version: 129: %w", api.ErrInvalid)
	case inv.publicID != n.pub.String():
		return api.GroupInfo{}, fmt.Errorf("%w: this invite is for another identity", api.ErrInvalid)
	case inv.revoked:
		return api.GroupInfo{}, fmt.Errorf("join: the inviter's node refused this invite (it was revoked or used, or its inviter left or may no longer invite); ask the inviter for a new one: %w", api.ErrForbidden)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return api.GroupInfo{}, ctx.Err()
		}
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	g := n.w.groups[inv.groupID]
	if !g.isMember(n) {
		g.members = append(g.members, n)
		g.former = slices.DeleteFunc(g.former, func(x *fakeNode) bool { return x == n })
		delete(g.removedBy, n)
	}
	inv.closed = true
	n.w.invites[code] = inv
	n.w.notifyStatusLocked(g)
	return api.GroupInfo{GroupID: g.id, Name: g.name}, nil
}
