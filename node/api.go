package node

import "github.com/demes/demes/api"

// What the node shows the outside world (the local API that package web
// serves, the CLI prints) is defined in package api, which web/ and cmd/demes
// use without importing node. These aliases keep the names the node's code
// has always used.

type (
	// GroupInfo is [api.GroupInfo].
	GroupInfo = api.GroupInfo
	// Message is [api.Message].
	Message = api.Message
	// MessagePage is [api.MessagePage].
	MessagePage = api.MessagePage
	// Member is [api.Member].
	Member = api.Member
	// Edge is [api.Edge].
	Edge = api.Edge
	// GroupStatus is [api.GroupStatus].
	GroupStatus = api.GroupStatus
	// Status is [api.Status].
	Status = api.Status
	// Event is [api.Event].
	// GroupSettings is [api.GroupSettings].
	GroupSettings = api.GroupSettings
	// PendingInvite is [api.PendingInvite].
	PendingInvite = api.PendingInvite
	Event         = api.Event
)

// Message states: [api.StateCommitted] and [api.StateTentative].
const (
	StateCommitted = api.StateCommitted
	StateTentative = api.StateTentative
)

// Errors the local API maps to HTTP statuses: the very values of package api,
// so errors.Is matches either name.
var (
	// ErrNotFound is [api.ErrNotFound].
	ErrNotFound = api.ErrNotFound
	// ErrInvalid is [api.ErrInvalid].
	ErrInvalid = api.ErrInvalid
	// ErrStopped is [api.ErrStopped].
	ErrStopped = api.ErrStopped
	// ErrForbidden is [api.ErrForbidden].
	ErrForbidden = api.ErrForbidden
)

// ErrHalted is [api.ErrHalted].
var ErrHalted = api.ErrHalted

// ErrUnreachable is [api.ErrUnreachable].
var ErrUnreachable = api.ErrUnreachable

// Figures is [api.Figures].
type Figures = api.Figures
