package api

import "errors"

// Invite states, in [PendingInvite] and [InviteResponse].
const (
	// InviteOpen is a committed invite: its code lets the invitee join.
	InviteOpen = "open"
	// InviteQueued is an invite accepted while the group could not
	// commit: the node proposes it until it commits, and nobody can join
	// with it before then.
	InviteQueued = "queued"
)

// ErrQueued marks an action the node accepted but could not commit yet (an
// invite while a majority of the group's voters is offline): it commits
// it when it can. The CLI exits 3 on it, the API answers 202.
var ErrQueued = errors.New("accepted but not yet committed")
